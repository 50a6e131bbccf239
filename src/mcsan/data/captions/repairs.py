"""Repairs of the small English model's parse, on a plain copy of it (:class:`TokenTable`).

The small model mis-parses exactly the captions this project cares about; each function
here fixes one such failure in place, in one pass over the tokens (O(tokens)).

Repairs (each pinned by a test in ``tests/test_text.py``):

* simple-present verbs tagged NOUN/NNS ("a chef cuts onions", "a purple cube moves toward
  ...") become verbs when the syntax shows it (a subject or direct object child, a singular
  determiner on a plural head, a compound modifier that carries its own determiner, or a
  conjunct of such a repaired verb); the noun phrase left of the verb becomes its subject
  (re-tagging a shape word such as "square" from ADJ to NOUN);
* a verb swallowed as the object of a preposition ("a man in a black shirt talks about cars"
  with "talks" the object of "in") becomes the root with "man" as subject and "shirt" as the
  object of "in";
* "left" after a verb ("is moving left") is a direction, not the verb "leave";
* lemma errors of the rule lemmatizer on consonant-vowel-consonant stems ("riding" -> "ride",
  not "rid"; "staring" -> "stare");
* colour words that modify a following noun are attributes, never entities, whatever their tag;
* multi-word prepositions ("next to", "to the left of", "in front of", "on top of", "away from",
  ...) are one predicate, and their inner nouns ("left", "front", "top") are not entities;
* passive voice: ``(agent, verb, patient)``; participle and relative clauses take the noun
  they modify as subject ("there is a man shooting other people" -> (man, shoot, people));
* conjoined subjects, objects and verbs are distributed; a noun mis-attached as a conjunct of
  a transitive verb is treated as a second object; a collective ("a group of people") stands
  for its members (these last three are applied in :mod:`mcsan.data.captions.rules`).
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

SINGULAR_DETERMINERS = frozenset({"a", "an", "another", "each", "every", "one"})
NOUN_POS = frozenset({"NOUN", "PROPN"})
ARGUMENT_POS = frozenset({"NOUN", "PROPN", "PRON"})
SUBJECT_DEPS = frozenset({"nsubj", "csubj"})


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
