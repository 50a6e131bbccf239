"""The extraction driver: clips -> frames -> backbone -> FeatureStore; resumable and sharded.

Crash safety: finished videos are written in small part stores under ``<out>.parts/``,
each created under a temporary name and renamed into place (``mcsan.core.io.atomic_path``),
so a part is complete or absent. At the end the parts (and an existing ``<out>``) are
merged into ``<out>``, again atomically, and the parts are removed. A run killed at any
moment (kill -9 included) leaves only complete files; the same command started again
skips every video already in ``<out>`` or in a part whose clip is unchanged: each entry
stores its clip's fingerprint (:mod:`mcsan.data.video.identity`), and a clip that changed
since (other size, or other content at its ends) is extracted again and counted as
``changed``; entries stored before fingerprints are reused and counted as ``unchecked``.

Failures (missing, empty, corrupt, undecodable clips; non-finite features) are appended
to ``<out stem>.failures.jsonl`` as ``{"video_id", "path", "reason"}`` and counted; they
are never zero-filled. The failures file lists the failures of the latest run.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import ConfigError, FeatureError, MCSANError
from mcsan.core.io import append_jsonl, atomic_path, make_dir
from mcsan.core.progress import track
from mcsan.data.video.backbone import DEFAULT_BACKBONE, WORLD_STREAMS, FrameEncoder, get_backbone
from mcsan.data.video.decode import read_frames
from mcsan.data.video.identity import clip_fingerprint, stale_entries
from mcsan.data.video.shards import (  # noqa: F401  (re-exported: the extract API)
    find_shards,
    merge_shards,
    merge_stores,
    missing_shards,
    parse_shard,
    select_shard,
    shard_from_env,
    shard_path,
)
from mcsan.data.video.store import FeatureSpec, FeatureStore

PART_PREFIX = "part-"
logger = logging.getLogger(__name__)


@dataclass
class ExtractionSummary:
    """What an extraction run did."""

    out_path: Path
    done: int = 0
    skipped: int = 0
    changed: list[str] = field(default_factory=list)
    unchecked: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0

    def line(self) -> str:
        """One-line human summary."""
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        changed = f" ({len(self.changed)} of them changed since)" if self.changed else ""
        text = (
            f"{self.out_path}: {self.done} extracted{changed}, {self.skipped} already done, "
            f"{self.failed} failed in {self.seconds:.1f}s ({rate:.1f} frames/s)"
        )
        if self.unchecked:
            text += (f"; {self.unchecked} reused without a clip fingerprint (extracted before "
                     "fingerprints: delete the file to re-extract them)")  # fmt: skip
        if self.failed:
            text += f"; see {failures_path(self.out_path)}"
        return text


def failures_path(out_path: str | os.PathLike[str]) -> Path:
    """``FEATURES.h5`` -> ``FEATURES.failures.jsonl``."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.failures.jsonl")


def parts_dir(out_path: str | os.PathLike[str]) -> Path:
    """Folder of the part stores of an unfinished run."""
    out = Path(out_path)
    return out.with_name(f"{out.name}.parts")


def _part_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{PART_PREFIX}*.h5"))


def _completed_ids(
    out: Path, parts: list[Path], spec: FeatureSpec, wanted: set[str]
) -> dict[str, dict[str, Any] | None]:
    """{id: clip fingerprint or None} of the ``wanted`` ids stored in ``out`` or a part
    (a later part wins: it holds the newer extraction)."""
    done: dict[str, dict[str, Any] | None] = {}
    for path in ([out] if out.is_file() else []) + parts:
        try:
            with FeatureStore.open(path, "r", expect=spec) as store:
                done.update({v: s for v, s in store.sources().items() if v in wanted})
        except FeatureError as exc:
            raise FeatureError(
                f"{exc}. The options differ from the run that wrote it: use another --out, "
                f"or delete {path} to start over"
            ) from None
    return done


def _decode_one(path: Path, frames: int, size: int, fps: float | None) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        fingerprint = clip_fingerprint(path)  # before decoding: a clip changed meanwhile
        result: Any = (read_frames(path, frames, size, fps), fingerprint)  # is re-done later
    except MCSANError as exc:
        result = exc
    except Exception as exc:  # anything a damaged file provokes is a per-clip failure
        result = MCSANError(f"{path}: {type(exc).__name__}: {exc}")
    return result, time.perf_counter() - started


def _prefetched(
    pool: ThreadPoolExecutor, jobs: list[tuple[str, Path]], depth: int, *args: Any
) -> Iterator[tuple[str, Path, Any, float]]:
    """Decode ``jobs`` on the pool, at most ``depth`` ahead, yielding in order."""
    queue: deque[tuple[str, Path, Future[tuple[Any, float]]]] = deque()
    pending = iter(jobs)
    for video_id, path in pending:
        queue.append((video_id, path, pool.submit(_decode_one, path, *args)))
        if len(queue) >= depth:
            break
    while queue:
        video_id, path, future = queue.popleft()
        for next_id, next_path in pending:
            queue.append((next_id, next_path, pool.submit(_decode_one, next_path, *args)))
            break
        result, seconds = future.result()
        yield video_id, path, result, seconds


class _PartWriter:
    """Buffers finished videos and writes them as atomic part stores."""

    def __init__(self, folder: Path, spec: FeatureSpec, summary: ExtractionSummary) -> None:
        self.folder = folder
        self.spec = spec
        self.summary = summary
        self.buffer: dict[str, tuple[Path, dict[str, np.ndarray], dict[str, Any]]] = {}
        existing = [int(p.stem[len(PART_PREFIX) :]) for p in _part_paths(folder)]
        self.next_number = max(existing, default=-1) + 1

    def add(self, video_id: str, path: Path, streams: dict[str, np.ndarray],
            source: dict[str, Any]) -> None:  # fmt: skip
        self.buffer[video_id] = (path, streams, source)

    def flush(self) -> None:
        if not self.buffer:
            return
        make_dir(self.folder)
        target = self.folder / f"{PART_PREFIX}{self.next_number:06d}.h5"
        with atomic_path(target) as tmp:
            with FeatureStore.create(tmp, self.spec, overwrite=True) as part:
                for video_id, (path, streams, source) in self.buffer.items():
                    try:
                        part.write(video_id, streams, source=source)
                        self.summary.done += 1
                    except FeatureError as exc:
                        _record_failure(self.summary, video_id, path, str(exc))
        self.next_number += 1
        self.buffer.clear()


class _FrameBatcher:
    """Feeds the encoder batches of exactly ``batch`` frames (clips may straddle two
    batches); the last batch is padded, by repeating its last frame, to a power of two
    (at least 2). Few input shapes keep the backbone's kernels warm, and a clip's features
    do not depend on its batch-mates: a resumed run gives the same numbers as an
    uninterrupted one (bit-identical here; oneDNN's batch-1 kernels differ, hence >= 2)."""

    def __init__(self, encoder: FrameEncoder, batch: int, summary: ExtractionSummary) -> None:
        self.encoder = encoder
        self.batch = max(1, int(batch))
        self.summary = summary
        self.clips: deque[tuple[str, Path, int]] = deque()
        self.frames: list[np.ndarray] = []
        self.pending = 0
        self.encoded: dict[str, list[np.ndarray]] = {}
        self.encoded_count = 0

    def add(
        self, video_id: str, path: Path, clip: np.ndarray
    ) -> list[tuple[str, Path, dict[str, np.ndarray]]]:
        """Queue a decoded clip; return the clips whose features are complete."""
        self.clips.append((video_id, path, len(clip)))
        self.frames.append(clip)
        self.pending += len(clip)
        while self.pending >= self.batch:
            self._encode(self.batch)
        return self._complete()

    def finish(self) -> list[tuple[str, Path, dict[str, np.ndarray]]]:
        """Encode what is left; return the remaining clips."""
        if self.pending:
            self._encode(self.pending)
        return self._complete()

    def _encode(self, count: int) -> None:
        queued = np.concatenate(self.frames) if len(self.frames) > 1 else self.frames[0]
        chunk, rest = queued[:count], queued[count:]
        self.frames = [rest] if len(rest) else []
        self.pending = len(rest)
        padded = min(self.batch, max(2, 1 << (count - 1).bit_length()))
        if count < padded:  # the last batch: pad to a power of two (few shapes, >= 2)
            filler = np.repeat(chunk[-1:], padded - count, axis=0)
            chunk = np.concatenate([chunk, filler])
        tick = time.perf_counter()
        features = self.encoder.encode(chunk)
        self.summary.encode_seconds += time.perf_counter() - tick
        self.summary.frames += count
        for name, value in features.items():
            self.encoded.setdefault(name, []).append(value[:count])
        self.encoded_count += count

    def _complete(self) -> list[tuple[str, Path, dict[str, np.ndarray]]]:
        done: list[tuple[str, Path, dict[str, np.ndarray]]] = []
        if not self.clips or self.encoded_count < self.clips[0][2]:
            return done
        merged = {name: np.concatenate(parts) for name, parts in self.encoded.items()}
        start = 0
        while self.clips and self.encoded_count - start >= self.clips[0][2]:
            video_id, path, length = self.clips.popleft()
            done.append((video_id, path, {n: v[start : start + length] for n, v in merged.items()}))
            start += length
        self.encoded = {name: [value[start:]] for name, value in merged.items()}
        self.encoded_count -= start
        return done


def _record_failure(summary: ExtractionSummary, video_id: str, path: Path, reason: str) -> None:
    record = {"video_id": video_id, "path": str(path), "reason": reason}
    summary.failures.append(record)
    summary.failed += 1
    append_jsonl(failures_path(summary.out_path), record)


def extract_features(
    videos: Mapping[str, str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    backbone: str = DEFAULT_BACKBONE,
    frames: int = 16,
    size: int = 224,
    grid: int = 2,
    streams: Sequence[str] | str = WORLD_STREAMS,
    fps: float | None = None,
    shard: tuple[int, int] | None = None,
    batch_frames: int = 64,
    workers: int = 2,
    checkpoint_every: int = 64,
    device: str = "cpu",
    encoder: FrameEncoder | None = None,
) -> ExtractionSummary:
    """Extract features of ``videos`` ({id: clip path}) into a FeatureStore at ``out_path``.

    With ``shard=(i, N)`` only every N-th id is done, into ``shard_path(out_path, i, N)``.
    ``fps`` samples at a fixed rate (variable T, spec frames 0; ``frames`` caps T when > 0).
    Decoding runs on ``workers`` threads, ahead of inference.
    Resumable: ids already stored are skipped. A ready ``encoder`` (see
    :mod:`mcsan.data.video.backbone`) replaces ``backbone``/``streams``/``grid``.
    Returns an :class:`ExtractionSummary`.
    """
    started = time.perf_counter()
    out = Path(out_path) if shard is None else shard_path(out_path, *shard)
    if frames < 0 or (frames == 0 and not fps):
        raise ConfigError("--frames must be >= 1 (or 0 with --fps)")
    encoder = encoder or get_backbone(
        backbone, streams, grid=grid, batch_size=batch_frames, device=device
    )
    spec = FeatureSpec(encoder.name, size, 0 if fps else frames, encoder.stream_shapes(),
                       fps=fps or None)  # fmt: skip
    folder = parts_dir(out)
    if folder.is_dir():
        for leftover in folder.glob(".*.tmp"):  # temp files of a killed run
            leftover.unlink(missing_ok=True)
    wanted = select_shard(list(videos), shard)
    summary = ExtractionSummary(out_path=out)
    failures_path(out).unlink(missing_ok=True)  # it lists the failures of the latest run
    done_ids, changed = _done_and_changed(out, folder, spec, wanted, videos, summary)
    summary.skipped = sum(1 for v in wanted if v in done_ids)
    jobs = [(v, Path(videos[v])) for v in wanted if v not in done_ids]
    writer = _PartWriter(folder, spec, summary)
    batcher = _FrameBatcher(encoder, batch_frames, summary)

    sources: dict[str, dict[str, Any]] = {}

    def finished(clips: list[tuple[str, Path, dict[str, np.ndarray]]]) -> None:
        for video_id, path, features in clips:
            writer.add(video_id, path, features, sources.pop(video_id))
        if len(writer.buffer) >= checkpoint_every:
            writer.flush()

    depth = max(2, 2 * workers)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        decoded = _prefetched(pool, jobs, depth, frames, size, fps)
        for video_id, path, result, seconds in track(decoded, len(jobs), "extract", "clip"):
            summary.decode_seconds += seconds
            if isinstance(result, Exception):
                _record_failure(summary, video_id, path, str(result))
                continue
            clip, sources[video_id] = result
            finished(batcher.add(video_id, path, clip))
        finished(batcher.finish())
        writer.flush()

    # a changed clip that failed now keeps no stale entry
    _finish_store(out, folder, spec, set(changed) & {r["video_id"] for r in summary.failures})
    summary.seconds = time.perf_counter() - started
    return summary


def _done_and_changed(out: Path, folder: Path, spec: FeatureSpec, wanted: list[str],
                      videos: Mapping[str, str | os.PathLike[str]],
                      summary: ExtractionSummary) -> tuple[set[str], list[str]]:  # fmt: skip
    """Ids already extracted from their current clips, and ids whose clip changed since
    (extracted again, said in a warning and in ``summary``)."""
    stored = _completed_ids(out, _part_paths(folder), spec, set(wanted))
    changed, unchecked = stale_entries(stored, videos)
    if changed:
        logger.warning("%s: %d clip(s) changed since their features were extracted (e.g. "
                       "%s); extracting them again", out, len(changed), changed[0])  # fmt: skip
    summary.changed, summary.unchecked = changed, len(unchecked)
    return set(stored) - set(changed), changed


def _finish_store(out: Path, folder: Path, spec: FeatureSpec, stale: set[str]) -> None:
    """Merge the run's parts (newest first: a re-extracted clip's entry replaces the stale
    one) into ``out``, dropping ``stale`` entries; an empty store when nothing was done."""
    parts = _part_paths(folder)
    if parts or stale:
        merge_stores([*reversed(parts), *([out] if out.is_file() else [])], out,
                     expect=spec, skip=stale)  # fmt: skip
    elif not out.is_file():
        with atomic_path(out) as tmp:
            FeatureStore.create(tmp, spec, overwrite=True).close()
    if folder.is_dir():
        shutil.rmtree(folder)


def record_feature_set(root: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> bool:
    """List ``out_path`` in the dataset card of native dataset ``root`` when it lies in
    ``<root>/features/`` (set name = file stem). Returns whether the card was updated."""
    from mcsan.data.native import card_path, update_card

    base = Path(root).resolve()
    out = Path(out_path).resolve()
    if not card_path(base).is_file() or out.parent != base / "features":
        return False
    with FeatureStore.open(out) as store:
        spec = store.spec.to_json()
        identity = store.identity
    update_card(base, feature_sets={out.stem: {"path": str(out.relative_to(base)), **spec,
                                               "identity": identity}})  # fmt: skip
    return True


def extract_dataset(
    root: str | os.PathLike[str], feature_set: str = "world", **options: Any
) -> ExtractionSummary:
    """Extract the clips of native dataset ``root`` (``<root>/videos/``) into its feature
    set ``feature_set`` (``<root>/features/<set>.h5``) and list it in the dataset card;
    ``options`` are :func:`extract_features`'s (frames, size, streams, workers, ...).
    FeatureError when a clip failed (the finished ones are kept: run it again)."""
    from mcsan.data.native import feature_path, videos_dir
    from mcsan.data.video.decode import list_videos

    out = feature_path(root, feature_set)
    summary = extract_features(list_videos(videos_dir(root)), out, **options)
    if summary.failed:
        raise FeatureError(
            f"{out}: {summary.failed} clips failed to extract (listed in "
            f"{failures_path(out)}); fix or remove those clips and run again"
        )
    record_feature_set(root, out)
    return summary
