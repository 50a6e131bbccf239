"""Rules that turn one spaCy parse into entities, actions and relation triplets.

The small English model mis-parses exactly the captions this project cares about, so the
parse is first copied into a plain :class:`TokenTable` and *repaired*, then the four-level
content is read off the repaired tree. Every step is one pass over the tokens (O(tokens)).

Repairs (each pinned by a test in ``tests/test_text.py``):

* simple-present verbs tagged NOUN/NNS ("a chef cuts onions", "a purple cube moves toward
  ...") become verbs when the syntax shows it (a subject or direct object child, a singular
  determiner on a plural head, a compound modifier that carries its own determiner, or a
  conjunct of such a repaired verb); the noun phrase left of the verb becomes its subject
  (re-tagging a shape word such as "square" from ADJ to NOUN);
* "left" after a verb ("is moving left") is a direction, not the verb "leave";
* lemma errors of the rule lemmatizer on consonant-vowel-consonant stems ("riding" -> "ride",
  not "rid"; "staring" -> "stare");
* colour words that modify a following noun are attributes, never entities, whatever their tag;
* multi-word prepositions ("next to", "to the left of", "in front of", "on top of", "away from",
  ...) are one predicate, and their inner nouns ("left", "front", "top") are not entities;
* passive voice: ``(agent, verb, patient)``; participle and relative clauses take the noun
  they modify as subject ("there is a man shooting other people" -> (man, shoot, people));
* conjoined subjects, objects and verbs are distributed; a noun mis-attached as a conjunct of
  a transitive verb is treated as a second object.

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

from dataclasses import dataclass, field
from typing import Any

COLOURS = frozenset(
    "red green blue yellow orange purple pink white black brown gray grey cyan magenta violet "
    "gold golden silver beige teal navy maroon turquoise indigo lime olive crimson".split()
)
"""Colour words: attributes of the noun they modify, never entities on their own."""

SHAPES = frozenset(
    "ball circle sphere disc disk cube square box block star triangle pyramid cone cylinder "
    "ring diamond heart hexagon pentagon rectangle oval cross shape".split()
)
"""Shape nouns of the synthetic world; the tagger sometimes calls them ADJ or VERB."""

COLLECTIVES = frozenset(
    "group couple bunch lot lots pair crowd number variety set pile herd flock kind type sort "
    "series collection handful few".split()
)
"""Nouns whose "of" object is the real argument ("a group of people" -> people)."""

RELATIVE_PRONOUNS = frozenset({"who", "that", "which", "whom", "whose"})
SINGULAR_DETERMINERS = frozenset({"a", "an", "another", "each", "every", "one"})
NOUN_POS = frozenset({"NOUN", "PROPN"})
ARGUMENT_POS = frozenset({"NOUN", "PROPN", "PRON"})
SUBJECT_DEPS = frozenset({"nsubj", "csubj"})
INHERITING_DEPS = frozenset({"conj", "xcomp", "advcl"})
NOT_ACTIONS = frozenset({"be"})

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


@dataclass
class TokenTable:
    """A mutable copy of one parse: parallel lists indexed by token position."""

    lower: list[str]
    lemma: list[str]
    pos: list[str]
    tag: list[str]
    dep: list[str]
    head: list[int]
    children: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.children:
            self.rebuild_children()

    def __len__(self) -> int:
        return len(self.lower)

    def rebuild_children(self) -> None:
        """Recompute the children lists from ``head`` (after a repair moved arcs)."""
        self.children = [[] for _ in self.lower]
        for index, head in enumerate(self.head):
            if head != index:
                self.children[head].append(index)

    def kids(self, index: int, *deps: str) -> list[int]:
        """Children of ``index`` whose dependency label is one of ``deps``."""
        return [c for c in self.children[index] if self.dep[c] in deps]


def table_from_doc(doc: Any) -> TokenTable:
    """Copy a spaCy ``Doc`` into a :class:`TokenTable` (lower-cased text and lemmas)."""
    lower, lemma, pos, tag, dep, head = [], [], [], [], [], []
    for token in doc:
        text = token.lower_
        lower.append(text)
        lemma.append(token.lemma_.lower() or text)
        pos.append(token.pos_)
        tag.append(token.tag_)
        dep.append(token.dep_)
        head.append(token.head.i)
    return TokenTable(lower, lemma, pos, tag, dep, head)


# ----------------------------------------------------------------------------- repairs
_VOWELS = frozenset("aeiou")


def _is_cvc(stem: str) -> bool:
    return (
        len(stem) >= 3
        and stem[-1] not in _VOWELS
        and stem[-1] not in "wxy"
        and stem[-2] in _VOWELS
        and stem[-3] not in _VOWELS
    )


def repair_lemmas(table: TokenTable, verbs: frozenset[str]) -> None:
    """Fix rule-lemmatizer errors on CVC stems: riding/rides -> ride, staring -> stare."""
    for i, word in enumerate(table.lower):
        if table.pos[i] not in ("VERB", "AUX"):
            continue
        if word.endswith("ing"):
            stem = word[:-3]
        elif word.endswith(("ed", "es")):
            stem = word[:-2]
        else:
            continue
        if table.lemma[i] == stem and _is_cvc(stem) and stem + "e" in verbs:
            table.lemma[i] = stem + "e"


def _looks_like_verb(table: TokenTable, i: int, repaired: set[int], verbs: frozenset[str]) -> bool:
    """Whether a token tagged as a plural noun is really a simple-present verb."""
    if table.pos[i] not in NOUN_POS or not table.lower[i].endswith("s"):
        return False
    if table.tag[i] not in ("NNS", "NNPS", "VBZ") or table.lemma[i] not in verbs:
        return False
    dep = table.dep[i]
    if dep == "conj" and table.head[i] in repaired:
        return True
    if dep not in ("ROOT", "conj"):
        return False
    left = [c for c in table.children[i] if c < i]
    if any(table.pos[c] in ("VERB", "AUX") for c in left):
        return False
    for child in table.children[i]:
        child_dep = table.dep[child]
        if child_dep in SUBJECT_DEPS or child_dep == "dobj":
            return True
        if child_dep == "det" and table.lower[child] in SINGULAR_DETERMINERS:
            return True
        if child < i and child_dep in ("compound", "amod", "nmod"):
            if any(table.dep[g] == "det" for g in table.children[child]):
                return True
            if table.lower[child] in SHAPES:
                return True
    return False


def _attach_subject(table: TokenTable, verb: int) -> None:
    """Make the noun phrase left of a repaired verb its subject."""
    left = [c for c in table.children[verb] if c < verb]
    if any(table.dep[c] in SUBJECT_DEPS for c in left):
        return
    candidates = [c for c in left if table.pos[c] in ("NOUN", "PROPN", "ADJ", "PRON", "NUM")]
    if not candidates:
        return
    subject = max(candidates)
    table.dep[subject] = "nsubj"
    if table.pos[subject] in ("ADJ", "NUM") and table.lower[subject] not in COLOURS:
        table.pos[subject] = "NOUN"
        table.lemma[subject] = table.lower[subject]
    for child in left:
        if child != subject:
            table.head[child] = subject


def repair_simple_present(table: TokenTable, verbs: frozenset[str]) -> None:
    """Re-tag simple-present verbs the tagger called plural nouns, and re-attach subjects."""
    repaired: set[int] = set()
    for i in range(len(table)):
        if _looks_like_verb(table, i, repaired, verbs):
            table.pos[i] = "VERB"
            table.tag[i] = "VBZ"
            repaired.add(i)
    if not repaired:
        return
    for verb in sorted(repaired):
        _attach_subject(table, verb)
    table.rebuild_children()


def _is_verb_form(table: TokenTable, i: int, verbs: frozenset[str]) -> bool:
    if table.pos[i] == "VERB":
        return table.tag[i] == "VBZ"
    return (
        table.pos[i] in NOUN_POS
        and table.tag[i] in ("NNS", "NNPS")
        and table.lower[i].endswith("s")
        and table.lemma[i] in verbs
    )


def repair_swallowed_verb(table: TokenTable, verbs: frozenset[str]) -> None:
    """Undo "a man in a black shirt talks about cars" parsed with "talks" as the object of
    "in": the verb becomes the root, "shirt" the object of "in", "man" the subject."""
    if any(p == "VERB" for i, p in enumerate(table.pos) if table.dep[i] != "pobj"):
        return
    for v in range(len(table)):
        if table.dep[v] != "pobj" or not _is_verb_form(table, v, verbs):
            continue
        left = [c for c in table.children[v] if c < v]
        singular = any(
            table.dep[c] == "det" and table.lower[c] in SINGULAR_DETERMINERS for c in left
        )
        if table.pos[v] != "VERB" and not singular:
            continue
        nouns = [c for c in left if table.pos[c] in NOUN_POS or table.lower[c] in SHAPES]
        governor = table.head[table.head[v]]
        while table.pos[governor] in ("ADV", "ADP", "ADJ") and table.head[governor] != governor:
            governor = table.head[governor]
        if not nouns or table.pos[governor] not in ARGUMENT_POS:
            continue
        _move_verb_to_root(table, v, max(nouns), governor)
        return


def _move_verb_to_root(table: TokenTable, verb: int, noun: int, subject: int) -> None:
    prep = table.head[verb]
    old_root = next((i for i, h in enumerate(table.head) if h == i), verb)
    table.head[noun], table.dep[noun], table.pos[noun] = prep, "pobj", "NOUN"
    for child in table.children[verb]:
        if child < verb and child != noun:
            table.head[child] = noun
    table.head[verb], table.dep[verb], table.pos[verb], table.tag[verb] = (
        verb,
        "ROOT",
        "VERB",
        "VBZ",
    )
    table.head[subject], table.dep[subject] = verb, "nsubj"
    if old_root not in (verb, subject) and old_root > verb and table.pos[old_root] in NOUN_POS:
        table.head[old_root], table.dep[old_root] = verb, "dobj"
    for child in table.children[subject]:
        if child > verb and table.dep[child] == "appos":
            table.head[child], table.dep[child] = verb, "dobj"
    table.rebuild_children()


def repair_shapes(table: TokenTable) -> None:
    """A shape word ending its noun phrase is a noun even when tagged ADJ/VERB ("a square")."""
    n = len(table)
    for i, word in enumerate(table.lower):
        if word in SHAPES and table.pos[i] in ("ADJ", "VERB", "ADV"):
            nxt = table.pos[i + 1] if i + 1 < n else "PUNCT"
            if nxt not in ("NOUN", "PROPN", "ADJ") and table.dep[i] not in ("ROOT",):
                table.pos[i] = "NOUN"
                table.lemma[i] = word


def is_colour_attribute(table: TokenTable, i: int) -> bool:
    """A colour word that modifies a noun to its right (an attribute, not an entity)."""
    if table.lower[i] not in COLOURS:
        return False
    head = table.head[i]
    if head > i:
        return True
    nxt = i + 1
    return nxt < len(table) and table.pos[nxt] in NOUN_POS


def repair_direction_left(table: TokenTable) -> None:
    """ "is moving left": "left" right after a verb is a direction, not the verb "leave"."""
    moved = False
    for i in range(1, len(table)):
        if table.lower[i] == "left" and table.pos[i] == "VERB" and table.pos[i - 1] == "VERB":
            table.pos[i], table.tag[i], table.lemma[i] = "ADV", "RB", "left"
            for child in table.children[i]:
                table.head[child] = i - 1
            if table.head[i] == i:
                table.head[i - 1], table.dep[i - 1] = i - 1, "ROOT"
            table.head[i], table.dep[i] = i - 1, "advmod"
            moved = True
    if moved:
        table.rebuild_children()


def repair(table: TokenTable, verbs: frozenset[str]) -> TokenTable:
    """Apply every repair in place (``verbs``: lexicon of verb base forms); return the table."""
    repair_lemmas(table, verbs)
    repair_direction_left(table)
    repair_simple_present(table, verbs)
    repair_swallowed_verb(table, verbs)
    repair_shapes(table)
    return table


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
    elif unit.locative or copula:
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
        if triplet not in seen and triplet[0] != triplet[3]:
            seen.add(triplet)
            unique.append(triplet)
    return Extracted(entities, tuple(actions), tuple(unique))
