"""Per-clip concept scores: the frame encoder's ImageNet class probabilities, kept in the index.

A clip is sampled at ``CONCEPT_FRAMES`` frames (uniform over its duration, ``CONCEPT_SIZE``
pixels square, the classifier's input size); each frame gets the 1,000-class softmax of
EfficientNet-Lite0's pretrained head (the ``logits`` stream of
:mod:`mcsan.data.video.backbone`). Pooling over frames is the **top-3 mean**: for each class,
the mean of its 3 highest frame probabilities (all frames when fewer). It keeps an object
seen in part of a clip (a max would, too) while one odd frame cannot carry the clip alone.

The people detector (:mod:`mcsan.search.people`) adds one row per ``PEOPLE_CONCEPTS``
(person, people, face) after the 1,000 classes, pooled the same way from its per-frame 0/1
indicators. An index built before it has 1,000 rows: queries for people then say so.

The scores are one dense matrix ``(rows, clips)`` (float32, ``concepts.npy``, memory-mapped
when served), stored class-major so a query, which names a few classes, reads only their
rows: the concept score of every clip is the product ``weights (M,) @ probs[classes] (M, N)``,
computed as M row updates (no BLAS threads to spin on a busy machine; float16 storage was
tried and dropped: numpy's float16 -> float32 cast cost 10x the product).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import CheckpointError, SearchError
from mcsan.search.concepts import (
    ENCODER_NAME,
    IMAGENET_CLASSES,
    PEOPLE_CONCEPTS,
    ConceptQuery,
    concept_label,
    load_classes,
)

CONCEPTS_NAME = "concepts.npy"
CONCEPT_FRAMES = 8
CONCEPT_SIZE = 224
TOP_FRAMES = 3
POOLING = f"top{TOP_FRAMES}_mean of per-frame softmax"


def pool_probabilities(logits: np.ndarray, top: int = TOP_FRAMES) -> np.ndarray:
    """Class probabilities of a clip (C,) from its per-frame logits (T, C): top-``top`` mean."""
    array = np.asarray(logits, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise SearchError(f"expected per-frame logits (T, C) with T >= 1, got {array.shape}")
    shifted = np.exp(array - array.max(axis=1, keepdims=True))
    return pool_frames(shifted / shifted.sum(axis=1, keepdims=True), top)


def pool_frames(values: np.ndarray, top: int = TOP_FRAMES) -> np.ndarray:
    """Per-frame scores (T, C) -> the clip's (C,): for each column the mean of its ``top``
    highest frames (all frames when fewer)."""
    count = min(int(top), values.shape[0])
    return np.sort(values, axis=0)[-count:].mean(axis=0)


class ConceptScores:
    """The (classes, clips) probability matrix of an index and how it was made."""

    def __init__(self, probs: np.ndarray, info: Mapping[str, Any] | None = None) -> None:
        """``probs`` is (C, N), class-major; ``info`` describes encoder and pooling."""
        if probs.ndim != 2:
            raise SearchError(f"concept scores must be (classes, clips), got {probs.shape}")
        self.probs = probs
        self.info = dict(info or {})
        self.live: np.ndarray | None = None
        """Which clips are still in the index (None: all); removed ones never rank."""

    @classmethod
    def from_clips(
        cls, per_clip_logits: Sequence[np.ndarray], *, frames: int = CONCEPT_FRAMES,
        size: int = CONCEPT_SIZE, per_clip_people: Sequence[np.ndarray] | None = None,
        detector: str | None = None,
    ) -> ConceptScores:
        """Pool each clip's (T, C) logits into one column, and its (T, 3) people indicators
        (``per_clip_people``, from ``detector``) into three more rows."""
        if not per_clip_logits:
            raise SearchError("no clips to score; check the video folder")
        columns = [pool_probabilities(logits) for logits in per_clip_logits]
        if per_clip_people is not None:
            columns = [np.concatenate([column, pool_frames(np.asarray(people, np.float32))])
                       for column, people in zip(columns, per_clip_people, strict=True)]
        probs = np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float32)
        info: dict[str, Any] = {
            "encoder": ENCODER_NAME, "classes": len(load_classes()), "pooling": POOLING,
            "frames": int(frames), "size": int(size),
        }
        if per_clip_people is not None:
            info["detector"] = {"name": detector, "concepts": list(PEOPLE_CONCEPTS)}
        return cls(probs, info)

    @property
    def has_people(self) -> bool:
        """Whether the index holds the people detector's rows."""
        return self.probs.shape[0] >= IMAGENET_CLASSES + len(PEOPLE_CONCEPTS)

    def usable(self, query: ConceptQuery) -> tuple[np.ndarray, np.ndarray]:
        """The query's concepts (and weights) that this index has rows for."""
        keep = query.concepts < self.probs.shape[0]
        return query.concepts[keep], query.weights[keep]

    def __len__(self) -> int:
        """Number of clips."""
        return int(self.probs.shape[1])

    def scores(self, query: ConceptQuery, rows: np.ndarray | None = None) -> np.ndarray:
        """Concept score ``sum_c w_c p(c)`` of every clip (or of ``rows``), float32."""
        count = len(self) if rows is None else len(rows)
        total = np.zeros(count, np.float32)
        scratch = np.empty(count, np.float32)
        concepts, weights = self.usable(query)
        pairs = zip(concepts.tolist(), weights.tolist(), strict=True)
        for concept, weight in sorted(pairs):
            row = self.probs[concept] if rows is None else self.probs[concept, rows]
            np.multiply(row, np.float32(weight), out=scratch, casting="unsafe")
            total += scratch
        return total

    def top(self, query: ConceptQuery, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``k`` best clips, best first (ties by row)."""
        scores = self.scores(query)
        if self.live is not None:
            scores[~self.live] = -np.inf
        k = max(0, min(int(k), len(scores) if self.live is None else int(self.live.sum())))
        if k == 0 or len(self.usable(query)[0]) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        order = np.lexsort((part, -scores[part]))
        rows = part[order].astype(np.int64)
        return rows, scores[rows]

    def explain(self, query: ConceptQuery, row: int, limit: int = 3) -> list[dict[str, Any]]:
        """The matched classes that contribute most to clip ``row``: name, p, weight, share."""
        concepts, weights = self.usable(query)
        if len(concepts) == 0:
            return []
        probs = np.asarray(self.probs[concepts, row], dtype=np.float32)
        contribution = probs * weights
        words: dict[int, list[str]] = {}
        for match in query.matches:
            words.setdefault(match.concept, []).append(match.word)
        out = []
        order = np.argsort(-contribution, kind="stable")[:limit]
        order = [pos for i, pos in enumerate(order) if i == 0 or contribution[pos] >= 5e-4]
        for pos in order:  # the first, and the others that carry something
            index = int(concepts[pos])
            out.append({
                "concept": concept_label(index), "words": words.get(index, []),
                "weight": round(float(weights[pos]), 4),
                "probability": round(float(probs[pos]), 4),
                "contribution": round(float(contribution[pos]), 5),
            })
        return out

    # ------------------------------------------------------------ persistence
    def save_into(self, directory: str | os.PathLike[str]) -> None:
        """Write ``concepts.npy`` into ``directory`` (the index's temporary folder)."""
        np.save(Path(directory) / CONCEPTS_NAME, np.asarray(self.probs, np.float32))

    @classmethod
    def load_from(
        cls, directory: str | os.PathLike[str], info: Mapping[str, Any], count: int,
        mmap: bool = True,
    ) -> ConceptScores:
        """Read ``concepts.npy`` of an index of ``count`` clips; CheckpointError if damaged."""
        path = Path(directory) / CONCEPTS_NAME
        try:
            probs = np.load(path, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path}: concept scores are damaged ({exc}); rebuild with `mcsan index`"
            ) from exc
        rows = int(info.get("classes", 0)) + len((info.get("detector") or {}).get("concepts", ()))
        if probs.ndim != 2 or probs.shape != (rows, count):
            raise CheckpointError(
                f"{path}: concept scores have shape {probs.shape}, expected "
                f"({rows}, {count}); rebuild the index with `mcsan index`"
            )
        return cls(probs, info)
