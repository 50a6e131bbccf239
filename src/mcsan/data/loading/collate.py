"""Encoded captions and per-video features -> padded model tensors (:mod:`mcsan.core.batch`).

:func:`encode_caption` turns a parsed caption into vocabulary ids and, per span level of
:data:`mcsan.core.batch.SPAN_PARTS`, an int array of token spans; :func:`collate_text` and
:func:`collate_video` pad a batch of them; :class:`TrainBatch` is one training batch with
its keys and attribute targets. Nothing here knows about the model or about where the data
came from.

Speed: a batch is assembled with numpy into one array per tensor and handed to torch once
(``torch.from_numpy``, no copy). No per-item torch op runs here: each tiny torch copy goes
through torch's intra-op thread pool, which on a busy 2-core machine cost ~8 ms apiece
(a 128-clip batch took a second); see ``benchmarks/bench_loader.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mcsan.core.batch import SPAN_PARTS, TextBatch, VideoBatch
from mcsan.core.errors import DataError
from mcsan.data.captions.parse import ParsedCaption, Vocabulary


@dataclass(frozen=True, eq=False)
class EncodedCaption:
    """A parsed caption as vocabulary ids and token spans, truncated to ``max_words``.

    tokens: int64 (L,), L >= 1. spans: level -> int64 (N, P, 2) ``[start, end)`` spans of the
    items that survive the truncation (P = ``SPAN_PARTS[level]``; N may be 0).
    """

    tokens: np.ndarray
    spans: Mapping[str, np.ndarray]


def encode_caption(parsed: ParsedCaption, vocab: Vocabulary, max_words: int) -> EncodedCaption:
    """Token ids (truncated to ``max_words``, at least one) and the spans that survive.

    A span is cut to the kept tokens; an item with a part that loses every token is dropped.
    """
    ids = list(vocab.encode(list(parsed.tokens)))[:max_words] or [Vocabulary.UNK]
    length = len(ids)
    spans = {}
    for level, parts in SPAN_PARTS.items():
        kept = []
        for item in parsed.items(level):
            pairs = [(p.start, min(p.end, length)) for p in item.parts]
            if all(start < end for start, end in pairs):
                kept.append(pairs)
        spans[level] = np.array(kept, dtype=np.int64).reshape(len(kept), parts, 2)
    return EncodedCaption(np.array(ids, dtype=np.int64), spans)


def pad_rows(arrays: Sequence[np.ndarray], fill: Any, min_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Stack arrays (n_i, *tail) into (B, max(n_i, min_width), *tail) and a (B, width) mask.

    One vectorised assignment: the rows of ``np.concatenate(arrays)`` fill the True cells of
    the mask in row-major order. ``fill`` (broadcast to ``tail``) marks padding.
    """
    lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    width = max(min_width, int(lengths.max(initial=0)))
    tail = arrays[0].shape[1:]
    out = np.empty((len(arrays), width, *tail), dtype=arrays[0].dtype)
    out[...] = fill
    mask = np.arange(width)[None, :] < lengths[:, None]
    if lengths.any():
        out[mask] = np.concatenate(arrays)
    return out, mask


def collate_text(captions: Sequence[EncodedCaption]) -> TextBatch:
    """Pad encoded captions into a TextBatch (N >= 1 per level; padded spans are (0, 1))."""
    tokens, mask = pad_rows([c.tokens for c in captions], 0)
    spans, masks = {}, {}
    for level, parts in SPAN_PARTS.items():
        padded, present = pad_rows([c.spans[level] for c in captions], np.array([0, 1]))
        if parts == 1:
            padded = padded[:, :, 0]
        spans[level] = torch.from_numpy(np.ascontiguousarray(padded))
        masks[level] = torch.from_numpy(present)
    return TextBatch(torch.from_numpy(tokens), torch.from_numpy(mask), spans, masks)


def select_frames(array: np.ndarray, max_frames: int | None) -> np.ndarray:
    """At most ``max_frames`` frames of ``array`` (T, ...), sampled uniformly in time."""
    if max_frames is None or array.shape[0] <= max_frames:
        return array
    keep = np.linspace(0, array.shape[0] - 1, max_frames).round().astype(np.int64)
    return array[keep]


def collate_video(
    items: Sequence[Mapping[str, np.ndarray]],
    streams: Sequence[str],
    max_frames: int | None = None,
) -> VideoBatch:
    """Pad per-video streams (T_i, ...) to (B, T, ...) float32 with a (B, T) frame mask.

    Items may hold float16 (as stored) or float32 arrays; the values reach the model as
    float32 either way (float16 -> float32 is exact). Float16 items are padded as float16
    (half the bytes to copy) and cast once per stream. Every stream of one video must have
    the same T; a video with no frame is an error.
    """
    clipped = [[select_frames(np.asarray(item[s]), max_frames) for s in streams] for item in items]
    lengths = np.array([arrays[0].shape[0] for arrays in clipped], dtype=np.int64)
    if lengths.min() < 1:
        raise DataError("a video has zero frames; re-extract its features")
    for arrays, count in zip(clipped, lengths, strict=True):
        for name, array in zip(streams, arrays, strict=True):
            if array.shape[0] != count:
                raise DataError(
                    f"stream {name!r} has {array.shape[0]} frames but {streams[0]!r} has "
                    f"{count} for the same video; re-extract its features"
                )
    frames = int(lengths.max())
    tensors = {}
    for column, name in enumerate(streams):
        shape = clipped[0][column].shape[1:]
        half = all(arrays[column].dtype == np.float16 for arrays in clipped)
        out = np.zeros((len(items), frames, *shape), dtype=np.float16 if half else np.float32)
        for row, arrays in enumerate(clipped):
            out[row, : lengths[row]] = arrays[column]  # a numpy copy per clip, no torch op
        # float16 -> float32 once per stream, in torch: several times faster than numpy's cast
        tensors[name] = torch.from_numpy(out).float()
    mask = torch.from_numpy(np.arange(frames)[None, :] < lengths[:, None])
    return VideoBatch(tensors, mask)


class LabelTable:
    """Label lists of many items packed flat (CSR), for multi-hot rows of any subset at once."""

    def __init__(self, label_lists: Sequence[Sequence[int]], size: int) -> None:
        counts = np.fromiter((len(labels) for labels in label_lists), np.int64, len(label_lists))
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.labels = np.fromiter(itertools.chain.from_iterable(label_lists), np.int64,
                                  int(counts.sum()))  # fmt: skip
        self.size = size

    def multi_hot(self, items: np.ndarray) -> torch.Tensor:
        """(len(items), size) float tensor: row i has 1 at each label of item ``items[i]``."""
        starts, ends = self.offsets[items], self.offsets[items + 1]
        counts = ends - starts
        rows = np.repeat(np.arange(len(items)), counts)
        # position of each label in the flat array: its item's start + its rank in the item
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        out = np.zeros((len(items), self.size), dtype=np.float32)
        out[rows, self.labels[np.repeat(starts, counts) + within]] = 1.0
        return torch.from_numpy(out)


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
    negative_video: VideoBatch | None = None
    """Hard negative clips (``data.hard_negatives``), or None."""
    negative_rows: torch.Tensor | None = None
    """long (N,): the batch row of the caption each negative clip is false for."""

    def _apply(self, video: Any, tensor: Any) -> TrainBatch:
        negative = self.negative_video
        return TrainBatch(
            video(self.video), video(self.text), tensor(self.video_keys),
            {k: tensor(v) for k, v in self.text_targets.items()},
            {k: tensor(v) for k, v in self.video_targets.items()},
            None if negative is None else video(negative),
            None if self.negative_rows is None else tensor(self.negative_rows),
        )  # fmt: skip

    def to(self, device: torch.device | str) -> TrainBatch:
        """The batch on ``device``."""
        return self._apply(lambda b: b.to(device),
                           lambda t: t.to(device, non_blocking=True))  # fmt: skip

    def pin_memory(self) -> TrainBatch:
        """The batch in page-locked memory (DataLoader with pin_memory=True calls this)."""
        return self._apply(lambda b: b.pin_memory(), lambda t: t.pin_memory())

    def __len__(self) -> int:
        return int(self.video_keys.shape[0])
