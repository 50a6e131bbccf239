"""Per-level attribute vocabularies and multi-hot labels (stored sparsely as index lists).

Levels: ``entity`` (entity lemmas), ``action`` (action lemmas), ``relation`` (relation keys
``"subject|predicate|object"``). A vocabulary holds the top-K items of the training captions
by *caption frequency* (the number of captions that contain the item), ties broken
alphabetically. A caption's labels are the sorted indices of its items in the vocabularies;
a video's labels are the union over its captions.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mcsan import ATTRIBUTE_LEVELS
from mcsan.data.captions.parse import ParsedCaption
from mcsan.errors import DataError
from mcsan.io import atomic_write_json, read_json

DEFAULT_SIZES: dict[str, int] = {"entity": 512, "action": 256, "relation": 512}
"""Default vocabulary size per level, written only here (``DataConfig`` copies it)."""

Labels = dict[str, list[int]]


def caption_items(parsed: ParsedCaption) -> dict[str, set[str]]:
    """The distinct attribute items of one caption, per level."""
    return {
        "entity": {span.lemma for span in parsed.entities},
        "action": {span.lemma for span in parsed.actions},
        "relation": {relation.key for relation in parsed.relations},
    }


class AttributeVocabs:
    """One attribute vocabulary per level (entity, action, relation)."""

    def __init__(self, items: Mapping[str, Sequence[str]]) -> None:
        """Create from ``{level: [item, ...]}`` in index order."""
        unknown = set(items) - set(ATTRIBUTE_LEVELS)
        if unknown:
            raise DataError(
                f"unknown attribute level(s) {sorted(unknown)}; use {list(ATTRIBUTE_LEVELS)}"
            )
        self._items = {level: tuple(items.get(level, ())) for level in ATTRIBUTE_LEVELS}
        self._index = {
            level: {item: i for i, item in enumerate(values)}
            for level, values in self._items.items()
        }

    @classmethod
    def build(
        cls, parsed_train: Iterable[ParsedCaption], sizes: Mapping[str, int] | None = None
    ) -> AttributeVocabs:
        """Top-``sizes[level]`` items per level of the training captions (ties alphabetical)."""
        sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
        for level, size in sizes.items():
            if level not in ATTRIBUTE_LEVELS or int(size) < 1:
                raise DataError(
                    f"attribute size {level}={size} is invalid; levels are "
                    f"{list(ATTRIBUTE_LEVELS)} and sizes must be >= 1"
                )
        counts: dict[str, Counter[str]] = {level: Counter() for level in ATTRIBUTE_LEVELS}
        for parsed in parsed_train:
            for level, items in caption_items(parsed).items():
                counts[level].update(items)
        chosen = {
            level: sorted(counts[level], key=lambda item, c=counts[level]: (-c[item], item))[
                : int(sizes.get(level, DEFAULT_SIZES[level]))
            ]
            for level in ATTRIBUTE_LEVELS
        }
        return cls(chosen)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of items per level (the width of each multi-hot label vector)."""
        return {level: len(values) for level, values in self._items.items()}

    def items(self, level: str) -> tuple[str, ...]:
        """The items of ``level`` in index order."""
        return self._items[level]

    def labels(self, parsed: ParsedCaption) -> Labels:
        """Sorted label indices per level of one caption (items outside the vocabulary drop)."""
        out: Labels = {}
        for level, items in caption_items(parsed).items():
            index = self._index[level]
            out[level] = sorted(index[item] for item in items if item in index)
        return out

    def video_labels(self, parsed_captions: Iterable[ParsedCaption]) -> Labels:
        """Union of the labels of a video's captions, per level."""
        union: dict[str, set[int]] = {level: set() for level in ATTRIBUTE_LEVELS}
        for parsed in parsed_captions:
            for level, ids in self.labels(parsed).items():
                union[level].update(ids)
        return {level: sorted(ids) for level, ids in union.items()}

    def to_json(self) -> dict[str, Any]:
        """``{"levels": {level: [item, ...]}}``."""
        return {"levels": {level: list(values) for level, values in self._items.items()}}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabularies as JSON (atomically)."""
        atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AttributeVocabs:
        """Read vocabularies written by :meth:`save`."""
        data = read_json(path, "attribute vocabulary", "build it first")
        try:
            return cls(data["levels"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not an attribute vocabulary ({exc}); rebuild it") from exc

    def sha256(self) -> str:
        """Hex digest of the items of every level (identifies the vocabularies)."""
        text = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def label_statistics(
    label_lists: Sequence[Mapping[str, Sequence[int]]], sizes: Mapping[str, int]
) -> dict[str, dict[str, float | int]]:
    """Imbalance statistics per level of multi-hot labels (what focal BCE has to cope with).

    For each level: ``samples``, ``size``, ``labels_used`` (labels with >= 1 positive),
    ``positives_per_sample`` (mean) and ``max_positives``, ``positive_rate`` (mean share of
    the K labels that are positive), ``empty_share`` (samples with no label),
    ``label_frequency_min/median/max`` (positives per label), and ``rarest_half_share`` (share
    of all positives held by the rarer half of the labels).
    """
    stats: dict[str, dict[str, float | int]] = {}
    samples = len(label_lists)
    for level, size in sizes.items():
        frequency = np.zeros(max(int(size), 0), dtype=np.int64)
        per_sample = np.zeros(samples, dtype=np.int64)
        for row, labels in enumerate(label_lists):
            ids = list(labels.get(level, ()))
            per_sample[row] = len(ids)
            if ids:
                np.add.at(frequency, ids, 1)
        total = int(frequency.sum())
        ordered = np.sort(frequency)
        rare_half = int(ordered[: size // 2].sum()) if size else 0
        stats[level] = {
            "samples": samples,
            "size": int(size),
            "labels_used": int((frequency > 0).sum()),
            "positives_per_sample": float(per_sample.mean()) if samples else 0.0,
            "max_positives": int(per_sample.max()) if samples else 0,
            "positive_rate": float(per_sample.mean() / size) if samples and size else 0.0,
            "empty_share": float((per_sample == 0).mean()) if samples else 0.0,
            "label_frequency_min": int(ordered[0]) if size else 0,
            "label_frequency_median": float(np.median(ordered)) if size else 0.0,
            "label_frequency_max": int(ordered[-1]) if size else 0,
            "rarest_half_share": rare_half / total if total else 0.0,
        }
    return stats
