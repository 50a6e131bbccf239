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

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import CheckpointError, SearchError
from mcsan.core.io import atomic_directory, atomic_write_json
from mcsan.search.concept_index import CONCEPTS_NAME, ConceptScores
from mcsan.search.faiss_threads import faiss_search
from mcsan.search.index_files import check_files, file_hashes, file_stats

FORMAT_VERSION = 1
META_NAME = "meta.json"
FAISS_NAME = "faiss.index"
INDEX_FILES_PREFIX = "emb_"
ADD_CHUNK_ROWS = 65_536
TRAIN_POINTS_PER_LIST = 39


def default_nlist(rows: int) -> int:
    """Number of IVF lists for ``rows`` vectors: about sqrt(rows), and >= 39 points a list."""
    if rows <= 0:
        return 1
    return max(1, min(int(round(math.sqrt(rows))), rows // TRAIN_POINTS_PER_LIST))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: nlist/16 rounded up to a multiple of 16, at least 16.

    Measured (BENCHMARKS.md, search section, 1M x 1024): nprobe 64 of 1000 lists gives
    recall@10 0.959 at p50 44 ms on 2 cores; 100k and 10k reach recall 1.0 with 16-32.
    """
    step = 16
    wanted = -(-(nlist // 16) // step) * step
    return max(1, min(nlist, max(step, wanted)))


def fuse_scales(levels: Sequence[str], weights: Mapping[str, float]) -> tuple[np.ndarray, ...]:
    """Per-level (video_scale, query_scale) such that their product is the level weight."""
    video_scale = np.array([math.sqrt(abs(float(weights[lv]))) for lv in levels], np.float32)
    query_scale = np.array(
        [math.copysign(math.sqrt(abs(float(weights[lv]))), float(weights[lv])) for lv in levels],
        np.float32,
    )
    return video_scale, query_scale


def fuse(
    embeddings: Mapping[str, np.ndarray],
    levels: Sequence[str],
    scales: np.ndarray,
    rows: slice | None = None,
) -> np.ndarray:
    """Concatenate ``scales[l] * embeddings[l][rows]`` over levels into (N, sum d_l) float32."""
    parts = []
    for scale, level in zip(scales, levels, strict=True):
        block = embeddings[level] if rows is None else embeddings[level][rows]
        parts.append(np.asarray(block, dtype=np.float32) * scale)
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


@dataclass(frozen=True)
class SearchResult:
    """Rows and scores of one query: ``rows[i]`` has fused ``scores[i]``."""

    rows: np.ndarray
    scores: np.ndarray
    level_scores: dict[str, np.ndarray]


class VideoIndex:
    """Per-level video embeddings, their ids and media paths, and a FAISS index over them."""

    def __init__(
        self,
        embeddings: Mapping[str, np.ndarray],
        ids: Sequence[str],
        paths: Sequence[str | None],
        weights: Mapping[str, float],
        checkpoint_sha256: str | None,
        faiss_index: Any,
        *,
        media_root: str | None = None,
        approx: bool = False,
        nprobe: int | None = None,
        extra: Mapping[str, Any] | None = None,
        concepts: ConceptScores | None = None,
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
        self.approx = approx
        self.extra = dict(extra or {})
        self.concepts = concepts
        self._row_of = {vid: row for row, vid in enumerate(self.ids)}
        self.nprobe = nprobe
        self.directory: Path | None = None
        """The folder the index was loaded from (None until saved or loaded)."""
        self.on_disk: dict[str, tuple[int, int, int]] = {}  # file stats when loaded or saved
        if approx and nprobe is not None:
            faiss_index.nprobe = nprobe

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
        nlist: int | None = None,
        nprobe: int | None = None,
        seed: int = 0,
        extra: Mapping[str, Any] | None = None,
        concepts: ConceptScores | None = None,
    ) -> VideoIndex:
        """Build an index from per-level embeddings ``{level: (N, d_l)}`` of N videos.

        ``approx`` uses an IVF index (``nlist`` lists, ``nprobe`` probed per query; defaults
        from :func:`default_nlist` / :func:`default_nprobe`); otherwise exact inner product.
        With ``concepts`` (one column per video) the embeddings may be empty: a concept-only
        index, searchable with no trained model.
        """
        import faiss

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
        arrays: dict[str, np.ndarray] = {}
        for level in levels:
            array = np.ascontiguousarray(embeddings[level], dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != count:
                raise SearchError(
                    f"level {level!r} embeddings have shape {array.shape}; expected ({count}, d)"
                )
            if not np.isfinite(array).all():
                raise SearchError(f"level {level!r} embeddings contain NaN or inf")
            arrays[level] = array
        dim = sum(a.shape[1] for a in arrays.values())
        video_scale, _ = fuse_scales(levels, weights)
        if not levels:
            index = None
        elif approx:
            nlist = nlist or default_nlist(count)
            nprobe = nprobe or default_nprobe(nlist)
            index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = seed
            index.cp.min_points_per_centroid = 1  # tiny collections: no warning on stderr
            rng = np.random.default_rng(seed)
            train_rows = min(count, nlist * 64)
            sample = np.sort(rng.choice(count, size=train_rows, replace=False))
            index.train(fuse({lv: arrays[lv][sample] for lv in levels}, levels, video_scale))
        else:
            index = faiss.IndexFlatIP(dim)
        for start in range(0, count if index is not None else 0, ADD_CHUNK_ROWS):
            index.add(fuse(arrays, levels, video_scale, slice(start, start + ADD_CHUNK_ROWS)))
        root = str(Path(media_root).resolve()) if media_root is not None else None
        return cls(
            arrays, ids, paths, weights, checkpoint_sha256, index,
            media_root=root, approx=approx and index is not None, nprobe=nprobe, extra=extra,
            concepts=concepts,
        )

    # --------------------------------------------------------------- querying
    def __len__(self) -> int:
        """Number of videos in the index."""
        return len(self.ids)

    def row_of(self, video_id: str) -> int:
        """Row of ``video_id``; SearchError when it is not in the index."""
        try:
            return self._row_of[video_id]
        except KeyError:
            raise SearchError(f"video {video_id!r} is not in the index") from None

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
        _, rows = faiss_search(self.faiss_index, fused, k)
        results = []
        for qi, hit_rows in enumerate(rows):
            hit_rows = hit_rows[hit_rows >= 0]
            level_scores = self.contributions({lv: queries[lv][qi] for lv in self.levels}, hit_rows)
            scores = np.sum([level_scores[lv] for lv in self.levels], axis=0, dtype=np.float32)
            rank = np.lexsort((hit_rows, -scores))  # stable: ties broken by row
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
        for level in self.levels:
            vectors = np.asarray(self.embeddings[level][sorted_rows], dtype=np.float32)
            contribution = np.empty(len(rows), np.float32)
            contribution[order] = vectors @ np.asarray(query[level], np.float32)
            level_scores[level] = contribution * np.float32(self.weights[level])
        return level_scores

    # ------------------------------------------------------------ persistence
    def meta(self) -> dict[str, Any]:
        """The JSON-serialisable description written to meta.json."""
        return {
            "format_version": FORMAT_VERSION,
            "kind": "ivf_flat" if self.approx else "flat",
            "nprobe": self.nprobe,
            "levels": list(self.levels),
            "dims": {lv: int(self.embeddings[lv].shape[1]) for lv in self.levels},
            "weights": self.weights,
            "checkpoint_sha256": self.checkpoint_sha256,
            "media_root": self.media_root,
            "ids": self.ids,
            "paths": self.paths,
            "extra": self.extra,
            "concepts": self.concepts.info if self.concepts is not None else None,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory`` atomically (temp dir, then rename).

        Files in an existing ``directory`` that the index does not own (for example an
        extraction cache) are carried over into the new directory.
        """
        import faiss

        target = Path(directory)
        with atomic_directory(target, carry=lambda name: not _owned(name)) as tmp:
            for level in self.levels:
                np.save(tmp / f"{INDEX_FILES_PREFIX}{level}.npy",
                        np.asarray(self.embeddings[level], np.float32))
            if self.faiss_index is not None:
                faiss.write_index(self.faiss_index, str(tmp / FAISS_NAME))
            if self.concepts is not None:
                self.concepts.save_into(tmp)
            files = file_hashes(tmp, _owned)
            atomic_write_json(tmp / META_NAME, {**self.meta(), "files": files}, indent=None)
        self.directory = target
        self.on_disk = file_stats(target, [*files, META_NAME])
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str], mmap: bool = True) -> VideoIndex:
        """Read an index written by :meth:`save`; a damaged one raises CheckpointError."""
        import faiss

        root = Path(directory)
        meta_file = root / META_NAME
        if not meta_file.is_file():
            raise CheckpointError(
                f"{root}: no {META_NAME}; not an mcsan index. Build one with `mcsan index`"
            )
        stats = file_stats(root, [name for name in os.listdir(root) if _owned(name)])
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(
                    f"{meta_file}: index format {meta.get('format_version')!r}, expected "
                    f"{FORMAT_VERSION}; rebuild it with `mcsan index`"
                )
            levels = list(meta["levels"])
            mode = "r" if mmap else None
            embeddings = {
                lv: np.load(root / f"{INDEX_FILES_PREFIX}{lv}.npy", mmap_mode=mode)
                for lv in levels
            }
            faiss_index = faiss.read_index(str(root / FAISS_NAME)) if levels else None
            ids, paths = list(meta["ids"]), list(meta["paths"])
            weights, sha = meta["weights"], meta["checkpoint_sha256"]
            concepts = (
                ConceptScores.load_from(root, meta["concepts"], len(ids), mmap)
                if meta.get("concepts") else None
            )
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(
                f"{root}: index is damaged ({type(exc).__name__}: {exc}); rebuild it with "
                "`mcsan index`"
            ) from exc
        sizes = {lv: e.shape[0] for lv, e in embeddings.items()}
        vectors = faiss_index.ntotal if faiss_index is not None else len(ids)
        if vectors != len(ids) or any(n != len(ids) for n in sizes.values()) or len(
            paths
        ) != len(ids) or (not levels and concepts is None):
            raise CheckpointError(
                f"{root}: index parts disagree ({len(ids)} ids, {vectors} vectors, "
                f"embedding rows {sizes}); rebuild it with `mcsan index`"
            )
        check_files(root, meta)
        index = cls(
            embeddings, ids, paths, weights, sha, faiss_index,
            media_root=meta.get("media_root"), approx=meta.get("kind") == "ivf_flat",
            nprobe=meta.get("nprobe"), extra=meta.get("extra"), concepts=concepts,
        )
        index.directory = root
        index.on_disk = stats
        return index


def _owned(name: str) -> bool:
    return name in (META_NAME, FAISS_NAME, CONCEPTS_NAME) or (
        name.startswith(INDEX_FILES_PREFIX) and name.endswith(".npy")
    )
