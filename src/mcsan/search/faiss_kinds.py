"""The FAISS index behind a :class:`~mcsan.search.index.VideoIndex`: which kind, and how it is made.

Kinds (``mcsan index --index-type``):

- ``flat``: exact inner product over every clip (IndexFlatIP behind an id map, so a removed
  clip's row number stays its label). The default below :data:`FLAT_BELOW` clips.
- ``ivf``: IVF with flat lists (``nlist`` about sqrt(N), ``nprobe`` lists probed per query),
  from :data:`FLAT_BELOW` clips while the fused vectors fit in :data:`RAM_FRACTION` of RAM.
- ``ivfpq``: IVF whose lists hold product-quantised codes: ``dim / 16`` sub-quantisers of 4
  bits (FAISS fast scan, ``dim / 32`` bytes per clip), for collections whose vectors do not
  fit in RAM. Its approximate scores only pick candidates: search takes :data:`PQ_POOL`
  times the asked number and orders them by the exact fused score from the (memory-mapped)
  embeddings, so the codes need only be good enough to keep the true hits in that pool
  (measured, BENCHMARKS.md: recall is set by which lists are probed, not by the codes).

- ``qdrant``: the fused vectors in a Qdrant collection, embedded or on a cluster
  (:mod:`mcsan.search.qdrant_backend`); never chosen by ``auto``.

``auto`` picks by size; the choice is logged. Every kind labels a vector with its row, so
``remove_ids`` never renumbers the others.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "ivfpq", "qdrant")
META_KINDS = {"flat": "flat", "ivf": "ivf_flat", "ivfpq": "ivf_pq", "qdrant": "qdrant"}
FLAT_BELOW = 100_000
RAM_FRACTION = 0.5
PQ_POOL = 4
PQ_DIMS_PER_CODE = 16
TRAIN_POINTS_PER_LIST = 39
TRAIN_SAMPLE_PER_LIST = 256
"""Training points per IVF list (FAISS's own cap, ``max_points_per_centroid``). Fewer left
the lists blurred: 2M random clustered clips, 1,414 lists, nprobe 64 reached recall@100 0.817
with 64 points a list and 0.936 with 256 (BENCHMARKS.md)."""


def default_nlist(rows: int) -> int:
    """Number of IVF lists for ``rows`` vectors: about sqrt(rows), and >= 39 points a list."""
    if rows <= 0:
        return 1
    return max(1, min(int(round(math.sqrt(rows))), rows // TRAIN_POINTS_PER_LIST))


def default_nprobe(nlist: int, kind: str = "ivf") -> int:
    """Lists probed per query: nlist/16 (``ivfpq``: nlist/4) rounded up to a multiple of 16,
    at least 16.

    Measured (BENCHMARKS.md, search section, 1M x 1024): nprobe 64 of 1000 lists gives
    recall@10 0.959 at p50 44 ms on 2 cores; 100k and 10k reach recall 1.0 with 16-32. Fast-scan
    codes cost little to scan, and recall@100 of a large collection needs more lists: 10M
    random clustered clips, 3,162 lists, recall@100 0.888 probing 400 (7 ms), 0.931 probing
    800 (10 ms).
    """
    step = 16
    wanted = -(-(nlist // (4 if kind == "ivfpq" else 16)) // step) * step
    return max(1, min(nlist, max(step, wanted)))


def memory_bytes() -> int:
    """Physical memory of this machine (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def choose_kind(rows: int, dim: int, requested: str = "auto") -> str:
    """The FAISS kind for ``rows`` fused vectors of ``dim`` float32 (``requested`` unless
    ``auto``); logged."""
    if requested != "auto":
        if requested not in KINDS:
            raise SearchError(f"index type must be auto or one of {', '.join(KINDS)}; "
                              f"got {requested!r}")  # fmt: skip
        log.info("index type %s (requested) for %d clips", requested, rows)
        return requested
    size = rows * dim * 4
    ram = memory_bytes()
    if rows < FLAT_BELOW:
        kind, why = "flat", f"fewer than {FLAT_BELOW:,} clips"
    elif ram and size > RAM_FRACTION * ram:
        kind, why = "ivfpq", (f"fused vectors {size / 1e9:.1f} GB > {RAM_FRACTION:.0%} of "
                              f"{ram / 1e9:.1f} GB RAM")  # fmt: skip
    else:
        kind, why = "ivf", f"{FLAT_BELOW:,} clips or more, vectors fit in RAM"
    log.info("index type %s for %d clips (%s; override with --index-type)", kind, rows, why)
    return kind


def pq_codes(dim: int) -> str:
    """The FAISS code of an IVF-PQ list entry: ``dim / 16`` sub-quantisers (a divisor of
    ``dim``) of 4 bits scanned with SIMD (fast scan) when that count is even, else of 8 bits."""
    target = max(1, dim // PQ_DIMS_PER_CODE)
    count = next(m for m in range(target, 0, -1) if dim % m == 0)
    return f"PQ{count}x4fs" if count % 2 == 0 else f"PQ{count}x8"


def make_index(kind: str, dim: int, rows: int, sample: Callable[[np.ndarray], np.ndarray],
               *, nlist: int | None = None, nprobe: int | None = None, seed: int = 0
               ) -> tuple[Any, int | None]:  # fmt: skip
    """An empty, trained FAISS index of ``kind`` and its nprobe (None for flat).

    ``sample(rows)`` returns the fused vectors of the given rows (the training sample)."""
    import faiss

    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), None
    if kind == "qdrant":
        from mcsan.search.qdrant_backend import QdrantVectors

        return QdrantVectors.new(dim), None
    nlist = nlist or default_nlist(rows)
    nprobe = nprobe or default_nprobe(nlist, kind)
    codes = pq_codes(dim) if kind == "ivfpq" else "Flat"
    index = faiss.index_factory(dim, f"IVF{nlist},{codes}", faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # tiny collections: no warning on stderr
    rng = np.random.default_rng(seed)
    wanted = nlist * TRAIN_SAMPLE_PER_LIST
    if kind == "ivfpq":
        wanted = max(wanted, 256 * 40)
    picked = np.sort(rng.choice(rows, size=min(rows, wanted), replace=False))
    index.train(sample(picked))
    index.nprobe = nprobe
    return index, nprobe


def set_nprobe(index: Any, nprobe: int | None) -> None:
    """Probe ``nprobe`` lists per query (IVF kinds; nothing for flat)."""
    if nprobe is None or index is None:
        return
    import faiss

    try:
        faiss.extract_index_ivf(index).nprobe = int(nprobe)
    except RuntimeError:
        pass


def labelled(index: Any) -> Any:
    """``index`` able to add and remove by label: a format-1 flat index (labels = positions)
    becomes an id-mapped one with the same labels; other kinds are returned as they are."""
    import faiss

    if isinstance(index, faiss.IndexFlat):
        mapped = faiss.IndexIDMap2(faiss.IndexFlatIP(index.d))
        if index.ntotal:
            mapped.add_with_ids(index.reconstruct_n(0, index.ntotal),
                                np.arange(index.ntotal, dtype=np.int64))  # fmt: skip
        return mapped
    return index
