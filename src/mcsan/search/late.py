"""The first stage's late interaction in search (``rerank.late_weight`` > 0).

Evaluation scores every clip by ``first = fused + late_weight * late``
(:mod:`mcsan.evaluate.first_stage`): ``late`` is the mean of the binding matcher's
``rerank.late_terms``, read from the clip's stored cell keys and changes (the index's
matcher store, :mod:`mcsan.search.matcher_store`). Scoring every clip of a large index that way per query
is too slow, so search does what late-interaction retrievers do (ColBERT's candidate
generation, then exact scoring):

1. candidates: the fused index's top ``pool`` clips, and the clips whose *slots* best match
   the caption's phrase queries (entity phrases, action agents, relation subjects and
   objects). A clip's slots are
   :data:`SLOTS` unit vectors summarising its ``frames x cells`` keys (spherical k-means;
   one object's cells across frames fall in one slot); a clip's candidate score is the sum
   over phrases of its best slot's cosine (MaxSim);
2. exact scoring of the union: the fused score from the index's vectors, the late terms
   from the store, ``first`` as in evaluation.

Slots are computed from the store on first use and cached beside it (``late_slots.npy``);
after ``mcsan index --add`` only the new segment's clips are computed (the cache records
the store files it came from; removed clips keep their rows and are never candidates). Below :data:`EXACT_CLIPS` clips every clip is scored
exactly and no candidates are generated, so search equals evaluation there.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import numpy as np
import torch

from mcsan.core.errors import OutputError
from mcsan.core.io import atomic_path, atomic_write_json
from mcsan.search.index import VideoIndex
from mcsan.search.index_identity import META_NAME
from mcsan.search.matcher_store import MATCHER_PREFIX, to_video
from mcsan.search.segments import prefetch

log = logging.getLogger(__name__)

SLOTS = 8
"""Slot vectors per clip for candidate generation."""
EXACT_CLIPS = 4096
"""Up to this many clips, every clip is scored exactly (no candidate generation)."""
SLOT_CANDIDATES = 512
"""Clips the slots add to the fused candidates (beside the fused top ``pool``)."""
SLOT_FILE = "late_slots.npy"
_CHUNK = 2048


def clip_slots(rows: np.ndarray, key_dim: int, slots: int = SLOTS, steps: int = 6) -> np.ndarray:
    """(B, slots, key_dim) float32 unit vectors summarising each stored clip's cell keys
    (rows (B, T, G, key_dim + change_dim)): spherical k-means started from the cells
    farthest from each other (padding frames left out; a slot with no cell keeps its seed)."""
    keys = torch.from_numpy(np.asarray(rows[..., :key_dim], dtype=np.float32))
    keys = keys.reshape(len(keys), -1, key_dim)  # (B, N, d)
    real = keys.abs().sum(-1) > 0  # (B, N)
    batch = torch.arange(len(keys))
    # seeds: the first real cell, then each time the cell least like every seed so far
    first = real.float().argmax(1)
    centres = [keys[batch, first]]
    closest = torch.einsum("bnd,bd->bn", keys, centres[0])
    for _ in range(slots - 1):
        pick = closest.masked_fill(~real, float("inf")).argmin(1)
        centres.append(keys[batch, pick])
        closest = torch.maximum(closest, torch.einsum("bnd,bd->bn", keys, centres[-1]))
    centre = torch.stack(centres, 1)  # (B, S, d)
    for _ in range(steps):
        assign = torch.einsum("bnd,bsd->bns", keys, centre).argmax(-1)
        member = torch.nn.functional.one_hot(assign, slots).float() * real[..., None].float()
        summed = torch.einsum("bns,bnd->bsd", member, keys)
        empty = member.sum(1)[..., None] == 0
        centre = torch.where(empty, centre, torch.nn.functional.normalize(summed, dim=-1))
    return centre.numpy()


class LateFirstStage:
    """Candidates and exact first-stage scores of a query on one index (see the module
    docstring). ``encoder``: the checkpoint's encoder (a Retriever, or its batched wrapper)."""

    def __init__(self, index: VideoIndex, encoder: Any, weight: float) -> None:
        """``index`` must hold a matcher store of ``encoder``'s layout."""
        self.index = index
        self.encoder = encoder
        self.weight = float(weight)
        self.terms = tuple(encoder.late_terms)
        self.is_match = set(self.terms) == set(getattr(encoder, "match_terms", ()))
        """Whether the late terms are all the matcher's: then a clip's late score is its match
        score, and the second stage reads it instead of scoring the shortlist again."""
        self._slots: np.ndarray | None = None
        self._clips: Any = None  # every stored clip as the matcher reads it (exact mode)
        self._clips_lock = threading.Lock()  # request threads: read the store once

    @property
    def exact(self) -> bool:
        """Whether every clip is scored exactly (a small index)."""
        return len(self.index.ids) <= EXACT_CLIPS

    def slots(self) -> np.ndarray:
        """(rows x SLOTS, key_dim) float32 slots of every row (removed clips' too), held in
        memory (a clip's 8 slots: 2 KB; the file keeps them as float16)."""
        if self._slots is None:
            stored = self._load_or_build_slots()
            self._slots = np.asarray(stored, np.float32).reshape(-1, stored.shape[-1])
        return self._slots

    def _slot_key(self) -> dict[str, Any]:
        """What the cached slots were computed from: the checkpoint, the store layout, and
        the store's segment files as meta.json records them (size, end hash) when it does
        (else the row count and index version, matched exactly)."""
        files = None
        if self.index.directory is not None:
            try:
                recorded = json.loads((self.index.directory / META_NAME).read_text()).get("files")
            except (OSError, ValueError):
                recorded = None
            if recorded:
                files = {n: e for n, e in recorded.items() if n.startswith(MATCHER_PREFIX)}
        key: dict[str, Any] = {"slots": SLOTS, "checkpoint": self.index.checkpoint_sha256,
                               "matcher": self.index.matcher_info, "rows": len(self.index.ids)}
        return {**key, "files": files} if files else {**key, "version": self.index.version}

    def _reusable_rows(self, key: dict[str, Any]) -> np.ndarray | None:
        """The cached slots of the rows whose store files are unchanged (an index only
        appends segments, so they are its first rows); None when nothing can be reused."""
        directory = self.index.directory
        if directory is None or not (directory / SLOT_FILE).is_file():
            return None
        try:
            meta = json.loads((directory / (SLOT_FILE + ".json")).read_text())
            cached = np.load(directory / SLOT_FILE, mmap_mode="r")
        except (OSError, ValueError):
            return None
        same = all(meta.get(k) == key[k] for k in ("slots", "checkpoint", "matcher"))
        if not same or len(cached) != meta.get("rows") or meta["rows"] > key["rows"]:
            return None
        if "files" in key and meta.get("files"):
            kept = all(key["files"].get(name) == entry for name, entry in meta["files"].items())
            return cached if kept else None
        return cached if meta == key else None

    def _load_or_build_slots(self) -> np.ndarray:
        directory = self.index.directory
        key = self._slot_key()
        cached = self._reusable_rows(key)
        if cached is not None and len(cached) == key["rows"]:
            return cached
        key_dim = int(self.index.matcher_info["key_dim"])  # type: ignore[index]
        total = len(self.index.ids)
        out = np.zeros((total, SLOTS, key_dim), np.float16)
        done = 0 if cached is None else len(cached)
        if cached is not None:
            out[:done] = cached
        for start in range(done, total, _CHUNK):
            rows = np.arange(start, min(start + _CHUNK, total))
            out[rows] = clip_slots(self.index.matcher[rows], key_dim)
        log.info("late interaction: slots of %d clips computed (%d reused)", total - done, done)
        if directory is not None:
            try:
                with atomic_path(directory / SLOT_FILE) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, out)
                atomic_write_json(directory / (SLOT_FILE + ".json"), key)
            except (OSError, OutputError) as exc:  # a read-only index: keep them in memory
                log.info("late interaction: slots not cached (%s)", exc)
        return out

    def candidates(self, queries: np.ndarray, fused_rows: np.ndarray, count: int) -> np.ndarray:
        """Rows to score exactly: ``fused_rows`` and the ``count`` live clips whose slots
        best match ``queries`` (Q, key_dim), by the sum over queries of the best slot."""
        live = self.index.live_mask()
        if self.exact:
            rows = np.arange(len(self.index.ids))
            return rows if live is None else rows[live]
        if len(queries) == 0:
            return np.asarray(fused_rows, np.int64)
        slots = torch.from_numpy(self.slots())  # a view, no copy
        total = np.empty(len(self.index.ids), np.float32)
        query = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
        step = 32768  # clips per block: one (Q, block x SLOTS) product, slots last
        for start in range(0, len(total), step):  # torch: 2.7x numpy's one-thread BLAS here
            stop = min(start + step, len(total))
            cosine = query @ slots[start * SLOTS : stop * SLOTS].T  # 3x faster than slots @ q.T
            best = cosine.reshape(len(query), stop - start, SLOTS).amax(2).sum(0)
            total[start:stop] = best.numpy()
        if live is not None:
            total[~live] = -np.inf
        count = min(count, int(np.isfinite(total).sum()))
        best = np.argpartition(-total, count - 1)[:count] if count else np.zeros(0, np.int64)
        return np.union1d(np.asarray(fused_rows, np.int64), best)

    def every_clip(self) -> Any:
        """Every stored clip as the matcher reads it (float32, held in memory: 40 KB a clip
        at the demo's sizes, so at most ~170 MB below :data:`EXACT_CLIPS`)."""
        with self._clips_lock:
            if self._clips is None or len(self._clips.mask) != len(self.index.matcher):
                key_dim = int(self.index.matcher_info["key_dim"])  # type: ignore[index]
                self._clips = to_video(np.array(self.index.matcher[:]), key_dim)  # writable
            return self._clips

    def late(self, text: str, rows: np.ndarray) -> np.ndarray:
        """The late terms of ``text`` against the clips at ``rows``, one dense pass (the
        caption against every clip) per chunk of the store's rows (exact mode: over every
        clip held in memory)."""
        if not len(rows):
            return np.zeros(0, np.float32)
        if self.exact:
            return self.encoder.late_every([text], self.every_clip())[0][rows]
        key_dim = int(self.index.matcher_info["key_dim"])  # type: ignore[index]
        out = np.empty(len(rows), np.float32)
        for start in range(0, len(rows), _CHUNK):
            part = np.asarray(rows[start : start + _CHUNK], np.int64)
            prefetch(self.index.matcher, part)
            video = to_video(self.index.matcher[part], key_dim)
            out[start : start + len(part)] = self.encoder.late_every([text], video)[0]
        return out

    def phrase_queries(self, text: str) -> np.ndarray:
        """(Q, key_dim): the caption's phrase queries of the late terms."""
        return self.encoder.late_queries([text])[0]
