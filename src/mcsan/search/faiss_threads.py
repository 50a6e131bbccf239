"""FAISS search on the right number of threads (the directory swap lives in ``mcsan.core.io``)."""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL_BATCH = 20
"""FAISS parallelises a search over its queries; below this many, threads only spin-wait
(measured: one query over 10k x 1024 takes 1.5 ms on one thread, 40 ms on two busy cores)."""
SMALL_WORK = 2_000_000
"""Nor below this many (query, indexed vector) pairs: a server's batch of 30 queries over
the demo's 1,918 clips took 7 ms on one thread, 32 ms on two busy cores."""

_default_threads: int | None = None


def faiss_search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` on one OpenMP thread for small batches or small indexes, all
    threads otherwise."""
    import faiss

    global _default_threads
    if _default_threads is None:
        _default_threads = faiss.omp_get_max_threads()
    if queries.shape[0] >= SMALL_BATCH and queries.shape[0] * index.ntotal >= SMALL_WORK:
        return index.search(queries, k)
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(_default_threads)
