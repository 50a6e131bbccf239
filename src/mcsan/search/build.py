"""Turn a video collection into a :class:`VideoIndex`: find or extract features, encode, index.

Two sources:

- a folder of clips (``--videos``): features are extracted with the checkpoint's feature
  spec into ``INDEX/features.h5``, an extraction cache reused by the next run; and (unless
  turned off) the frame encoder's ImageNet logits and the people detector's indicators into
  ``INDEX/concept_frames.h5``, pooled into per-clip concept scores (:mod:`mcsan.search.concept_index`). Without a checkpoint the
  index holds the concept scores only;
- a native dataset (``--dataset``): its ``features/<set>.h5`` whose spec matches the
  checkpoint; clips under ``<dataset>/videos`` become the media.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError, SearchError
from mcsan.core.io import make_dir
from mcsan.core.progress import track
from mcsan.data.video.backbone import DEFAULT_BACKBONE as DEFAULT_CONCEPT_BACKBONE
from mcsan.data.video.backbone import LOGITS_STREAM
from mcsan.inference.encoder import Encoder
from mcsan.search.concept_index import CONCEPT_FRAMES, CONCEPT_SIZE, ConceptScores
from mcsan.search.honesty import model_info
from mcsan.search.index import VideoIndex
from mcsan.search.index_files import MATCHER_ROLE
from mcsan.search.index_shards import shard_of
from mcsan.search.matcher_store import StoreWriter, encode_rows, segment_frames, store_layout

CACHE_NAME = "features.h5"
CONCEPT_CACHE_NAME = "concept_frames.h5"
"""Per-frame ImageNet logits and people indicators (``concepts.h5`` before people detection)."""
ENCODE_BATCH = 64
log = logging.getLogger(__name__)


@dataclass
class IndexSummary:
    """What :func:`index_videos` / :func:`index_dataset` did."""

    out: str
    videos: int
    kind: str
    feature_file: str
    extracted: int = 0
    reused: int = 0
    changed: int = 0
    """Of ``extracted``: clips whose cached features were stale (the clip changed since)."""
    failed: list[str] = field(default_factory=list)
    with_media: int = 0
    seconds: float = 0.0


def encode_store(
    retriever: Encoder, store: Any, ids: Sequence[str], batch_size: int = ENCODE_BATCH,
    matcher: StoreWriter | None = None,
) -> dict[str, np.ndarray]:
    """Per-level embeddings (N, d) of the videos ``ids`` read from a FeatureStore; with
    ``matcher`` the binding matcher's stored rows of each batch go there too (one read)."""
    levels = retriever.levels
    parts: dict[str, list[np.ndarray]] = {lv: [] for lv in levels}
    starts = range(0, len(ids), batch_size)
    for start in track(starts, total=len(starts), desc="encode", unit="batch"):
        batch = [store.read(video_id) for video_id in ids[start : start + batch_size]]
        encoded = retriever.encode_features(batch)
        for level in levels:
            parts[level].append(np.asarray(encoded[level], dtype=np.float32))
        if matcher is not None:
            matcher.write(encode_rows(retriever, batch, matcher.frames))
    return {lv: np.concatenate(chunks, axis=0) for lv, chunks in parts.items()}


@contextlib.contextmanager
def staged_store(retriever: Encoder | None, out: Path, store: Any,
                 ids: Sequence[str]) -> Iterator[StoreWriter | None]:  # fmt: skip
    """A matcher store for the clips ``ids`` of the FeatureStore ``store``, written beside
    ``out`` (None when the checkpoint has no matcher); removed once the index is saved."""
    layout = store_layout(retriever)
    if layout is None:
        yield None
        return
    assert retriever is not None
    frames = segment_frames(layout, store, ids, retriever.config.data.max_frames)
    make_dir(out.parent)
    for stale in out.parent.glob(f".{out.name}.*.stage"):
        if not _running(stale.name.rsplit(".", 2)[-2]):
            stale.unlink(missing_ok=True)  # left by a killed build or add
    path = out.parent / f".{out.name}.{os.getpid()}.stage"
    try:
        yield StoreWriter(path, len(ids), layout, frames)
    finally:
        path.unlink(missing_ok=True)


def _running(pid: str) -> bool:
    """Whether process ``pid`` (text) is alive (False for anything not a pid)."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def build_from_store(
    retriever: Encoder,
    store_path: Path,
    ids: Sequence[str],
    paths: Sequence[str | None],
    out: Path,
    *,
    media_root: Path | None,
    approx: bool,
    checkpoint: str | os.PathLike[str] | None,
    source: dict[str, Any],
    concepts: ConceptScores | None = None,
    index_type: str | None = None,
) -> VideoIndex:
    """Encode ``ids`` from the store at ``store_path`` and save the index to ``out``.

    With ``retriever`` None the index holds ``concepts`` only (``store_path`` unused).
    """
    from mcsan.data.video.store import FeatureStore

    extra: dict[str, Any] = {"source": source}
    embeddings: dict[str, np.ndarray] = {}
    with contextlib.ExitStack() as stack:
        matcher, writer = None, None
        if retriever is not None:
            store = stack.enter_context(
                FeatureStore.open(store_path, mode="r", expect=retriever.feature_spec))
            writer = stack.enter_context(staged_store(retriever, out, store, ids))
            embeddings = encode_store(retriever, store, ids, matcher=writer)
            extra["feature_identity"] = store.identity  # what the re-ranker must read
            extra["feature_file"] = str(Path(store_path).resolve())
            extra["dataset"] = model_info(retriever)["dataset"]
            matcher = writer.close() if writer is not None else None
        if checkpoint is not None:
            extra["checkpoint"] = str(Path(checkpoint).resolve())
        index = VideoIndex.build(
            embeddings, ids, paths,
            retriever.level_weights if retriever is not None else {},
            retriever.checkpoint_sha256 if retriever is not None else None,
            media_root=media_root, approx=approx, extra=extra, concepts=concepts,
            index_type=index_type, matcher=matcher,
            matcher_info=writer.layout if writer is not None else None,
        )
        if writer is not None:
            index.sources[(0, MATCHER_ROLE)] = writer.path
        index.save(out)
    return index


def index_dataset(
    retriever: Encoder,
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    approx: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    index_type: str | None = None,
    shard: tuple[int, int] | None = None,
) -> IndexSummary:
    """Index every video (of ``shard`` (i, N): every N-th from the i-th) of a native
    dataset's feature set that matches the checkpoint."""
    from mcsan.data.native import check_card_identity, feature_path, read_card, videos_dir
    from mcsan.data.video.store import FeatureStore

    started = time.perf_counter()
    root = Path(dataset)
    spec = retriever.feature_spec
    card = read_card(root)
    names = list(card.get("feature_sets") or {})
    if retriever.feature_set in names:
        names.remove(retriever.feature_set)
        names.insert(0, retriever.feature_set)
    store_path, problems = None, []
    for name in names:
        candidate = feature_path(root, name)
        try:
            FeatureStore.open(candidate, mode="r", expect=spec).close()
        except FeatureError as exc:
            problems.append(str(exc))
            continue
        store_path = candidate
        break
    if store_path is None:
        detail = "; ".join(problems) or "the card lists no feature sets"
        raise SearchError(
            f"{root}: no feature set matches the checkpoint's spec ({detail}); extract one "
            "with `mcsan extract` using the checkpoint's options"
        )
    with FeatureStore.open(store_path, mode="r") as store:
        check_card_identity(root, store_path.stem, store_path, store.identity)
        ids = shard_of(store.ids(), shard)
    clips = _clips_by_id(videos_dir(root))
    media_root = videos_dir(root) if clips else None
    paths = [clips.get(video_id) for video_id in ids]
    index = build_from_store(
        retriever, store_path, ids, paths, Path(out), media_root=media_root, approx=approx,
        checkpoint=checkpoint, source={"dataset": str(root.resolve())}, index_type=index_type,
    )
    return IndexSummary(
        out=str(out), videos=len(index), kind=index.meta()["kind"],
        feature_file=str(store_path), reused=len(index),
        with_media=sum(p is not None for p in paths), seconds=time.perf_counter() - started,
    )


def index_videos(
    retriever: Encoder | None,
    videos: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    approx: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    concepts: bool = True,
    index_type: str | None = None,
    shard: tuple[int, int] | None = None,
) -> IndexSummary:
    """Extract (or reuse) features of every clip in ``videos`` (of ``shard`` (i, N): every
    N-th from the i-th) and index them.

    ``retriever`` None builds a concept-only index (``concepts`` must then be True).
    """
    from mcsan.data.video.decode import list_videos
    from mcsan.data.video.extract import failures_path

    if retriever is None and not concepts:
        raise SearchError("nothing to index: pass a checkpoint, or keep concept scores on")
    started = time.perf_counter()
    folder = Path(videos)
    found = list_videos(folder)
    found = {video_id: found[video_id] for video_id in shard_of(sorted(found), shard)}
    if not found:
        raise SearchError(f"{folder}: no clips found; put .mp4 (or other video) files there")
    out_dir = Path(out)
    cache = out_dir / (CACHE_NAME if retriever is not None else CONCEPT_CACHE_NAME)
    counts = {"extracted": 0, "reused": 0, "changed": 0}
    failed: set[str] = set()
    if retriever is not None:
        spec = retriever.feature_spec
        if spec.frames <= 0:
            raise SearchError(
                "the checkpoint was trained on variable-length (fps-sampled) features, whose "
                "sampling rate it does not record; extract them with `mcsan extract --fps ...` "
                "into a native dataset and index it with --dataset"
            )
        _extract(found, cache, counts, failed, backbone=spec.backbone, frames=spec.frames,
                 size=spec.size, streams=list(spec.streams))
    scores = None
    if concepts:
        extract_concepts(found, out_dir / CONCEPT_CACHE_NAME, counts, failed)
    ids = [video_id for video_id in found if video_id not in failed]
    if not ids:
        shown = ", ".join(sorted(failed)[:5]) + (" ..." if len(failed) > 5 else "")
        logs = sorted({str(failures_path(c)) for c in (cache, out_dir / CONCEPT_CACHE_NAME)
                       if failures_path(c).is_file()})
        raise SearchError(
            f"{folder}: no clip could be decoded ({len(failed)} failed: {shown}); the reasons "
            f"are in {', '.join(logs) or 'the failures file beside the feature cache'}"
        )
    if concepts:
        scores = concept_scores(out_dir / CONCEPT_CACHE_NAME, ids)
    paths = [_relative(found[video_id], folder) for video_id in ids]
    index = build_from_store(
        retriever, cache, ids, paths, out_dir, media_root=folder, approx=approx,
        checkpoint=checkpoint, source={"videos": str(folder.resolve())}, concepts=scores,
        index_type=index_type,
    )
    return IndexSummary(
        out=str(out_dir), videos=len(index), kind=index.meta()["kind"], feature_file=str(cache),
        extracted=counts["extracted"], reused=counts["reused"], changed=counts["changed"],
        failed=sorted(failed), with_media=len(ids), seconds=time.perf_counter() - started,
    )


def concept_scores(cache: Path, ids: Sequence[str]) -> ConceptScores:
    """Pooled concept scores of ``ids`` from a store of per-frame ImageNet logits and people
    indicators (:mod:`mcsan.search.people`)."""
    from mcsan.data.video.store import FeatureStore
    from mcsan.search.people import DETECTOR_NAME, PEOPLE_STREAM

    with FeatureStore.open(cache, mode="r") as store:
        clips = [store.read(video_id) for video_id in ids]
    people = [clip[PEOPLE_STREAM] for clip in clips] if PEOPLE_STREAM in clips[0] else None
    return ConceptScores.from_clips([clip[LOGITS_STREAM] for clip in clips], frames=CONCEPT_FRAMES,
                                    size=CONCEPT_SIZE, per_clip_people=people,
                                    detector=DETECTOR_NAME)  # fmt: skip


def extract_concepts(found: dict[str, Path], cache: Path, counts: dict[str, int],
                     failed: set[str], frames: int = CONCEPT_FRAMES,
                     size: int = CONCEPT_SIZE) -> None:  # fmt: skip
    """Per-frame ImageNet logits and people indicators of ``found`` into ``cache``."""
    from mcsan.search.people import ConceptFrameEncoder

    _extract(found, cache, counts, failed, frames=frames, size=size,
             encoder=ConceptFrameEncoder(DEFAULT_CONCEPT_BACKBONE))


def _extract(
    found: dict[str, Path], cache: Path, counts: dict[str, int], failed: set[str],
    **options: Any,
) -> None:
    """Extract features into ``cache`` (reusing what is there); add to counts and failures."""
    from mcsan.data.video.extract import extract_features

    summary = extract_features(dict(found), cache, **options)
    counts["extracted"] += summary.done
    counts["reused"] += summary.skipped
    counts["changed"] += len(summary.changed)
    failed.update(record["video_id"] for record in summary.failures)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _clips_by_id(folder: Path) -> dict[str, str]:
    """Playable clips of a dataset's videos folder by id (file stem), as relative paths."""
    if not folder.is_dir():
        return {}
    from mcsan.data.video.decode import list_videos

    return {
        video_id: _relative(path, folder)
        for video_id, path in list_videos(folder).items()
        if path.is_file()
    }


def build_index(
    out: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    dataset: str | os.PathLike[str] | None = None,
    videos: str | os.PathLike[str] | None = None,
    approx: bool = False,
    concepts: bool = True,
    index_type: str | None = None,
    shard: tuple[int, int] | None = None,
) -> IndexSummary:
    """``mcsan index``: index a native ``dataset``'s features (needs ``checkpoint``) or a
    folder of ``videos`` (model embeddings with ``checkpoint``, concept scores unless
    ``concepts`` is False) into ``out``; ``index_type`` (flat, ivf, ivfpq, qdrant; None:
    by the collection's size) and ``shard`` (i, N) as :func:`index_dataset`'s."""
    retriever = None
    if checkpoint is not None:
        from mcsan.inference.retriever import Retriever

        retriever = Retriever.from_checkpoint(checkpoint)
    if (dataset is None) == (videos is None):
        raise SearchError("index either a dataset (--dataset) or a folder of clips (--videos)")
    if dataset is not None:
        if retriever is None:
            raise SearchError(
                f"{dataset}: indexing a dataset's features needs --checkpoint; for concept "
                "search without a model index its clips with --videos DIR"
            )
        return index_dataset(retriever, dataset, out, approx=approx, checkpoint=checkpoint,
                             index_type=index_type, shard=shard)
    if retriever is None and not concepts:
        raise SearchError("--no-concepts without --checkpoint leaves nothing to index")
    return index_videos(retriever, videos, out, approx=approx, checkpoint=checkpoint,  # type: ignore[arg-type]
                        concepts=concepts, index_type=index_type, shard=shard)
