"""How a FeatureStore names and lists its entries: video ids escaped into HDF5 names, and
the manifest (ids, entry digests, clip fingerprints) read and written at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from mcsan.core.errors import FeatureError

MANIFEST_GROUP = "manifest"


def escape_id(video_id: str) -> str:
    """Reversible HDF5-safe name of a video id."""
    if not video_id:
        raise FeatureError("empty video id; every video needs a non-empty id")
    name = quote(video_id, safe="", encoding="utf-8", errors="surrogatepass")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name


def unescape_id(name: str) -> str:
    """Inverse of :func:`escape_id`."""
    return unquote(name, encoding="utf-8", errors="surrogatepass")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def scan_entries(
    group: Any, complete: str, digest: str, source: str,
) -> dict[str, tuple[str | None, str | None]]:
    """{id: (digest, source JSON)} of the complete entries, read an attribute at a time
    (files written before manifests; slow at 100k entries, then written as a manifest)."""
    return {unescape_id(name): (_text(entry.attrs.get(digest)), _text(entry.attrs.get(source)))
            for name, entry in group.items() if entry.attrs.get(complete, False)}  # fmt: skip


def read_manifest(handle: Any) -> dict[str, tuple[str | None, str | None]] | None:
    """The manifest of an open store file, or None when it has none."""
    group = handle.get(MANIFEST_GROUP)
    if group is None:
        return None
    columns = [list(group[name].asstr()[()]) for name in ("ids", "digests", "sources")]
    return {v: (d or None, s or None) for v, d, s in zip(*columns, strict=True)}


def write_manifest(handle: Any, entries: Mapping[str, tuple[str | None, str | None]] | None
                   ) -> None:  # fmt: skip
    """Replace the manifest of a store file with ``entries`` (None: remove it)."""
    import h5py

    if MANIFEST_GROUP in handle:
        del handle[MANIFEST_GROUP]
    if entries is None:
        return
    group = handle.create_group(MANIFEST_GROUP)
    kind = h5py.string_dtype()
    ids = sorted(entries)
    for name, column in (("ids", ids), ("digests", [entries[v][0] or "" for v in ids]),
                         ("sources", [entries[v][1] or "" for v in ids])):  # fmt: skip
        group.create_dataset(name, data=np.array(column, dtype=object), dtype=kind)
