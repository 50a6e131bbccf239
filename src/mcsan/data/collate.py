"""Encoded captions and per-video features -> padded model tensors (:mod:`mcsan.batch`).

:func:`encode_caption` turns a parsed caption into vocabulary ids and token spans;
:func:`collate_text` and :func:`collate_video` pad a batch of them; :class:`TrainBatch`
is one training batch with its keys and attribute targets. Nothing here knows about the
model or about where the data came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mcsan.batch import TextBatch, VideoBatch
from mcsan.data.captions.parse import ParsedCaption, Vocabulary
from mcsan.errors import DataError

SpanPair = tuple[int, int]


@dataclass(frozen=True)
class EncodedCaption:
    """A parsed caption as vocabulary ids and token spans, truncated to ``max_words``."""

    tokens: tuple[int, ...]
    entities: tuple[SpanPair, ...]
    actions: tuple[SpanPair, ...]
    relations: tuple[tuple[SpanPair, SpanPair, SpanPair], ...]


def _clip(start: int, end: int, length: int) -> SpanPair | None:
    """The span cut to the first ``length`` tokens, or None when nothing is left of it."""
    end = min(end, length)
    if start >= end:
        return None
    return (start, end)


def encode_caption(parsed: ParsedCaption, vocab: Vocabulary, max_words: int) -> EncodedCaption:
    """Token ids (truncated to ``max_words``, at least one) and the spans that survive."""
    ids = list(vocab.encode(list(parsed.tokens)))[:max_words] or [Vocabulary.UNK]
    length = len(ids)

    def spans(items: Sequence[Any]) -> tuple[SpanPair, ...]:
        kept = (_clip(s.start, s.end, length) for s in items)
        return tuple(s for s in kept if s is not None)

    relations = []
    for relation in parsed.relations:
        parts = [
            _clip(p.start, p.end, length)
            for p in (relation.subject, relation.predicate, relation.object)
        ]
        if all(p is not None for p in parts):
            relations.append((parts[0], parts[1], parts[2]))
    return EncodedCaption(
        tuple(ids), spans(parsed.entities), spans(parsed.actions), tuple(relations)
    )


def collate_text(captions: Sequence[EncodedCaption]) -> TextBatch:
    """Pad encoded captions into a TextBatch (Ne, Na, Nr >= 1; padded spans are (0, 1))."""
    batch = len(captions)
    length = max(len(c.tokens) for c in captions)
    n_ent = max(1, *(len(c.entities) for c in captions))
    n_act = max(1, *(len(c.actions) for c in captions))
    n_rel = max(1, *(len(c.relations) for c in captions))
    tokens = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    ent = torch.tensor([0, 1]).repeat(batch, n_ent, 1)
    act = torch.tensor([0, 1]).repeat(batch, n_act, 1)
    rel = torch.tensor([0, 1]).repeat(batch, n_rel, 3, 1)
    ent_mask = torch.zeros(batch, n_ent, dtype=torch.bool)
    act_mask = torch.zeros(batch, n_act, dtype=torch.bool)
    rel_mask = torch.zeros(batch, n_rel, dtype=torch.bool)
    for row, cap in enumerate(captions):
        tokens[row, : len(cap.tokens)] = torch.tensor(cap.tokens, dtype=torch.long)
        mask[row, : len(cap.tokens)] = True
        if cap.entities:
            ent[row, : len(cap.entities)] = torch.tensor(cap.entities)
            ent_mask[row, : len(cap.entities)] = True
        if cap.actions:
            act[row, : len(cap.actions)] = torch.tensor(cap.actions)
            act_mask[row, : len(cap.actions)] = True
        if cap.relations:
            rel[row, : len(cap.relations)] = torch.tensor(cap.relations)
            rel_mask[row, : len(cap.relations)] = True
    return TextBatch(tokens, mask, ent, ent_mask, act, act_mask, rel, rel_mask)


def select_frames(array: np.ndarray, max_frames: int | None) -> np.ndarray:
    """At most ``max_frames`` frames of ``array`` (T, ...), sampled uniformly in time."""
    if max_frames is None or array.shape[0] <= max_frames:
        return array
    keep = np.linspace(0, array.shape[0] - 1, max_frames).round().astype(np.int64)
    return array[keep]


def collate_video(
    items: Sequence[dict[str, np.ndarray]], streams: Sequence[str], max_frames: int | None = None
) -> VideoBatch:
    """Pad per-video streams (T_i, ...) to (B, T, ...) float32 with a (B, T) frame mask.

    Every stream of one video must have the same T; a video with no frame is an error.
    """
    clipped = [
        {s: select_frames(np.asarray(item[s]), max_frames) for s in streams} for item in items
    ]
    lengths = [item[streams[0]].shape[0] for item in clipped]
    if min(lengths) < 1:
        raise DataError("a video has zero frames; re-extract its features")
    frames = max(lengths)
    mask = torch.zeros(len(items), frames, dtype=torch.bool)
    for row, count in enumerate(lengths):
        mask[row, :count] = True
    tensors = {}
    for name in streams:
        shape = clipped[0][name].shape[1:]
        out = torch.zeros(len(items), frames, *shape, dtype=torch.float32)
        for row, item in enumerate(clipped):
            array = item[name]
            if array.shape[0] != lengths[row]:
                raise DataError(
                    f"stream {name!r} has {array.shape[0]} frames but {streams[0]!r} has "
                    f"{lengths[row]} for the same video; re-extract its features"
                )
            out[row, : array.shape[0]] = torch.from_numpy(np.asarray(array, dtype=np.float32))
        tensors[name] = out
    return VideoBatch(tensors, mask)


def multi_hot(label_lists: Sequence[Sequence[int]], size: int) -> torch.Tensor:
    """(B, size) float tensor with 1 at each listed index."""
    out = torch.zeros(len(label_lists), size, dtype=torch.float32)
    for row, labels in enumerate(label_lists):
        if labels:
            out[row, list(labels)] = 1.0
    return out


@dataclass
class TrainBatch:
    """One (shard of a) training batch: clips, captions, keys and attribute targets."""

    video: VideoBatch
    text: TextBatch
    video_keys: torch.Tensor
    """long (B,): index of each caption's video; equal keys are never negatives."""
    text_targets: dict[str, torch.Tensor]
    """level -> (B, K) multi-hot labels of each caption."""
    video_targets: dict[str, torch.Tensor]
    """level -> (B, K) union of the labels of the video's training captions."""

    def to(self, device: torch.device | str) -> TrainBatch:
        """The batch on ``device``."""
        return TrainBatch(
            self.video.to(device),
            self.text.to(device),
            self.video_keys.to(device),
            {k: v.to(device) for k, v in self.text_targets.items()},
            {k: v.to(device) for k, v in self.video_targets.items()},
        )

    def __len__(self) -> int:
        return int(self.video_keys.shape[0])
