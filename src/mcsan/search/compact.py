"""Compacting an index: drop removed clips from disk and retrain its FAISS index.

``mcsan index --remove`` only marks rows removed (their embeddings and matcher rows stay in
the segment files), and ``--add`` appends segments to lists trained on the first build. After
many changes ``mcsan index --compact --out INDEX`` rewrites the live clips into one segment
(copied in chunks, never all in memory), trains a new FAISS index of the kind the index had
(``--index-type auto``: the kind their count calls for, logged), keeps their concept
scores, and swaps the new folder in atomically: a killed compaction leaves the old index as
it was. Nothing is re-encoded; the result ranks like a fresh build of the same clips
(tests/search/test_compact.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from mcsan.search.concept_index import ConceptScores
from mcsan.search.faiss_kinds import META_KINDS
from mcsan.search.grow import ChangeSummary
from mcsan.search.index import VideoIndex
from mcsan.search.index_files import MATCHER_ROLE, segment_files
from mcsan.search.index_shards import faiss_over
from mcsan.search.segments import release

log = logging.getLogger(__name__)

COPY_ROWS = 50_000
"""Rows copied at a time into the new segment."""


def _copy_rows(source: object, rows: np.ndarray, path: Path) -> np.ndarray:
    """``source[rows]`` written to the .npy ``path`` in chunks; the file, memory-mapped."""
    first = np.asarray(source[rows[:1]])  # type: ignore[index]
    target = np.lib.format.open_memmap(path, mode="w+", dtype=first.dtype,
                                       shape=(len(rows), *first.shape[1:]))  # fmt: skip
    for start in range(0, len(rows), COPY_ROWS):
        chunk = rows[start : start + COPY_ROWS]
        target[start : start + len(chunk)] = source[chunk]  # type: ignore[index]
        release(source)
    target.flush()
    del target
    return np.load(path, mmap_mode="r")


def compact_index(directory: str | os.PathLike[str], index_type: str | None = None
                  ) -> ChangeSummary:  # fmt: skip
    """Rewrite the index in ``directory`` with its live clips only, its FAISS index retrained
    (of the same kind unless ``index_type``: ``auto`` chooses by the number of clips)."""
    started = time.perf_counter()
    directory = Path(directory)
    index = VideoIndex.load(directory)
    live = index.live_mask()
    rows = np.arange(len(index.ids)) if live is None else np.flatnonzero(live)
    version = index.version + 1
    files = segment_files(index.levels, version, index.matcher is not None)
    for stale in directory.parent.glob(f".{directory.name}.compact-*"):  # a killed run's
        log.info("removing %s, left by a compaction that did not finish", stale)
        shutil.rmtree(stale, ignore_errors=True)
    staging = directory.parent / f".{directory.name}.compact-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        embeddings = {lv: _copy_rows(index.embeddings[lv], rows, staging / files[f"emb_{lv}"])
                      for lv in index.levels}  # fmt: skip
        matcher = None
        if index.matcher is not None:
            matcher = _copy_rows(index.matcher, rows, staging / files[MATCHER_ROLE])
        kept_type = {meta: kind for kind, meta in META_KINDS.items()}.get(index.kind, "auto")
        faiss_index, kind, nprobe = faiss_over(embeddings, index.weights, np.arange(len(rows)),
                                               index_type or kept_type)  # fmt: skip
        concepts = None
        if index.concepts is not None:
            probs = np.asarray(index.concepts.probs)[:, rows]
            concepts = ConceptScores(probs, index.concepts.info)
        compacted = VideoIndex(
            embeddings, [index.ids[r] for r in rows], [index.paths[r] for r in rows],
            index.weights, index.checkpoint_sha256, faiss_index,
            media_root=index.media_root, kind=META_KINDS[kind] if embeddings else index.kind,
            nprobe=nprobe, extra=index.extra, concepts=concepts, matcher=matcher,
            matcher_info=index.matcher_info, segments=[{"rows": len(rows), "files": files}],
            version=version,
        )  # fmt: skip
        compacted.sources = {(0, role): staging / name for role, name in files.items()}
        compacted.save(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dropped = len(index.ids) - len(rows)
    log.info("compacted %s: %d clips kept, %d removed rows dropped, %s index retrained",
             directory, len(rows), dropped, compacted.kind)  # fmt: skip
    return ChangeSummary(out=str(directory), videos=len(rows), removed=dropped,
                         seconds=time.perf_counter() - started)  # fmt: skip
