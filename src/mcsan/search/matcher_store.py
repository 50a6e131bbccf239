"""The binding matcher's inputs, stored in the index: what re-ranking reads per clip.

The matcher (:mod:`mcsan.model.matcher`) reads a clip only through
:meth:`~mcsan.model.matcher.BindingMatcher.encode_video`: per frame and grid cell a unit key
(``rerank_dim`` values, what a phrase attends over) and a change vector (``motion`` values,
what the attended cells do since the previous frame). Everything after that depends on the
caption. So an index built with a matcher checkpoint keeps exactly those two tensors,
float16, one ``(clips, frames, cells, key_dim + change_dim)`` array per segment
(``matcher.npy``, memory-mapped; :mod:`mcsan.search.segments`): re-ranking K candidates
reads K contiguous rows and skips the projection, instead of opening the feature file and
projecting each clip's grid again.

A clip shorter than the stored frame count has zero rows after its last frame; a real
frame's keys are unit vectors, so the frame mask is "its keys are not all zero". Float16
keeps the keys to about 5e-4 of their unit length; the match scores move by a few 1e-4
(measured on the test index, see tests/search/test_matcher_store.py), far below the gaps
that order a shortlist.

Rows are as long as the feature spec's ``frames`` (or the checkpoint's ``data.max_frames``);
clips of varying length make each segment as long as its longest clip, and reading rows of
several segments pads the shorter ones with zero frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcsan.model.matcher_inputs import MatcherText, MatcherVideo

MATCHER_PREFIX = "matcher"
STORE_DTYPE = "float16"


def store_layout(retriever: Any) -> dict[str, Any] | None:
    """``{frames, cells, key_dim, change_dim, dtype}`` of the store a checkpoint's matcher
    reads (``frames`` 0: clips of varying length, each segment as long as its longest clip),
    or None without a matcher."""
    if retriever is None or not getattr(retriever, "has_matcher", False):
        return None
    matcher = retriever.model.matcher
    spec = retriever.feature_spec
    cap = int(retriever.config.data.max_frames or 0)
    frames = min(cap, int(spec.frames)) if cap and spec.frames > 0 else cap or int(spec.frames)
    stream = matcher.cell_streams[0]
    cells = int(spec.streams[stream][0]) if matcher.on_grid else 1
    return {"frames": frames, "cells": cells, "key_dim": int(matcher.key.out_features),
            "change_dim": int(matcher.change.out_features), "dtype": STORE_DTYPE}  # fmt: skip


def segment_frames(layout: Mapping[str, Any], store: Any, ids: Sequence[str],
                   cap: int | None) -> int:  # fmt: skip
    """Frames per stored row of a segment of ``ids``: the layout's, or (varying length) the
    longest clip's in the FeatureStore ``store`` (at most ``cap``)."""
    if layout["frames"]:
        return int(layout["frames"])
    longest = max((store.frame_count(video_id) for video_id in ids), default=1)
    return int(min(longest, cap) if cap else longest)


def encode_rows(retriever: Any, clips: Sequence[Mapping[str, np.ndarray]],
                frames: int) -> np.ndarray:  # fmt: skip
    """The stored rows of ``clips``: (B, frames, cells, key_dim + change_dim) float16,
    frames after a clip's last one zero."""
    video = retriever.match_clips(clips)
    keep = video.mask[..., None, None].to(video.keys.dtype)
    block = torch.cat([video.keys * keep, video.change * keep], dim=-1).numpy()
    out = np.zeros((len(clips), frames, *block.shape[2:]), np.float16)
    count = min(frames, block.shape[1])
    out[:, :count] = block[:, :count]
    return out


def to_video(rows: np.ndarray, key_dim: int) -> MatcherVideo:
    """Stored rows (B, T, G, key_dim + change_dim) as the matcher's clips (float32)."""
    rows = np.asarray(rows)
    keys = torch.empty(rows.shape[:-1] + (key_dim,), dtype=torch.float32)
    change = torch.empty(rows.shape[:-1] + (rows.shape[-1] - key_dim,), dtype=torch.float32)
    keys.copy_(torch.from_numpy(rows[..., :key_dim]))  # one pass each: cast and split
    change.copy_(torch.from_numpy(rows[..., key_dim:]))
    mask = keys[:, :, 0].abs().sum(-1) > 0  # a real frame's first cell has a unit key
    return MatcherVideo(keys, change, mask)


PAIRS_PER_CALL = 512
"""Most (caption, clip) pairs :func:`match_rows` gives the matcher in one call: a few
queries' shortlists. It bounds the scratch memory a thread keeps (float16 and float32
copies of that many clips: 31 MB at the demo's sizes) and how far a call's captions are
padded; 500 to 3,000 pairs a call cost the same within the noise of a busy machine."""

_scratch = threading.local()


def match_rows(retriever: Any, store: Any, key_dim: int,
               requests: Sequence[tuple[str, np.ndarray]]) -> list[np.ndarray]:  # fmt: skip
    """The binding matcher's score of each request's query against each of its ``rows`` of
    the matcher store ``store``: one float32 array per request.

    The requests go to the matcher together: their captions read once, then a few
    shortlists per call (:data:`PAIRS_PER_CALL`; requests of captions with as many
    phrases, actions and relations side by side, each call's captions padded only to its
    own longest). Each call's clips are read from the store and made float32 into memory
    this thread reuses (fresh arrays of that size cost more in page faults than the
    matcher's work), and a request's pairs are consecutive, so the matcher reads its clips
    without copying them (:func:`mcsan.model.matcher._pairs_by_runs`)."""
    text = retriever.match_text([query for query, _ in requests])
    counts = torch.stack([mask.sum(-1) for mask in text.masks.values()], -1).tolist()
    order = sorted(range(len(requests)), key=lambda n: counts[n], reverse=True)
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(requests)
    start = 0
    while start < len(order):
        end, pairs = start + 1, len(requests[order[start]][1])
        while end < len(order) and pairs + len(requests[order[end]][1]) <= PAIRS_PER_CALL:
            pairs, end = pairs + len(requests[order[end]][1]), end + 1
        numbers = order[start:end]
        sizes = [len(requests[n][1]) for n in numbers]
        rows = np.concatenate([np.asarray(requests[n][1], np.int64) for n in numbers])
        scores = retriever.match_scores(_trimmed(text.rows(torch.tensor(numbers))),
                                        _read_clips(store, rows, key_dim),
                                        np.repeat(np.arange(len(numbers)), sizes),
                                        np.arange(len(rows)))  # fmt: skip
        parts = np.split(np.asarray(scores, np.float32), np.cumsum(sizes)[:-1])
        for number, part in zip(numbers, parts, strict=True):
            out[number] = part
        start = end
    return out


def _trimmed(text: MatcherText) -> MatcherText:
    """``text`` with each term's items cut after the last one any caption has."""
    parts, masks = {}, {}
    for term, mask in text.masks.items():
        used = torch.nonzero(mask.any(0))
        keep = int(used[-1, 0]) + 1 if len(used) else 0
        parts[term] = tuple(part[:, :keep] for part in text.parts[term])
        masks[term] = mask[:, :keep]
    return MatcherText(parts, masks)


def _read_clips(store: Any, rows: np.ndarray, key_dim: int) -> MatcherVideo:
    """:func:`to_video` of ``store[rows]``, in this thread's scratch arrays (valid until
    its next call)."""
    shape = (max(len(rows), PAIRS_PER_CALL), *store.shape[1:])
    arrays = getattr(_scratch, "arrays", None)
    if arrays is None or arrays[0].shape[1:] != shape[1:] or len(arrays[0]) < len(rows):
        arrays = (np.empty(shape, np.float16),
                  torch.empty((*shape[:-1], key_dim), dtype=torch.float32),
                  torch.empty((*shape[:-1], shape[-1] - key_dim), dtype=torch.float32))  # fmt: skip
        _scratch.arrays = arrays
    count = len(rows)
    half, keys, change = (array[:count] for array in arrays)
    if isinstance(store, np.ndarray):
        if len(rows) and not 0 <= int(rows.min()) <= int(rows.max()) < len(store):
            raise IndexError(f"rows {rows.min()}..{rows.max()} of a store of {len(store)}")
        np.take(np.asarray(store), rows, axis=0, out=half, mode="clip")  # checked: 3x faster
    else:  # rows of several segments
        half[:] = store[rows]
    keys.copy_(torch.from_numpy(half[..., :key_dim]))  # contiguous: the matcher's products
    change.copy_(torch.from_numpy(half[..., key_dim:]))  # on them run twice as fast
    return MatcherVideo(keys, change, keys[:, :, 0].abs().sum(-1) > 0)


def segment_name(version: int) -> str:
    """File name of the store segment written at index ``version`` (0: the build)."""
    return f"{MATCHER_PREFIX}.npy" if version == 0 else f"{MATCHER_PREFIX}.v{version}.npy"


class StoreWriter:
    """Writes a store segment of ``count`` rows into a .npy file batch by batch (memory-mapped,
    so a million clips never sit in memory)."""

    def __init__(self, path: str | os.PathLike[str], count: int, layout: Mapping[str, Any],
                 frames: int) -> None:  # fmt: skip
        """Create ``path`` with room for ``count`` rows of ``layout``, ``frames`` long."""
        self.path = Path(path)
        self.layout = dict(layout)
        self.frames = int(frames)
        shape = (count, self.frames, layout["cells"],
                 layout["key_dim"] + layout["change_dim"])  # fmt: skip
        self.array = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float16,
                                               shape=shape)  # fmt: skip
        self.filled = 0

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` after the ones written so far."""
        self.array[self.filled : self.filled + len(rows)] = rows
        self.filled += len(rows)

    def close(self) -> np.ndarray:
        """Flush; the rows as a read-only memory map."""
        self.array.flush()
        del self.array
        return np.load(self.path, mmap_mode="r")
