"""Parsed-caption records (:class:`Span`, :class:`Relation`, :class:`ParsedCaption`) and the
check that a caption can be parsed; re-exported by :mod:`mcsan.data.captions.parse`, whose
docstring documents the record format."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcsan.core.errors import ParseError

LEVEL_FIELDS: dict[str, str] = {"entity": "entities", "action": "actions", "relation": "relations"}
"""Level -> the ParsedCaption field holding its items."""


@dataclass(frozen=True)
class Span:
    """A phrase: its lemma (words joined by a space) and token range ``tokens[start:end]``."""

    lemma: str
    start: int
    end: int

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
        """The items of one level of ``LEVEL_FIELDS`` (each has ``parts``: its token spans)."""
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
