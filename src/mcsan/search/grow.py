"""An index that grows: add new clips, remove clips, without a rebuild.

``mcsan index --add DIR_OR_IDS --out INDEX`` encodes only the clips the index lacks (a folder
of clips is extracted into the index's feature cache first; ids are read from the feature
file the index records) and appends them as a new segment (:mod:`mcsan.search.segments`):
their embeddings, their binding matcher rows, their FAISS vectors (added to the trained
index, labelled by row) and their concept scores. ``--remove ID ...`` drops clips: FAISS
forgets them and meta.json marks their rows removed. Each change writes a new index folder
beside the old one that hard-links the kept segments, and swaps it in: a killed add or
remove leaves the old index as it was. The result ranks like a fresh build of the same clips
(a flat index exactly; an IVF index keeps its trained lists, so it is as approximate as the
build was). Removed rows stay on disk, and added clips join lists trained on the first build,
until ``mcsan index --compact`` (:mod:`mcsan.search.compact`) rewrites the live clips and
retrains the FAISS index, with nothing re-encoded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.search.concept_index import ConceptScores
from mcsan.search.faiss_kinds import labelled
from mcsan.search.index import VideoIndex, add_rows, fuse_scales
from mcsan.search.index_files import MATCHER_ROLE, segment_files
from mcsan.search.segments import blocks_of, rows_of

log = logging.getLogger(__name__)


@dataclass
class ChangeSummary:
    """What an add or remove did."""

    out: str
    videos: int
    added: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _rebuilt(index: VideoIndex, **changes: Any) -> VideoIndex:
    """A new VideoIndex object: ``index`` with ``changes`` (sources and folder kept)."""
    parts = {
        "embeddings": index.embeddings, "ids": index.ids, "paths": index.paths,
        "concepts": index.concepts, "matcher": index.matcher, "segments": index.segments,
        "version": index.version, "faiss_index": index.faiss_index,
    }
    parts.update(changes)
    new = VideoIndex(
        parts["embeddings"], parts["ids"], parts["paths"], index.weights,
        index.checkpoint_sha256, parts["faiss_index"], media_root=index.media_root,
        kind=index.kind, nprobe=index.nprobe, extra=index.extra, concepts=parts["concepts"],
        matcher=parts["matcher"], matcher_info=index.matcher_info, segments=parts["segments"],
        version=parts["version"],
    )
    new.sources = dict(index.sources)
    new.directory = index.directory
    return new


def append_segment(
    index: VideoIndex, ids: Sequence[str], paths: Sequence[str | None],
    embeddings: dict[str, np.ndarray], *, matcher: Any = None,
    matcher_file: Path | None = None, concepts: ConceptScores | None = None,
) -> VideoIndex:
    """``index`` with the clips ``ids`` appended as a new segment (not saved)."""
    present = [v for v in ids if v in index]
    if present or len(set(ids)) != len(ids):
        raise SearchError(f"video {(present or list(ids))[0]!r} is already in the index or "
                          "given twice; ids must be unique")  # fmt: skip
    count, first = len(ids), len(index.ids)
    if (index.matcher is None) != (matcher is None):
        raise SearchError("the new clips' matcher rows do not match the index's store; "
                          "rebuild the index with `mcsan index`")  # fmt: skip
    if (index.concepts is None) != (concepts is None):
        raise SearchError("the index has concept scores and the new clips none (or the "
                          "reverse); rebuild the index with `mcsan index`")  # fmt: skip
    version = index.version + 1
    faiss_index = index.faiss_index
    if faiss_index is not None:
        faiss_index = labelled(faiss_index)
        video_scale, _ = fuse_scales(index.levels, index.weights)
        add_rows(faiss_index, embeddings, index.levels, video_scale, first)
    new_embeddings = {lv: rows_of(blocks_of(index.embeddings[lv]) + [embeddings[lv]])
                      for lv in index.levels}  # fmt: skip
    new_matcher = (rows_of(blocks_of(index.matcher) + [matcher]) if matcher is not None
                   else None)  # fmt: skip
    if concepts is not None:
        assert index.concepts is not None
        probs = np.concatenate([np.asarray(index.concepts.probs), concepts.probs], axis=1)
        concepts = ConceptScores(probs, index.concepts.info)
    segment = {"rows": count,
               "files": segment_files(index.levels, version, matcher is not None)}  # fmt: skip
    new = _rebuilt(
        index, embeddings=new_embeddings, ids=index.ids + list(ids),
        paths=index.paths + list(paths), concepts=concepts, matcher=new_matcher,
        segments=index.segments + [segment], version=version, faiss_index=faiss_index,
    )
    if matcher_file is not None:
        new.sources[(len(index.segments), MATCHER_ROLE)] = matcher_file
    return new


def drop_clips(index: VideoIndex, video_ids: Sequence[str]) -> VideoIndex:
    """``index`` without ``video_ids`` (not saved); SearchError naming an unknown id."""
    unknown = [v for v in video_ids if v not in index]
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5])
        raise SearchError(f"{len(unknown)} id(s) not in the index ({shown}); check the ids "
                          "(`mcsan search --json` shows them)")  # fmt: skip
    rows = np.array(sorted({index.row_of(v) for v in video_ids}), np.int64)
    faiss_index = index.faiss_index
    if faiss_index is not None:
        faiss_index = labelled(faiss_index)
        removed = faiss_index.remove_ids(rows)
        if removed != len(rows):
            raise SearchError(f"FAISS removed {removed} of {len(rows)} clips; the index is "
                              "inconsistent, rebuild it with `mcsan index`")  # fmt: skip
    ids, paths = list(index.ids), list(index.paths)
    for row in rows.tolist():
        ids[row], paths[row] = None, None
    return _rebuilt(index, ids=ids, paths=paths, version=index.version + 1,
                    faiss_index=faiss_index)  # fmt: skip


def remove_from_index(directory: str | os.PathLike[str], video_ids: Sequence[str]) -> ChangeSummary:
    """Remove ``video_ids`` from the index in ``directory`` and save it (atomically)."""
    started = time.perf_counter()
    index = VideoIndex.load(directory)
    new = drop_clips(index, list(dict.fromkeys(video_ids)))
    new.save(directory)
    log.info("removed %d clips from %s (version %d)", len(video_ids), directory, new.version)
    return ChangeSummary(out=str(directory), videos=len(new), removed=len(index) - len(new),
                         seconds=time.perf_counter() - started)  # fmt: skip


def _new_clips(index: VideoIndex, items: Sequence[str]) -> tuple[dict[str, Path] | None,
                                                                 list[str], list[str]]:  # fmt: skip
    """Folder mode: ({id: clip} not yet indexed, [], already there); id mode: (None, new
    ids, already there). SearchError when folders and ids are mixed."""
    from mcsan.data.video.decode import list_videos

    folders = [Path(item) for item in items if Path(item).is_dir()]
    if folders and len(folders) != len(items):
        raise SearchError("--add takes folders of clips or video ids, not both; run it twice")
    if not folders:
        unique = list(dict.fromkeys(items))
        return None, [v for v in unique if v not in index], [v for v in unique if v in index]
    found: dict[str, Path] = {}
    for folder in folders:
        found.update(list_videos(folder))
    if not found:
        raise SearchError(f"{', '.join(map(str, folders))}: no clips found; put .mp4 (or "
                          "other video) files there")  # fmt: skip
    fresh = {vid: path for vid, path in found.items() if vid not in index}
    return fresh, [], sorted(set(found) - set(fresh))


def _media_path(index: VideoIndex, clip: Path) -> str | None:
    """``clip`` relative to the index's media folder (None outside it: not served)."""
    if index.media_root is None:
        return None
    try:
        return clip.resolve().relative_to(Path(index.media_root)).as_posix()
    except ValueError:
        log.warning("%s is outside the index's media folder %s; it is searchable but the "
                    "page cannot play it", clip, index.media_root)  # fmt: skip
        return None


def _index_retriever(index: VideoIndex, root: Path, retriever: Any) -> Any:
    """The checkpoint that built ``index``'s model part (``retriever``, else the one the
    index records; another one is refused); None for a concept-only index."""
    if not index.has_model:
        return None
    if retriever is None:
        from mcsan.inference.retriever import Retriever

        source = index.extra.get("checkpoint")
        if not source:
            raise SearchError(f"{root}: the index records no checkpoint path; pass "
                              "--checkpoint")  # fmt: skip
        retriever = Retriever.from_checkpoint(source)
    index.check_checkpoint(retriever.checkpoint_sha256, where=f"index {root}")
    return retriever


def add_to_index(directory: str | os.PathLike[str], items: Sequence[str],
                 retriever: Any = None) -> ChangeSummary:  # fmt: skip
    """Add the clips of folders ``items`` (extracted into the index's caches), or the video
    ids ``items`` of the feature file the index records, to the index in ``directory``;
    clips already in it are skipped. Saved atomically."""
    from mcsan.data.video.store import FeatureStore
    from mcsan.search.build import (
        CACHE_NAME,
        CONCEPT_CACHE_NAME,
        _clips_by_id,
        _extract,
        concept_scores,
        encode_store,
        extract_concepts,
        staged_store,
    )  # fmt: skip
    from mcsan.search.rerank import index_feature_file

    started = time.perf_counter()
    root = Path(directory)
    index = VideoIndex.load(root)
    retriever = _index_retriever(index, root, retriever)
    fresh, ids, skipped = _new_clips(index, items)
    summary = ChangeSummary(out=str(root), videos=len(index), skipped=skipped)
    failed: set[str] = set()
    store_path = root / CACHE_NAME
    if fresh is not None:
        counts = {"extracted": 0, "reused": 0, "changed": 0}
        if index.has_model:
            spec = retriever.feature_spec
            _extract(fresh, store_path, counts, failed, backbone=spec.backbone,
                     frames=spec.frames, size=spec.size, streams=list(spec.streams))  # fmt: skip
        if index.concepts is not None:
            info = index.concepts.info
            extract_concepts(fresh, root / CONCEPT_CACHE_NAME, counts, failed,
                             frames=int(info["frames"]), size=int(info["size"]))
        ids = [vid for vid in fresh if vid not in failed]
        paths = [_media_path(index, fresh[vid]) for vid in ids]
    else:
        if index.concepts is not None:
            raise SearchError(f"{root} keeps concept scores, which need the clips: add a "
                              "folder of clips, not ids")  # fmt: skip
        recorded = index_feature_file(index)
        if recorded is None:
            raise SearchError(f"{root}: the feature file the index was built from is gone; "
                              "add clips by folder or rebuild")  # fmt: skip
        store_path = recorded
        media = _clips_by_id(Path(index.media_root)) if index.media_root else {}
        paths = [media.get(vid) for vid in ids]
    summary.failed = sorted(failed)
    if not ids:
        summary.seconds = time.perf_counter() - started
        return summary
    concepts = (concept_scores(root / CONCEPT_CACHE_NAME, ids)
                if index.concepts is not None else None)  # fmt: skip
    with contextlib.ExitStack() as stack:
        embeddings: dict[str, np.ndarray] = {}
        writer = None
        if index.has_model:
            store = stack.enter_context(
                FeatureStore.open(store_path, mode="r", expect=retriever.feature_spec))
            missing = [vid for vid in ids if vid not in store]
            if missing:
                raise SearchError(f"{store_path} has no features of {len(missing)} of the ids "
                                  f"(e.g. {missing[0]!r}); extract them first")  # fmt: skip
            writer = stack.enter_context(staged_store(
                retriever if index.matcher is not None else None, root, store, ids))
            embeddings = encode_store(retriever, store, ids, matcher=writer)
        matcher = writer.close() if writer is not None else None
        new = append_segment(index, ids, paths, embeddings, matcher=matcher,
                             matcher_file=writer.path if matcher is not None else None,
                             concepts=concepts)  # fmt: skip
        new.save(root)
    log.info("added %d clips to %s (version %d)", len(ids), root, new.version)
    summary.added, summary.videos = len(ids), len(new)
    summary.seconds = time.perf_counter() - started
    return summary

