"""Rules that turn one spaCy parse into entities, actions and relation triplets.

The small English model mis-parses exactly the captions this project cares about, so the
parse is first copied into a plain :class:`TokenTable` and *repaired*, then the four-level
content is read off the repaired tree. Every step is one pass over the tokens (O(tokens)).

The repairs live in :mod:`mcsan.data.captions.repairs`.

Relation triplets (our documented choice):

* ``(subject, verb [particle], object)`` for direct objects; passive gives (agent, verb, patient);
* ``(noun, preposition, object)`` for a preposition on a noun ("a man in a red shirt" ->
  (man, in, shirt));
* for a preposition on a verb or copula: a *locative* preposition (in, on, above, next to,
  to the left of, ...) says where the subject is, so the predicate is the preposition alone
  ("a man plays guitar on the stage" -> (man, on, stage); "a star spins next to a box" ->
  (star, next to, box)); any other preposition completes the verb, so the predicate is
  ``verb + preposition`` ("a cube moves toward a ball" -> (cube, move toward, ball)) and its
  span runs from the verb to the end of the preposition; a copula contributes nothing
  ("the cube is above the ball" -> (cube, above, ball));
* with no subject in the caption ("playing guitar on the stage"), the verb itself is the head:
  (play, on, stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcsan.data.captions.repairs import (
    ARGUMENT_POS,
    NOUN_POS,
    TokenTable,
    is_colour_attribute,
    repair,
)
from mcsan.data.captions.repairs_real import repair_real

COLLECTIVES = frozenset(
    "group couple bunch lot lots pair crowd number variety set pile herd flock kind type sort "
    "series collection handful few some all both most many several one each".split()
)
"""Nouns whose "of" object is the real argument ("a group of people" -> people)."""

RELATIVE_PRONOUNS = frozenset({"who", "that", "which", "whom", "whose"})
INHERITING_DEPS = frozenset({"conj", "xcomp", "advcl"})
NOT_ACTIONS = frozenset({"be"})
NOT_ARGUMENTS = frozenset(
    "a an the this that these those his her its their my your our some any each every "
    "it which what who whom whose here there other another".split()
)
"""Determiners, possessives and empty pronouns: never an entity, subject or object."""


LOCATIVE_PREPOSITIONS = frozenset(
    "in on at inside under underneath beneath below above behind beside near between among "
    "amid atop within by outside around".split()
)
"""Prepositions that say where the subject is; with a verb they stand alone as predicate."""

# Multi-word prepositions, longest first: (words, locative?). The last word carries the object.
MULTIWORD_PREPOSITIONS: tuple[tuple[tuple[str, ...], bool], ...] = tuple(
    sorted(
        (
            (tuple(words.split()), locative)
            for words, locative in [
                ("next to", True),
                ("close to", True),
                ("in front of", True),
                ("on top of", True),
                ("to the left of", True),
                ("to the right of", True),
                ("on the left of", True),
                ("on the right of", True),
                ("left of", True),
                ("right of", True),
                ("in the middle of", True),
                ("in the center of", True),
                ("at the top of", True),
                ("at the bottom of", True),
                ("on the side of", True),
                ("in between", True),
                ("away from", False),
                ("out of", False),
                ("along with", False),
                ("instead of", False),
                ("because of", False),
                ("together with", False),
            ]
        ),
        key=lambda item: -len(item[0]),
    )
)
_MWP_BY_FIRST: dict[str, list[tuple[tuple[str, ...], bool]]] = {}
for _words, _loc in MULTIWORD_PREPOSITIONS:
    _MWP_BY_FIRST.setdefault(_words[0], []).append((_words, _loc))


# ------------------------------------------------------------ multi-word prepositions
@dataclass(frozen=True)
class PrepUnit:
    """A preposition (one or several words) with its governor and object positions."""

    start: int
    end: int
    lemma: str
    locative: bool
    governor: int
    objects: tuple[int, ...]


def find_multiword(table: TokenTable) -> list[tuple[int, int, str, bool]]:
    """Non-overlapping multi-word prepositions as (start, end, lemma, locative)."""
    found = []
    i, n = 0, len(table)
    while i < n:
        match = None
        for words, locative in _MWP_BY_FIRST.get(table.lower[i], ()):
            if tuple(table.lower[i : i + len(words)]) == words:
                match = (i, i + len(words), " ".join(words), locative)
                break
        if match:
            found.append(match)
            i = match[1]
        else:
            i += 1
    return found


def _with_conjuncts(table: TokenTable, tokens: list[int]) -> list[int]:
    """``tokens`` plus their conjuncts (recursively, one pass over each chain)."""
    out: list[int] = []
    stack = [_resolve(table, t) for t in tokens]
    while stack:
        t = stack.pop(0)
        if t in out:
            continue
        out.append(t)
        stack.extend(c for c in table.children[t] if table.dep[c] == "conj")
    return [t for t in out if table.pos[t] in ARGUMENT_POS]


def prep_units(table: TokenTable) -> list[PrepUnit]:
    """Every preposition with an object, multi-word ones merged, agents ("by") excluded."""
    units: list[PrepUnit] = []
    covered: set[int] = set()
    for start, end, lemma, locative in find_multiword(table):
        span = range(start, end)
        covered.update(span)
        governor = next((table.head[t] for t in span if not start <= table.head[t] < end), -1)
        objects = [c for t in reversed(span) for c in table.children[t] if table.dep[c] == "pobj"]
        objects = [o for o in objects if not start <= o < end][:1]
        if governor >= 0 and objects:
            units.append(
                PrepUnit(
                    start, end, lemma, locative, governor, tuple(_with_conjuncts(table, objects))
                )
            )
    for i in range(len(table)):
        if i in covered or table.dep[i] not in ("prep", "dative") or table.pos[i] != "ADP":
            continue
        objects = _with_conjuncts(table, table.kids(i, "pobj"))
        if not objects:
            continue
        word = table.lower[i]
        units.append(
            PrepUnit(i, i + 1, word, word in LOCATIVE_PREPOSITIONS, table.head[i], tuple(objects))
        )
    return units


# ------------------------------------------------------------------------ extraction
def _collective_member(table: TokenTable, token: int) -> int | None:
    """The "of" object of a collective noun ("group" in "a group of people" -> people)."""
    if table.lemma[token] not in COLLECTIVES:
        return None
    for prep in table.kids(token, "prep"):
        if table.lower[prep] == "of":
            objects = table.kids(prep, "pobj")
            if objects:
                return objects[0]
    return None


def _resolve(table: TokenTable, token: int) -> int:
    """A relative pronoun stands for the noun its clause modifies; a collective noun for its
    members."""
    member = _collective_member(table, token)
    if member is not None:
        return member
    if table.lower[token] in RELATIVE_PRONOUNS:
        clause = table.head[token]
        while table.dep[clause] == "conj" and table.head[clause] != clause:
            clause = table.head[clause]
        if table.dep[clause] in ("relcl", "acl"):
            return table.head[clause]
    return token


def subjects_of(table: TokenTable, verb: int, depth: int = 0) -> list[int]:
    """Subjects of a verb: own nsubj, else the noun of a participle/relative clause, else
    the subjects of the verb it is conjoined with or complements."""
    own = table.kids(verb, "nsubj", "nsubjpass")
    if own:
        return _with_conjuncts(table, [_resolve(table, s) for s in own])
    expl = table.kids(verb, "expl")
    if expl:
        return _with_conjuncts(table, table.kids(verb, "attr"))
    dep = table.dep[verb]
    head = table.head[verb]
    if dep in ("acl", "relcl") and table.pos[head] in ARGUMENT_POS:
        return _with_conjuncts(table, [head])
    if dep in INHERITING_DEPS and head != verb and depth < 8:
        return subjects_of(table, head, depth + 1)
    return []


def _is_passive(table: TokenTable, verb: int) -> bool:
    if table.kids(verb, "nsubjpass", "auxpass", "agent"):
        return True
    return table.dep[verb] == "acl" and table.tag[verb] == "VBN"


def verb_triplets(table: TokenTable, verb: int) -> list[tuple[int, tuple[int, int], str, int]]:
    """(subject, predicate span, predicate lemma, object) for one verb's core arguments."""
    particles = table.kids(verb, "prt")
    lemma = " ".join([table.lemma[verb], *(table.lower[p] for p in particles)])
    span = (verb, max([verb, *particles]) + 1)
    if _is_passive(table, verb):
        patients = _with_conjuncts(
            table, [_resolve(table, t) for t in table.kids(verb, "nsubjpass")]
        )
        if not patients and table.dep[verb] == "acl":
            patients = _with_conjuncts(table, [table.head[verb]])
        agents = [o for a in table.kids(verb, "agent") for o in table.kids(a, "pobj")]
        agents = _with_conjuncts(table, agents)
        return [(a, span, lemma, p) for a in agents for p in patients]
    objects = [_resolve(table, o) for o in table.kids(verb, "dobj")]
    if objects:
        objects += [c for c in table.kids(verb, "conj") if table.pos[c] in NOUN_POS]
    objects = _with_conjuncts(table, objects)
    if not objects:
        return []
    return [(s, span, lemma, o) for s in subjects_of(table, verb) for o in objects]


def prep_triplets(table: TokenTable, unit: PrepUnit) -> list[tuple[int, tuple[int, int], str, int]]:
    """(head, predicate span, predicate lemma, object) for one preposition."""
    governor = unit.governor
    while table.pos[governor] in ("ADV", "ADJ", "PART") and table.head[governor] != governor:
        if table.pos[table.head[governor]] not in ("VERB", "AUX"):
            break
        governor = table.head[governor]
    pos = table.pos[governor]
    out = []
    if pos in ARGUMENT_POS:
        if _collective_member(table, governor) in unit.objects:
            return []
        heads = [_resolve(table, governor)]
        return [(h, (unit.start, unit.end), unit.lemma, o) for h in heads for o in unit.objects]
    if pos not in ("VERB", "AUX"):
        return []
    copula = table.lemma[governor] == "be"
    subjects = subjects_of(table, governor)
    if not subjects:
        if copula:
            return []
        subjects = [governor]
        lemma, span = unit.lemma, (unit.start, unit.end)
    elif copula or (unit.locative and table.kids(governor, "dobj")):
        lemma, span = unit.lemma, (unit.start, unit.end)
    else:
        particles = table.kids(governor, "prt")
        verb_lemma = " ".join([table.lemma[governor], *(table.lower[p] for p in particles)])
        lemma = f"{verb_lemma} {unit.lemma}"
        span = (min(governor, unit.start), max(governor + 1, unit.end))
    for s in subjects:
        for o in unit.objects:
            if s != o:
                out.append((s, span, lemma, o))
    return out


@dataclass(frozen=True)
class Extracted:
    """Positions found in one caption: entities, actions and relation triplets."""

    entities: tuple[int, ...]
    actions: tuple[tuple[int, int, str], ...]
    relations: tuple[tuple[int, tuple[int, int], str, int], ...]


def extract(table: TokenTable, verbs: frozenset[str]) -> Extracted:
    """Repair ``table`` and read entities, actions and relation triplets off it.

    ``verbs`` is the lexicon of verb base forms used to recognise mis-tagged verbs.
    """
    repair(table, verbs)
    repair_real(table, verbs)
    units = prep_units(table)
    inside_mwp = {t for u in units if u.end - u.start > 1 for t in range(u.start, u.end)}
    entities = tuple(
        i
        for i in range(len(table))
        if table.pos[i] in NOUN_POS
        and i not in inside_mwp
        and not is_colour_attribute(table, i)
        and _collective_member(table, i) is None
        and any(ch.isalnum() for ch in table.lower[i])
        and NOT_ARGUMENTS.isdisjoint((table.lower[i], table.lemma[i]))
    )
    actions = []
    triplets: list[tuple[int, tuple[int, int], str, int]] = []
    for i in range(len(table)):
        if table.pos[i] != "VERB" or table.dep[i] in ("aux", "auxpass"):
            continue
        if table.lemma[i] in NOT_ACTIONS or not any(ch.isalpha() for ch in table.lower[i]):
            continue
        actions.append((i, i + 1, table.lemma[i]))
        triplets.extend(verb_triplets(table, i))
    for unit in units:
        triplets.extend(prep_triplets(table, unit))
    seen: set[tuple[int, tuple[int, int], str, int]] = set()
    unique = []
    for triplet in triplets:
        if triplet in seen or triplet[0] == triplet[3]:
            continue
        ends = (triplet[0], triplet[3])
        if NOT_ARGUMENTS.isdisjoint(
            [table.lower[t] for t in ends] + [table.lemma[t] for t in ends]
        ):
            seen.add(triplet)
            unique.append(triplet)
    return Extracted(entities, tuple(actions), tuple(unique))
