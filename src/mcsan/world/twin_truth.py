"""Which captions a twin makes false: twin kinds, and the training twins' hard negatives.

A twin (:mod:`mcsan.world.splits`, :mod:`mcsan.world.binding`) changes one respect of a
clip. A caption of the original tells the two apart only when it mentions what changed
(:func:`mentions_change`); evaluation counts those captions as "focused", and training
(``data.hard_negatives``) uses a twin as a negative clip for exactly those captions:
:func:`hard_negative_records` writes them to ``hard_negatives.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TWIN_KINDS = ("changed", "swapped", "binding")
HARD_NEGATIVES_NAME = "hard_negatives.jsonl"
"""``{"video_id", "caption", "negative_id", "kind"}`` per (caption, negative clip)."""


@dataclass(frozen=True)
class TwinPair:
    """One original clip and one twin that differs from it at ``level``."""

    original_id: str
    twin_id: str
    level: str
    change: dict[str, Any]
    """What differs, as the generator wrote it (object index, from, to)."""


def twin_kind(pair: TwinPair) -> str:
    """"changed" (one fact differs), "swapped" (a relation's subject and object exchanged)
    or "binding" (two objects exchange a colour or an action)."""
    kind = str(pair.change.get("kind") or "changed")
    return kind if kind in TWIN_KINDS else "changed"


def mentions_change(truth: dict[str, Any], pair: TwinPair) -> bool:
    """Whether a caption's ground truth mentions what ``pair``'s twin changed.

    A binding twin keeps every word-level fact, so a caption tells the clips apart only
    when it ties one of the exchanged objects to its colour (entity) or action (action)."""
    change = pair.change
    if twin_kind(pair) == "binding":
        swapped = set(change.get("objects", []))
        if pair.level == "entity":
            return any(ref.get("object") in swapped and ref.get("colour")
                       for ref in truth.get("refs", []))
        return any(obj in swapped for obj, _ in truth.get("object_actions", []))
    if pair.level == "entity":
        return any(ref.get("object") == change.get("object") for ref in truth.get("refs", []))
    if pair.level == "action":
        return any(obj == change.get("object") for obj, _ in truth.get("object_actions", []))
    return list(change.get("from", [])) in [list(r) for r in truth.get("relation_ids", [])]


def hard_negative_records(pairs: Iterable[TwinPair],
                          truth: Mapping[str, Sequence[dict[str, Any]]]
                          ) -> Iterator[dict[str, Any]]:  # fmt: skip
    """One record per (caption of an original, twin whose change the caption mentions);
    ``truth`` maps a clip id to its captions' ground truth (``CaptionTruth.to_json()``)."""
    for pair in pairs:
        for caption in truth.get(pair.original_id, ()):
            if mentions_change(caption, pair):
                yield {"video_id": pair.original_id, "caption": caption["caption"],
                       "negative_id": pair.twin_id,
                       "kind": f"{pair.level}/{twin_kind(pair)}"}  # fmt: skip
