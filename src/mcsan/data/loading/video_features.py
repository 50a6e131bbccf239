"""The features of a dataset's videos for training and evaluation, in bounded memory.

Two ways to hold them, both giving float16 arrays exactly as stored (the collate layer
turns them into float32 per batch, an exact conversion, so the model sees the same values
either way):

- **resident**: every video's streams in memory as float16 (half of float32). MSR-VTT with
  pooled 2048-d frames (T=20) is ~0.8 GB.
- **on demand**: read from the HDF5 store per batch, with an LRU cache bounded in bytes. A
  4x4 grid of 1280-d features over 10,000 clips (T=20) is ~8 GB as float16, so it stays
  on disk (the OS page cache keeps what fits, outside the process).

:func:`load_video_features` chooses by ``data.feature_memory`` (``auto``: resident when the
float16 size is at most ``data.resident_limit_gb``, else on demand) and ``describe`` says
what was chosen (the trainer logs it). Under DataLoader workers each worker process opens
its own file handle and keeps its own cache.

A store read on demand is watched: before each read from disk its stat (inode, size,
mtime) is compared with the one at load, and a file that changed under the run (rewritten,
truncated, replaced by other features) is a FeatureError naming it, never zeros; a file
replaced by one of the same identity (re-extracted to the same bytes) is reopened.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError
from mcsan.data.loading.collate import select_frames
from mcsan.data.video.store import FeatureStore

GB = 1024**3


class VideoFeatures:
    """Streams of videos ``0..n-1`` (``ids``): ``features[i]`` -> {stream: float16 (T, ...)}."""

    mode = "resident"

    def __init__(self, ids: Sequence[str], streams: Sequence[str], nbytes: int) -> None:
        self.ids = list(ids)
        self.streams = tuple(streams)
        self.nbytes = nbytes
        """float16 size of every selected stream of every video (what resident holds)."""

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def get(self, indices: Sequence[int]) -> FeatureView:
        """The stream dicts of videos ``indices``, in that order, as a sequence that reads
        each one when indexed (on demand, a whole split is never in memory at once)."""
        return FeatureView(self, indices)

    def describe(self) -> str:
        """One line for the training log: mode and resident size."""
        return f"{len(self)} videos resident in memory as float16: {self.nbytes / GB:.2f} GB"


class FeatureView(Sequence[dict[str, np.ndarray]]):
    """Videos ``indices`` of a VideoFeatures, fetched when indexed (slices give views)."""

    def __init__(self, features: VideoFeatures, indices: Sequence[int]) -> None:
        self.features = features
        self.indices = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return FeatureView(self.features, self.indices[index])
        return self.features[self.indices[index]]


class ResidentFeatures(VideoFeatures):
    """Every video in memory (float16)."""

    def __init__(self, items: list[dict[str, np.ndarray]], ids: Sequence[str],
                 streams: Sequence[str]) -> None:  # fmt: skip
        super().__init__(ids, streams, sum(a.nbytes for item in items for a in item.values()))
        self.items = items

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.items[index]


class OnDemandFeatures(VideoFeatures):
    """Videos read from the store when asked for, the most recent kept up to ``cache_bytes``."""

    mode = "on_demand"

    def __init__(self, path: Path, ids: Sequence[str], streams: Sequence[str],
                 max_frames: int | None, nbytes: int, cache_bytes: int,
                 identity: str | None = None) -> None:  # fmt: skip
        super().__init__(ids, streams, nbytes)
        self.path = Path(path)
        self.identity = identity
        self._stat = _file_stat(self.path)
        self.max_frames = max_frames
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cached = 0
        self._store: FeatureStore | None = None
        self._pid = -1

    def _open(self) -> FeatureStore:
        stat = _file_stat(self.path)  # a stat per read from disk: changed under the run?
        if stat != self._stat:
            self._reopen_changed(stat)
        # an HDF5 handle must not cross fork(): a DataLoader worker opens its own
        if self._store is None or self._pid != os.getpid():
            self._store = FeatureStore.open(self.path, mode="r")
            spec = self._store.spec
            if (self.identity is not None and self._store.identity != self.identity) or any(
                    name not in spec.streams for name in self.streams):  # fmt: skip
                self._store.close()
                self._store = None
                raise FeatureError(
                    f"{self.path}: the feature file changed while it was in use (other "
                    "features, same name); restart the run on the intended file"
                )
            self._pid = os.getpid()
            self._cache.clear()
            self._cached = 0
        return self._store

    def _reopen_changed(self, stat: tuple[int, int, int] | None) -> None:
        """The file changed on disk: in place (truncated, rewritten) is an error; a new
        file is reopened and must have the identity of the one loaded."""
        if stat is None or self._stat is None or stat[0] == self._stat[0]:
            raise FeatureError(
                f"{self.path}: the feature file was {'removed' if stat is None else 'changed'} "
                f"while it was read on demand (size {self._stat and self._stat[1]} -> "
                f"{stat and stat[1]} bytes); its features can no longer be trusted: restore "
                "it and restart (or resume) the run"
            )
        if self._store is not None:
            self._store.close()
            self._store = None
        self._stat = stat

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_store=None, _pid=-1, _cache=OrderedDict(), _cached=0)
        return state

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        hit = self._cache.get(index)
        if hit is not None:
            self._cache.move_to_end(index)
            return hit
        raw = self._open().read(self.ids[index], np.float16, self.streams)
        item = {name: select_frames(array, self.max_frames) for name, array in raw.items()}
        size = sum(a.nbytes for a in item.values())
        if size <= self.cache_bytes:
            self._cache[index] = item
            self._cached += size
            while self._cached > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached -= sum(a.nbytes for a in old.values())
        return item

    def describe(self) -> str:
        return (
            f"{len(self)} videos read on demand from {self.path} ({self.nbytes / GB:.2f} GB as "
            f"float16 stays on disk); cache <= {self.cache_bytes / GB:.2f} GB per process"
        )


def load_video_features(
    store: FeatureStore,
    ids: Sequence[str],
    streams: Sequence[str],
    max_frames: int | None,
    mode: str = "auto",
    resident_limit_gb: float = 4.0,
    cache_gb: float = 1.0,
) -> VideoFeatures:
    """The features of ``ids`` from an open ``store``, resident or on demand (module doc)."""
    frame_bytes = sum(2 * int(np.prod(store.spec.streams[s], dtype=np.int64)) for s in streams)
    frames = (store.frame_count(v) for v in ids)
    nbytes = frame_bytes * sum(f if max_frames is None else min(f, max_frames) for f in frames)
    if mode == "auto":
        mode = "resident" if nbytes <= resident_limit_gb * GB else "on_demand"
    if mode == "on_demand":
        return OnDemandFeatures(store.path, ids, streams, max_frames, nbytes, int(cache_gb * GB),
                                store.identity)  # fmt: skip
    items = []
    for video_id in ids:
        raw = store.read(video_id, np.float16, streams)
        items.append({name: select_frames(array, max_frames) for name, array in raw.items()})
    return ResidentFeatures(items, ids, streams)


def _file_stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
