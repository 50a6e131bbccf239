"""A searchable index of a video collection: per-level embeddings fused into one FAISS index.

The fused score (defined in :mod:`mcsan.model.scoring`; caption embeddings already carry
each caption's renormalisation) is ``sum_l w_l * <t_l, v_l>``. Each video is stored as the
concatenation of ``sqrt(|w_l|) * v_l`` and each query as ``sign(w_l) * sqrt(|w_l|) * t_l``,
so a plain inner-product search over the fused vectors ranks by exactly the model's fused
score. The per-level embeddings are kept beside the FAISS index so each hit can report
how much every level contributed. An index may also (or only: built without a checkpoint)
hold per-clip concept scores (:mod:`mcsan.search.concept_index`).

On disk an index is a directory, written to a temporary sibling and renamed into place::

    INDEX/meta.json          ids, media paths, levels, weights, checkpoint sha256, kind
    INDEX/faiss.index        the FAISS index over the fused vectors
    INDEX/emb_<level>.npy    the per-level embeddings (float32, L2-normalised by the model)
    INDEX/concepts.npy       optional: ImageNet class probabilities (classes, clips) float32

meta.json also holds each file's size and end hash, checked at load (:mod:`.index_files`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.search.concept_index import ConceptScores
from mcsan.search.faiss_kinds import (
    META_KINDS,
    PQ_POOL,
    choose_kind,
    default_nlist,  # noqa: F401  (re-exported: benchmarks read them here)
    default_nprobe,  # noqa: F401
    make_index,
    set_nprobe,
)
from mcsan.search.faiss_threads import faiss_search
from mcsan.search.fusion import fuse, fuse_scales
from mcsan.search.segments import prefetch, release

ADD_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class SearchResult:
    """Rows and scores of one query: ``rows[i]`` has fused ``scores[i]``."""

    rows: np.ndarray
    scores: np.ndarray
    level_scores: dict[str, np.ndarray]


class VideoIndex:
    """Per-level video embeddings, their ids and media paths, and a FAISS index over them.

    ``ids[row]`` is None for a removed clip (a tombstone: its rows stay in their segment,
    FAISS no longer returns it); ``len(index)`` counts the clips still in it.
    """

    def __init__(
        self,
        embeddings: Mapping[str, Any],
        ids: Sequence[str | None],
        paths: Sequence[str | None],
        weights: Mapping[str, float],
        checkpoint_sha256: str | None,
        faiss_index: Any,
        *,
        media_root: str | None = None,
        kind: str = "flat",
        nprobe: int | None = None,
        extra: Mapping[str, Any] | None = None,
        concepts: ConceptScores | None = None,
        matcher: Any = None,
        matcher_info: Mapping[str, Any] | None = None,
        segments: Sequence[Mapping[str, Any]] | None = None,
        version: int = 0,
    ) -> None:
        """Wrap already-built parts; use :meth:`build` or :meth:`load` to make one."""
        self.levels: tuple[str, ...] = tuple(embeddings)
        self.embeddings = dict(embeddings)
        self.ids = list(ids)
        self.paths = list(paths)
        self.weights = {lv: float(weights[lv]) for lv in self.levels}
        self.checkpoint_sha256 = checkpoint_sha256
        self.faiss_index = faiss_index
        self.media_root = media_root
        self.kind = kind if faiss_index is not None else "flat"
        self.approx = self.kind != "flat"
        self.extra = dict(extra or {})
        self.concepts = concepts
        self.matcher = matcher
        """The binding matcher's stored inputs (rows, frames, cells, key + change) or None."""
        self.matcher_info = dict(matcher_info) if matcher_info else None
        self.segments = [dict(seg) for seg in segments] if segments else [
            {"rows": len(self.ids), "files": {}}]
        self.sources: dict[tuple[int, str], Path] = {}
        """(segment, role) -> the .npy file holding that block (carried, not rewritten)."""
        self.version = int(version)
        self._row_of = {vid: row for row, vid in enumerate(self.ids) if vid is not None}
        self.nprobe = nprobe
        self.directory: Path | None = None
        """The folder the index was loaded from (None until saved or loaded)."""
        self.on_disk: dict[str, tuple[int, int, int] | None] = {}  # stats when loaded/saved
        set_nprobe(faiss_index, nprobe)
        if concepts is not None:
            concepts.live = self.live_mask()

    def live_mask(self) -> np.ndarray | None:
        """Which rows are still in the index (None: all of them)."""
        if len(self._row_of) == len(self.ids):
            return None
        return np.array([vid is not None for vid in self.ids], bool)

    # ---------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        embeddings: Mapping[str, np.ndarray],
        ids: Sequence[str],
        paths: Sequence[str | None] | None,
        weights: Mapping[str, float],
        checkpoint_sha256: str | None,
        *,
        media_root: str | os.PathLike[str] | None = None,
        approx: bool = False,
        index_type: str | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        seed: int = 0,
        extra: Mapping[str, Any] | None = None,
        concepts: ConceptScores | None = None,
        matcher: Any = None,
        matcher_info: Mapping[str, Any] | None = None,
    ) -> VideoIndex:
        """Build an index from per-level embeddings ``{level: (N, d_l)}`` of N videos.

        ``index_type`` (:mod:`mcsan.search.faiss_kinds`): ``auto`` chooses by size; None
        means ``ivf`` with ``approx``, else ``flat`` (``nlist`` / ``nprobe`` default from
        :func:`default_nlist` / :func:`default_nprobe`). With ``concepts`` (one column per
        video) the embeddings may be empty: a concept-only index, searchable with no trained
        model. ``matcher``: the binding matcher's stored rows (:mod:`mcsan.search.matcher_store`).
        """
        levels = tuple(embeddings)
        if not levels and concepts is None:
            raise SearchError("cannot build an index with no levels; pass {level: (N, d)} arrays")
        missing = [lv for lv in levels if lv not in weights]
        if missing:
            raise SearchError(f"no level weight for {missing}; pass a weight for every level")
        ids = [str(v) for v in ids]
        count = len(ids)
        if count == 0:
            raise SearchError("cannot build an index of zero videos; check the video folder")
        if len(set(ids)) != count:
            dup = next(v for v in ids if ids.count(v) > 1)
            raise SearchError(f"video id {dup!r} appears twice; ids must be unique")
        paths = list(paths) if paths is not None else [None] * count
        if len(paths) != count:
            raise SearchError(f"{len(paths)} media paths for {count} ids; pass one per video")
        if concepts is not None and len(concepts) != count:
            raise SearchError(
                f"{len(concepts)} concept columns for {count} ids; pass one per video"
            )
        if matcher is not None and len(matcher) != count:
            raise SearchError(f"{len(matcher)} matcher rows for {count} ids; pass one per video")
        arrays: dict[str, np.ndarray] = {}
        for level in levels:
            array = embeddings[level]
            if not isinstance(array, np.memmap):
                array = np.ascontiguousarray(array, dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != count:
                raise SearchError(
                    f"level {level!r} embeddings have shape {array.shape}; expected ({count}, d)"
                )
            for start in range(0, count, ADD_CHUNK_ROWS):
                if not np.isfinite(array[start : start + ADD_CHUNK_ROWS]).all():
                    raise SearchError(f"level {level!r} embeddings contain NaN or inf")
                release(array)
            arrays[level] = array
        dim = sum(a.shape[1] for a in arrays.values())
        video_scale, _ = fuse_scales(levels, weights)
        index, kind = None, "flat"
        if levels:
            kind = choose_kind(count, dim, index_type or ("ivf" if approx else "flat"))
            index, nprobe = make_index(
                kind, dim, count,
                lambda rows: training_sample(arrays, levels, video_scale, rows),
                nlist=nlist, nprobe=nprobe, seed=seed,
            )
            add_rows(index, arrays, levels, video_scale, 0)
        root = str(Path(media_root).resolve()) if media_root is not None else None
        return cls(
            arrays, ids, paths, weights, checkpoint_sha256, index,
            media_root=root, kind=META_KINDS[kind], nprobe=nprobe, extra=extra,
            concepts=concepts, matcher=matcher, matcher_info=matcher_info,
        )

    # --------------------------------------------------------------- querying
    def __len__(self) -> int:
        """Number of videos in the index (removed ones not counted)."""
        return len(self._row_of)

    def row_of(self, video_id: str) -> int:
        """Row of ``video_id``; SearchError when it is not in the index."""
        try:
            return self._row_of[video_id]
        except KeyError:
            raise SearchError(f"video {video_id!r} is not in the index") from None

    def __contains__(self, video_id: object) -> bool:
        """Whether ``video_id`` is in the index."""
        return video_id in self._row_of

    def live_ids(self) -> list[str]:
        """The ids of the clips in the index, in row order."""
        return [vid for vid in self.ids if vid is not None]

    @property
    def has_model(self) -> bool:
        """True when the index holds a trained model's embeddings (built with a checkpoint)."""
        return bool(self.levels) and self.faiss_index is not None
    def check_checkpoint(self, sha256: str, where: str = "the index") -> None:
        """Refuse a query encoded by another checkpoint than the one that built the index."""
        if not self.has_model:
            raise SearchError(
                f"{where} was built without a checkpoint (concepts only); search it in "
                "concepts mode or rebuild it with `mcsan index --checkpoint ...`"
            )
        if sha256 != self.checkpoint_sha256:
            raise SearchError(
                f"{where} was built with checkpoint sha256 {self.checkpoint_sha256[:16]}… but "
                f"the query encoder is checkpoint sha256 {sha256[:16]}…; query with the "
                "checkpoint that built it or rebuild with `mcsan index`"
            )

    def search_vectors(self, queries: Mapping[str, np.ndarray], k: int) -> list[SearchResult]:
        """Top-``k`` videos for each query ``{level: (Q, d_l)}`` by the fused score.

        Each result also holds each level's contribution ``w_l * <q_l, v_l>`` per hit; the
        contributions sum to the fused score.
        """
        k = max(0, min(int(k), len(self)))
        if not self.has_model:
            raise SearchError("this index has no model embeddings; search it in concepts mode")
        _, query_scale = fuse_scales(self.levels, self.weights)
        fused = fuse(queries, self.levels, query_scale)
        if fused.shape[1] != self.faiss_index.d:
            raise SearchError(
                f"query has fused dimension {fused.shape[1]}, the index {self.faiss_index.d}; "
                "query with the checkpoint that built the index"
            )
        if k == 0:
            return [SearchResult(np.zeros(0, np.int64), np.zeros(0, np.float32), {})
                    for _ in range(fused.shape[0])]
        pool = min(len(self), k * PQ_POOL) if self.kind == "ivf_pq" else k
        _, rows = faiss_search(self.faiss_index, fused, pool)
        results = []
        for qi, hit_rows in enumerate(rows):
            hit_rows = hit_rows[hit_rows >= 0]
            level_scores = self.contributions({lv: queries[lv][qi] for lv in self.levels}, hit_rows)
            scores = np.sum([level_scores[lv] for lv in self.levels], axis=0, dtype=np.float32)
            rank = np.lexsort((hit_rows, -scores))[:k]  # stable: ties broken by row
            results.append(SearchResult(
                hit_rows[rank], scores[rank], {lv: s[rank] for lv, s in level_scores.items()}
            ))
        return results

    def contributions(
        self, query: Mapping[str, np.ndarray], rows: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Each level's ``w_l * <q_l, v_l>`` for one query ``{level: (d_l,)}`` at ``rows``."""
        order = np.argsort(rows)
        sorted_rows = rows[order]
        level_scores: dict[str, np.ndarray] = {}
        if self.kind == "ivf_pq":  # a collection beyond RAM: its rows read in parallel
            for level in self.levels:
                prefetch(self.embeddings[level], sorted_rows)
        for level in self.levels:
            vectors = np.asarray(self.embeddings[level][sorted_rows], dtype=np.float32)
            contribution = np.empty(len(rows), np.float32)
            contribution[order] = vectors @ np.asarray(query[level], np.float32)
            level_scores[level] = contribution * np.float32(self.weights[level])
        return level_scores

    # ------------------------------------------------------------ persistence
    def meta(self) -> dict[str, Any]:
        """The JSON-serialisable description written to meta.json."""
        from mcsan.search.index_files import index_meta

        return index_meta(self)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory`` atomically (a new folder beside it, swapped in).

        Files in an existing ``directory`` that the index does not own (for example an
        extraction cache) are carried over, and so are the segments it loaded from there.
        """
        from mcsan.search.index_files import save_index

        return save_index(self, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> VideoIndex:
        """Read an index written by :meth:`save`; a damaged one raises CheckpointError."""
        from mcsan.search.index_files import load_index

        return load_index(cls, directory, mmap)


def training_sample(arrays: Mapping[str, Any], levels: Sequence[str], video_scale: np.ndarray,
                    rows: np.ndarray) -> np.ndarray:  # fmt: skip
    """The fused vectors of ``rows`` of ``arrays`` (to train FAISS on), the mapped pages the
    read touched unmapped again (a sample spread over a collection beyond RAM touches most of
    its pages: at 10M clips the build's resident memory reached 21.9 GB without this)."""
    sample = fuse({lv: arrays[lv][rows] for lv in levels}, levels, video_scale)
    for level in levels:
        release(arrays[level])
    return sample


def add_rows(index: Any, arrays: Mapping[str, Any], levels: Sequence[str],
             video_scale: np.ndarray, first_row: int, rows: np.ndarray | None = None
             ) -> None:  # fmt: skip
    """Add the fused vectors of ``arrays`` (only ``rows`` of them, when given) to the FAISS
    ``index``, each labelled ``first_row`` + its row."""
    count = (len(arrays[levels[0]]) if levels else 0) if rows is None else len(rows)
    for start in range(0, count, ADD_CHUNK_ROWS):
        stop = min(start + ADD_CHUNK_ROWS, count)
        part = np.arange(start, stop) if rows is None else rows[start:stop]
        block = fuse(arrays, levels, video_scale, slice(start, stop) if rows is None else part)
        index.add_with_ids(block, (first_row + part).astype(np.int64))
        for level in levels:
            release(arrays[level])
