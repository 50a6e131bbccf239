"""File plumbing of a search index: FAISS threads, atomic directory swap, foreign files."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SMALL_BATCH = 20
"""FAISS parallelises a search over its queries; below this many, threads only spin-wait
(measured: one query over 10k x 1024 takes 1.5 ms on one thread, 40 ms on two busy cores)."""

_default_threads: int | None = None


def faiss_search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` on one OpenMP thread for small batches, all threads otherwise."""
    import faiss

    global _default_threads
    if _default_threads is None:
        _default_threads = faiss.omp_get_max_threads()
    if queries.shape[0] >= SMALL_BATCH:
        return index.search(queries, k)
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)
    finally:
        faiss.omp_set_num_threads(_default_threads)


def carry_foreign_files(old: Path, new: Path, owned: Callable[[str], bool]) -> None:
    """Hard-link (or copy) the files of ``old`` that an index does not own into ``new``."""
    for entry in old.iterdir():
        if owned(entry.name) or entry.name.startswith("."):
            continue
        destination = new / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, destination)


def _link_or_copy(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def swap_directory(new: Path, target: Path) -> None:
    """Rename ``new`` onto ``target``, moving an existing ``target`` aside first."""
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
