"""Rows of an index kept in segments: files written once, never changed, listed by meta.json.

An index's per-clip arrays (the per-level embeddings, the binding matcher's store) are held
in segments: the build writes one, each ``mcsan index --add`` one more beside it. A new
state of the index is a new directory (:func:`mcsan.core.io.atomic_directory`) that
hard-links the segments it keeps and writes only the new one, the FAISS index and
meta.json; so an add costs the new clips, the FAISS index and the id list, not a copy of the
collection, and a killed add leaves the old directory as it was. Removed clips stay in their
segment as tombstones (their id is ``null`` in meta.json and FAISS no longer returns them).

:class:`RowBlocks` reads rows across segments as one array: ``blocks[rows]`` gathers any
rows (memory-mapped segments read only those rows), ``blocks[start:stop]`` a range.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


class RowBlocks:
    """Several (n_i, ...) arrays of one dtype read as one (sum n_i, ...); rows of a block
    narrower than the widest in a dimension are zero-padded (the matcher store's frames)."""

    def __init__(self, blocks: Sequence[Any]) -> None:
        """``blocks``: arrays or memory maps, in row order (at least one)."""
        if not blocks:
            raise ValueError("RowBlocks needs at least one block")
        self.blocks = list(blocks)
        self.offsets = np.cumsum([0] + [len(b) for b in self.blocks])
        first = self.blocks[0]
        widest = np.max([b.shape[1:] for b in self.blocks], axis=0).tolist()
        self.shape: tuple[int, ...] = (int(self.offsets[-1]), *map(int, widest))
        self.dtype = first.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        """Total rows."""
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Every row in memory (small indexes, tests)."""
        whole = self[np.arange(len(self))]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        """Rows by an integer array (any order, repeats allowed) or a slice."""
        if isinstance(key, slice):
            key = np.arange(*key.indices(len(self)))
        rows = np.asarray(key, dtype=np.int64)
        if rows.ndim != 1:
            raise IndexError("RowBlocks takes a 1-d array of rows or a slice")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range 0..{len(self) - 1}")
        out = np.zeros((len(rows), *self.shape[1:]), self.dtype)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        which = np.searchsorted(self.offsets, ordered, side="right") - 1
        for number in np.unique(which):
            inside = which == number
            local = ordered[inside] - self.offsets[number]
            block = self.blocks[number]
            out[(order[inside], *(slice(0, n) for n in block.shape[1:]))] = block[local]
        return out


def rows_of(blocks: Sequence[Any]) -> Any:
    """One array for one block (as it is), :class:`RowBlocks` for several."""
    return blocks[0] if len(blocks) == 1 else RowBlocks(blocks)


def blocks_of(array: Any) -> list[Any]:
    """The segments of an array built by :func:`rows_of`."""
    return list(array.blocks) if isinstance(array, RowBlocks) else [array]


def prefetch(array: Any, rows: np.ndarray) -> None:
    """Ask the kernel to read ``rows`` of memory-mapped segments into the page cache, all at
    once (``posix_fadvise(WILLNEED)`` per row): a shortlist's rows then arrive in parallel
    instead of one page fault after another (on a disk, 100 random rows took 470 ms one by
    one). Does nothing for arrays in memory or where the call is missing."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or not len(rows):
        return
    blocks = blocks_of(array)
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    rows = np.sort(np.asarray(rows, np.int64))
    which = np.searchsorted(offsets, rows, side="right") - 1
    for number in np.unique(which):
        block = blocks[number]
        if not isinstance(block, np.memmap) or not block.filename:
            continue
        row_bytes = int(block.strides[0])
        try:
            handle = os.open(block.filename, os.O_RDONLY)
        except OSError:
            continue
        try:
            for row in (rows[which == number] - offsets[number]).tolist():
                advise(handle, int(block.offset) + row * row_bytes, row_bytes,
                       os.POSIX_FADV_WILLNEED)  # fmt: skip
        finally:
            os.close(handle)


def release(array: Any) -> None:
    """Unmap the pages a pass over memory-mapped segments touched (``MADV_DONTNEED``; they
    stay in the page cache): a build that reads N x d floats through the mapping would
    otherwise count all of them as its own resident memory, and be the first the kernel's
    out-of-memory killer picks. Nothing for arrays in memory."""
    for block in blocks_of(array):
        mapping = getattr(block, "_mmap", None)
        if isinstance(block, np.memmap) and mapping is not None and hasattr(mapping, "madvise"):
            with contextlib.suppress(OSError, ValueError):
                mapping.madvise(mmap.MADV_DONTNEED)
