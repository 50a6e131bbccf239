"""Building an index in shards, like extraction: encode on many machines, merge once.

``mcsan index --dataset D --checkpoint C --shard i/N --out PART_i`` indexes every N-th clip
(clip i, i + N, ...) of the collection: the encoding, the part that costs, runs on N
processes or machines. ``mcsan index --merge PART_0 ... PART_{N-1} --out INDEX`` joins them:
the parts' segments (embeddings, matcher rows) are hard-linked into the new index, not
re-encoded; the FAISS index is built once over every clip (its kind chosen by the total
size, or ``--index-type``); concept scores are joined. The parts must come from one
checkpoint.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.search.concept_index import ConceptScores
from mcsan.search.faiss_kinds import META_KINDS, choose_kind, make_index
from mcsan.search.index import VideoIndex, add_rows, fuse_scales, training_sample
from mcsan.search.index_files import segment_files
from mcsan.search.segments import blocks_of, rows_of

log = logging.getLogger(__name__)


def shard_of(ids: Sequence[str], shard: tuple[int, int] | None) -> list[str]:
    """The ids of shard ``(i, N)``: every N-th from the i-th (all without a shard)."""
    if shard is None:
        return list(ids)
    index, count = shard
    return list(ids)[index::count]


def _check_parts(parts: Sequence[VideoIndex], names: Sequence[str]) -> None:
    first = parts[0]
    for part, name in zip(parts[1:], names[1:], strict=True):
        same = (part.checkpoint_sha256 == first.checkpoint_sha256 and part.levels == first.levels
                and part.matcher_info == first.matcher_info
                and (part.concepts is None) == (first.concepts is None))  # fmt: skip
        if not same:
            raise SearchError(f"{name} was built with another checkpoint or other parts than "
                              f"{names[0]}; merge parts of one `mcsan index --shard` run")  # fmt: skip
    seen: dict[str, str] = {}
    for part, name in zip(parts, names, strict=True):
        for video_id in part.live_ids():
            if video_id in seen:
                raise SearchError(f"video {video_id!r} is in both {seen[video_id]} and {name}; "
                                  "merge disjoint shards")  # fmt: skip
            seen[video_id] = name


def faiss_over(embeddings: Mapping[str, Any], weights: Mapping[str, float], rows: np.ndarray,
               index_type: str | None = None) -> tuple[Any, str, int | None]:  # fmt: skip
    """A FAISS index trained on and holding the fused vectors of ``rows`` of ``embeddings``
    (labelled by row), its kind (chosen by their count unless ``index_type``) and nprobe;
    (None, "flat", None) without levels."""
    levels = tuple(embeddings)
    if not levels:
        return None, "flat", None
    dim = sum(int(e.shape[1]) for e in embeddings.values())
    scale, _ = fuse_scales(levels, weights)
    kind = choose_kind(len(rows), dim, index_type or "auto")
    faiss_index, nprobe = make_index(
        kind, dim, len(rows),
        lambda picked: training_sample(embeddings, levels, scale, rows[picked]))
    add_rows(faiss_index, embeddings, levels, scale, 0, rows)
    return faiss_index, kind, nprobe


def merge_indexes(directories: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                  index_type: str | None = None) -> VideoIndex:  # fmt: skip
    """Join the shard indexes in ``directories`` into one index saved at ``out``."""
    if not directories:
        raise SearchError("--merge needs the shard index folders to join")
    names = [str(d) for d in directories]
    parts = [VideoIndex.load(d) for d in directories]
    _check_parts(parts, names)
    first = parts[0]
    segments, sources, version = [], {}, 0
    ids: list[str | None] = []
    paths: list[str | None] = []
    blocks: dict[str, list] = {lv: [] for lv in first.levels}
    matcher_blocks: list = []
    for part in parts:
        for number, segment in enumerate(part.segments):
            files = segment_files(first.levels, version, first.matcher is not None)
            for role in files:
                if (number, role) in part.sources:
                    sources[(len(segments), role)] = part.sources[(number, role)]
            segments.append({"rows": segment["rows"], "files": files})
            version += 1
        for level in first.levels:
            blocks[level] += blocks_of(part.embeddings[level])
        if part.matcher is not None:
            matcher_blocks += blocks_of(part.matcher)
        ids += part.ids
        paths += part.paths
    embeddings = {lv: rows_of(b) for lv, b in blocks.items()}
    live = np.flatnonzero(np.array([v is not None for v in ids], bool))
    faiss_index, kind, nprobe = faiss_over(embeddings, first.weights, live, index_type)
    concepts = None
    if first.concepts is not None:
        probs = np.concatenate([np.asarray(p.concepts.probs) for p in parts], axis=1)
        concepts = ConceptScores(probs, first.concepts.info)
    merged = VideoIndex(
        embeddings, ids, paths, first.weights, first.checkpoint_sha256, faiss_index,
        media_root=first.media_root, kind=META_KINDS[kind], nprobe=nprobe,
        extra={**first.extra, "shards": names}, concepts=concepts,
        matcher=rows_of(matcher_blocks) if matcher_blocks else None,
        matcher_info=first.matcher_info, segments=segments, version=version,
    )
    merged.sources = sources
    merged.save(out)
    log.info("merged %d shard indexes (%d clips) into %s (%s)", len(parts), len(merged), out,
             merged.kind)  # fmt: skip
    return merged

