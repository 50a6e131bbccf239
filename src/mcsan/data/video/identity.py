"""Data identity: what a stored feature was made from, and what a derived file was built from.

Files are joined by name everywhere (features to clips by video id, indexes to features by
path, checkpoints to features by spec). A name says nothing about content, so each join
also carries an identity:

- **clip fingerprint** (stored per entry by extraction): ``{"size", "mtime_ns", "ends"}``,
  ``ends`` a BLAKE2b-128 of the size and the clip's first and last MiB. Reading whole clips
  would cost a full pass over the collection (hundreds of GB at 100k clips) at every
  check; the ends hold the container header and index (MP4 ``moov``, MKV cues) and the
  first and last frames, so any re-encode, trim, replacement or truncation changes them.
  Checking stats first (size and mtime equal: the same clip, no read), and hashes only
  when the stats differ (a copied or touched clip with the same ends is the same clip), as
  ``git status`` does. A folder of images: names, sizes and mtimes of its files.
- **entry digest** (stored per entry on every write): BLAKE2b-128 of each stream's name,
  shape and float16 bytes: the features themselves, whatever made them.
- **store identity** (a root attribute, updated when a store is written): BLAKE2b-128 of
  the spec and the sorted ``(video id, entry digest)`` pairs. Datasets (``dataset.yaml``
  ``feature_sets``), checkpoints and indexes record the identity of the store they were
  built from; consumers compare it (one attribute read) before they join.

Files made before fingerprints have no identity: they keep loading, and a warning says
that their identity cannot be checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError

logger = logging.getLogger(__name__)

ENDS_BYTES = 1 << 20
"""Bytes hashed at each end of a clip (or index file)."""
_warned: set[str] = set()


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=16)


def ends_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """BLAKE2b-128 of the size and the first and last :data:`ENDS_BYTES` of a file."""
    h = _hasher()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size if size is None else size
        h.update(str(size).encode())
        h.update(handle.read(ENDS_BYTES))
        if size > ENDS_BYTES:
            handle.seek(max(ENDS_BYTES, size - ENDS_BYTES))
            h.update(handle.read(ENDS_BYTES))
    return h.hexdigest()


def clip_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The fingerprint of a clip file or a folder of images (module doc)."""
    source = Path(path)
    if source.is_dir():
        h = _hasher()
        for entry in sorted(source.iterdir()):
            if entry.is_file():
                stat = entry.stat()
                h.update(f"{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        stat = source.stat()
        return {"size": 0, "mtime_ns": stat.st_mtime_ns, "ends": h.hexdigest()}
    stat = source.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ends": ends_hash(source, stat.st_size)}  # fmt: skip


def same_clip(stored: Mapping[str, Any], path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is still the clip ``stored`` fingerprints (stats first, then ends)."""
    source = Path(path)
    try:
        stat = source.stat()
        if source.is_dir():
            return clip_fingerprint(source)["ends"] == stored.get("ends")
        if stat.st_size != stored.get("size"):
            return False
        if stat.st_mtime_ns == stored.get("mtime_ns"):
            return True
        return ends_hash(source, stat.st_size) == stored.get("ends")
    except OSError:
        return False  # gone or unreadable: re-extracting it fails by name


def entry_digest(streams: Mapping[str, np.ndarray]) -> str:
    """BLAKE2b-128 of each stream's name, shape and bytes (as stored)."""
    h = _hasher()
    for name in sorted(streams):
        array = np.ascontiguousarray(streams[name])
        h.update(f"{name}\0{array.dtype.str}\0{array.shape}\n".encode())
        h.update(array.data)
    return h.hexdigest()


def store_identity(spec_json: str, digests: Iterable[tuple[str, str | None]]) -> str | None:
    """Identity of a store: its spec and its sorted (id, entry digest) pairs; None when an
    entry has no digest (written before fingerprints)."""
    h = _hasher()
    h.update(spec_json.encode())
    for video_id, digest in sorted(digests):
        if digest is None:
            return None
        h.update(f"\n{video_id}\0{digest}".encode())
    return h.hexdigest()


def note_unchecked(path: str | os.PathLike[str], why: str) -> None:
    """Warn once per file that its identity cannot be checked."""
    key = f"{path}\0{why}"
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s: %s; its identity cannot be checked (re-create it to record one)",
                       path, why)  # fmt: skip


def check_identity(
    found: str | None, recorded: str | None, path: str | os.PathLike[str], recorder: str,
    fix: str,
) -> None:
    """Refuse ``path`` when its identity ``found`` differs from the one ``recorder`` recorded.

    Either one missing (files made before fingerprints) is a warning, not an error.
    """
    if recorded is None:
        note_unchecked(path, f"{recorder} records no identity of it")
    elif found is None:
        note_unchecked(path, "it has no identity (made before fingerprints)")
    elif found != recorded:
        raise FeatureError(
            f"{path}: not the features {recorder} records (identity {found[:12]}, "
            f"recorded {recorded[:12]}): the file was replaced or re-extracted from other "
            f"clips; {fix}"
        )


def stale_entries(
    sources: Mapping[str, Mapping[str, Any] | None], clips: Mapping[str, str | os.PathLike[str]]
) -> tuple[list[str], list[str]]:
    """Of stored ids also in ``clips``: those whose clip changed since extraction, and those
    stored without a fingerprint (cannot be checked)."""
    changed, unchecked = [], []
    for video_id, source in sources.items():
        if video_id not in clips:
            continue
        if source is None:
            unchecked.append(video_id)
        elif not same_clip(source, clips[video_id]):
            changed.append(video_id)
    return changed, unchecked
