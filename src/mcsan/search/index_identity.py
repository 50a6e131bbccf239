"""The files of an index folder: their recorded sizes and end hashes (meta.json ``files``,
checked at load: a file copied in from another index of the same shape is refused), and
their stats when loaded (a cheap test, per request, that they changed under a server)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mcsan.core.errors import CheckpointError
from mcsan.data.video.identity import ends_hash, note_unchecked

META_NAME = "meta.json"
"""The index's manifest (written last; what :mod:`mcsan.search.index_files` reads first)."""


def file_hashes(root: Path, owned: Callable[[str], bool]) -> dict[str, dict[str, Any]]:
    """{name: {size, ends}} of the index's own files in ``root`` (recorded in meta.json)."""
    return {path.name: {"size": path.stat().st_size, "ends": ends_hash(path)}
            for path in sorted(root.iterdir()) if owned(path.name) and path.name != META_NAME}


def file_stats(root: Path, names: Iterable[str]) -> dict[str, tuple[int, int, int] | None]:
    """(inode, size, mtime) of files ``names`` of ``root`` (None: missing)."""
    stats: dict[str, tuple[int, int, int] | None] = {}
    for name in names:
        try:
            stat = (root / name).stat()
        except OSError:
            stats[name] = None
            continue
        stats[name] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return stats


def changed_files(root: Path | None, before: Mapping[str, Any]) -> str | None:
    """Which files of ``root`` changed since their stats ``before`` were taken (replaced,
    rewritten, truncated or removed), as a sentence, or None."""
    if root is None or not before:
        return None
    now = file_stats(root, before)
    changed = sorted(name for name in set(now) | set(before) if now.get(name) != before.get(name))
    if not changed:
        return None
    return f"{root}: {', '.join(changed)} changed on disk after the index was loaded"


def check_files(root: Path, meta: Mapping[str, Any]) -> None:
    """Refuse an index whose files are not those its meta.json recorded (one copied from
    another index of the same shape, or changed in place)."""
    recorded = meta.get("files")
    if not isinstance(recorded, dict):
        note_unchecked(root, "its meta.json records no file hashes (built before them)")
        return
    for name, want in recorded.items():
        path = root / name
        have = {"size": path.stat().st_size, "ends": ends_hash(path)} if path.is_file() else None
        if have != want:
            raise CheckpointError(
                f"{path}: not the file this index was built with "
                f"({'missing' if have is None else 'other size or content'}; meta.json records "
                f"size {dict(want).get('size')}): it was replaced or altered; rebuild the index "
                "with `mcsan index`"
            )
