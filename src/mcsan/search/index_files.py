"""An index on disk: meta.json, the FAISS index, the segments, the concept scores.

::

    INDEX/meta.json              ids (null: removed), media paths, levels, weights, checkpoint
                                 sha256, FAISS kind, version, segments, matcher store layout
    INDEX/faiss.index            the FAISS index over the fused vectors (labels = rows)
    INDEX/emb_<level>[.vN].npy   per-level embeddings of a segment (float32, L2-normalised)
    INDEX/matcher[.vN].npy       optional: the binding matcher's inputs of a segment (float16)
    INDEX/concepts.npy           optional: ImageNet class probabilities (classes, clips) float32

A save writes a new directory beside the old one and swaps it in
(:func:`mcsan.core.io.atomic_directory`); segments loaded from that directory are hard-linked,
not rewritten (:mod:`mcsan.search.segments`). Format 1 (one segment named ``emb_<level>.npy``,
no matcher store) is read as a one-segment index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import CheckpointError
from mcsan.core.io import _link_or_copy, atomic_directory, atomic_write_json
from mcsan.search.concept_index import CONCEPTS_NAME, ConceptScores
from mcsan.search.fusion import fuse, fuse_scales
from mcsan.search.index_identity import META_NAME, check_files, file_hashes, file_stats
from mcsan.search.matcher_store import MATCHER_PREFIX
from mcsan.search.segments import blocks_of, rows_of

FORMAT_VERSION = 2
"""2: segments (``mcsan index --add``), tombstones, the matcher store, the FAISS kind; 1 (one
segment, no store) is still read."""
FAISS_NAME = "faiss.index"
INDEX_FILES_PREFIX = "emb_"
MATCHER_ROLE = "matcher"


def owned(name: str) -> bool:
    """Whether a file of an index folder belongs to the index (else it is carried over)."""
    return name in (META_NAME, FAISS_NAME, CONCEPTS_NAME) or (
        name.endswith(".npy") and name.startswith((INDEX_FILES_PREFIX, MATCHER_PREFIX))
    )


def segment_files(levels: Any, version: int, matcher: bool) -> dict[str, str]:
    """Role -> file name of a segment written at index ``version`` (0: the build)."""
    suffix = "" if version == 0 else f".v{version}"
    files = {f"emb_{lv}": f"{INDEX_FILES_PREFIX}{lv}{suffix}.npy" for lv in levels}
    if matcher:
        files[MATCHER_ROLE] = f"{MATCHER_PREFIX}{suffix}.npy"
    return files


def index_meta(index: Any) -> dict[str, Any]:
    """The JSON-serialisable description written to meta.json."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": index.kind,
        "nprobe": index.nprobe,
        "levels": list(index.levels),
        "dims": {lv: int(index.embeddings[lv].shape[1]) for lv in index.levels},
        "weights": index.weights,
        "checkpoint_sha256": index.checkpoint_sha256,
        "media_root": index.media_root,
        "version": index.version,
        "videos": len(index),
        "segments": index.segments,
        "matcher": index.matcher_info,
        "ids": index.ids,
        "paths": index.paths,
        "extra": index.extra,
        "concepts": index.concepts.info if index.concepts is not None else None,
        "qdrant": index.faiss_index.info() if index.kind == "qdrant" else None,
    }


def _roles(index: Any) -> dict[str, Any]:
    """Role -> the per-segment blocks of that role."""
    roles = {f"emb_{lv}": blocks_of(index.embeddings[lv]) for lv in index.levels}
    if index.matcher is not None:
        roles[MATCHER_ROLE] = blocks_of(index.matcher)
    return roles


def save_index(index: Any, directory: str | os.PathLike[str]) -> Path:
    """Write ``index`` to ``directory`` atomically (see the module docstring)."""
    import faiss

    target = Path(directory)
    roles = _roles(index)
    for number, segment in enumerate(index.segments):
        if not segment.get("files"):
            segment["files"] = segment_files(index.levels, index.version if number else 0,
                                             index.matcher is not None)  # fmt: skip
    same = index.directory is not None and Path(index.directory).resolve() == target.resolve()
    keep: set[str] = set()
    with atomic_directory(target, carry=lambda name: not owned(name) or name in keep) as tmp:
        for number, segment in enumerate(index.segments):
            for role, blocks in roles.items():
                name = segment["files"][role]
                source = index.sources.get((number, role))
                if same and source is not None and source.parent.resolve() == target.resolve():
                    keep.add(name)
                elif source is not None:
                    _link_or_copy(source, tmp / name)
                else:
                    np.save(tmp / name, np.asarray(blocks[number]))
        if index.faiss_index is not None and index.kind != "qdrant":
            faiss.write_index(index.faiss_index, str(tmp / FAISS_NAME))
        if index.concepts is not None:
            index.concepts.save_into(tmp)
        kept = file_hashes(target, lambda name: name in keep) if keep else {}
        files = {**file_hashes(tmp, owned), **kept}
        atomic_write_json(tmp / META_NAME, {**index_meta(index), "files": files}, indent=None)
    index.directory = target
    index.on_disk = file_stats(target, [*files, META_NAME])
    index.sources = {(number, role): target / segment["files"][role]
                     for number, segment in enumerate(index.segments)
                     for role in roles}  # fmt: skip
    return target


def read_meta(root: Path) -> dict[str, Any]:
    """meta.json of the index in ``root``; CheckpointError when missing or of another format."""
    meta_file = root / META_NAME
    if not meta_file.is_file():
        raise CheckpointError(
            f"{root}: no {META_NAME}; not an mcsan index. Build one with `mcsan index`"
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_file}: unreadable ({exc}); rebuild with `mcsan index`"
                              ) from exc  # fmt: skip
    if not isinstance(meta, dict) or meta.get("format_version") not in (1, FORMAT_VERSION):
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise CheckpointError(
            f"{meta_file}: index format {found!r}, expected {FORMAT_VERSION}; rebuild it with "
            "`mcsan index`"
        )
    return meta


def _qdrant(meta: dict[str, Any], embeddings: dict[str, Any], ids: list) -> Any:
    """The Qdrant collection of an index (embedded: re-filled from its embeddings)."""
    from mcsan.search.qdrant_backend import open_vectors

    levels = list(meta["levels"])
    scale, _ = fuse_scales(levels, meta["weights"])
    live = np.flatnonzero([v is not None for v in ids])

    def rows() -> Any:
        for start in range(0, len(live), 65_536):
            chunk = live[start : start + 65_536]
            yield fuse({lv: embeddings[lv][chunk] for lv in levels}, levels, scale), chunk

    dim = sum(int(embeddings[lv].shape[1]) for lv in levels)
    return open_vectors(meta.get("qdrant"), dim, rows)


def load_index(cls: Any, directory: str | os.PathLike[str], mmap: bool = True) -> Any:
    """Read an index written by :func:`save_index`; a damaged one raises CheckpointError."""
    import faiss

    root = Path(directory)
    meta = read_meta(root)
    stats = file_stats(root, [name for name in os.listdir(root) if owned(name)])
    try:
        levels = list(meta["levels"])
        ids, paths = list(meta["ids"]), list(meta["paths"])
        segments = meta.get("segments") or [
            {"rows": len(ids), "files": segment_files(levels, 0, False)}]
        mode = "r" if mmap else None
        sources = {(number, role): root / name for number, segment in enumerate(segments)
                   for role, name in segment["files"].items()}  # fmt: skip
        embeddings = {
            lv: rows_of([np.load(sources[(n, f"emb_{lv}")], mmap_mode=mode)
                         for n in range(len(segments))])  # fmt: skip
            for lv in levels
        }
        info = meta.get("matcher")
        matcher = rows_of([np.load(sources[(n, MATCHER_ROLE)], mmap_mode=mode)
                           for n in range(len(segments))]) if info else None  # fmt: skip
        weights, sha = meta["weights"], meta["checkpoint_sha256"]
        if meta.get("kind") == "qdrant":
            faiss_index = _qdrant(meta, embeddings, ids)
        else:
            faiss_index = faiss.read_index(str(root / FAISS_NAME)) if levels else None
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
    live = sum(v is not None for v in ids)
    sizes = {lv: e.shape[0] for lv, e in embeddings.items()}
    if matcher is not None:
        sizes["matcher"] = len(matcher)
    vectors = faiss_index.ntotal if faiss_index is not None else live
    if vectors != live or any(n != len(ids) for n in sizes.values()) or len(
        paths
    ) != len(ids) or (not levels and concepts is None):
        raise CheckpointError(
            f"{root}: index parts disagree ({live} ids, {vectors} vectors, "
            f"rows {sizes}); rebuild it with `mcsan index`"
        )
    check_files(root, meta)
    kind = meta.get("kind", "flat")
    index = cls(
        embeddings, ids, paths, weights, sha, faiss_index,
        media_root=meta.get("media_root"), kind=kind, nprobe=meta.get("nprobe"),
        extra=meta.get("extra"), concepts=concepts, matcher=matcher, matcher_info=info,
        segments=segments, version=int(meta.get("version", 0)),
    )
    index.sources = sources
    index.directory = root
    index.on_disk = stats
    return index
