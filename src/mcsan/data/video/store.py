"""FeatureStore: per-video frame features in one HDF5 file, with their spec.

Layout::

    /                 attrs: mcsan_feature_spec (JSON of FeatureSpec), mcsan_format,
                      mcsan_identity (see mcsan.data.video.identity; absent in old files)
    /videos/<id>/     one group per video; attrs ``digest`` (of the streams), ``source``
                      (JSON clip fingerprint, when extracted from a clip), ``complete`` last
        <stream>      (T, *shape) float16, one dataset per stream
    /manifest/        ids, digests, sources of the complete entries (written on close;
                      read at once instead of an attribute per entry; rebuilt when absent)

Video ids are escaped reversibly into HDF5 names (``%`` and ``/`` become ``%25`` and
``%2F``, a leading ``.`` becomes ``%2E``: :mod:`mcsan.data.video.entries`). An entry exists only once its ``complete``
attribute is written and the file flushed; a group left behind by a crash is invisible to
readers and replaced by the next write of that id.

A store made by :meth:`FeatureStore.create` is built in memory and written to its path
when closed (callers create it under a temporary name, ``mcsan.core.io.atomic_path``): a disk
that fills up then raises an error instead of crashing HDF5, and the earlier file stays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError
from mcsan.core.io import make_dir, output_errors
from mcsan.data.video.entries import (
    escape_id,
    read_manifest,
    scan_entries,
    write_manifest,
)
from mcsan.data.video.identity import entry_digest, store_identity

SPEC_ATTR = "mcsan_feature_spec"
FORMAT_ATTR = "mcsan_format"
FORMAT_VERSION = 1
VIDEOS_GROUP = "videos"
COMPLETE_ATTR = "complete"
IDENTITY_ATTR = "mcsan_identity"
DIGEST_ATTR = "digest"
SOURCE_ATTR = "source"
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class FeatureSpec:
    """What a store holds: backbone, frame size (px), frames per clip (0 = variable),
    the per-frame shape of each named stream, and the sampling rate (``fps``; None when
    ``frames`` uniform samples were taken, or not recorded)."""

    backbone: str
    size: int
    frames: int
    streams: dict[str, tuple[int, ...]] = field(default_factory=dict)
    fps: float | None = None

    def __post_init__(self) -> None:
        streams = {str(k): tuple(int(d) for d in v) for k, v in dict(self.streams).items()}
        object.__setattr__(self, "streams", streams)
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "frames", int(self.frames))
        object.__setattr__(self, "fps", None if self.fps is None else float(self.fps))

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-able dict."""
        return {
            "backbone": self.backbone,
            "size": self.size,
            "frames": self.frames,
            "streams": {name: list(shape) for name, shape in self.streams.items()},
        } | ({"fps": self.fps} if self.fps is not None else {})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_json`."""
        return cls(
            backbone=str(data["backbone"]),
            size=int(data["size"]),
            frames=int(data["frames"]),
            streams={str(k): tuple(v) for k, v in dict(data["streams"]).items()},
            fps=data.get("fps"),
        )

    def to_attrs(self, attrs: Any) -> None:
        """Store the spec in HDF5 attributes."""
        attrs[SPEC_ATTR] = json.dumps(self.to_json())
        attrs[FORMAT_ATTR] = FORMAT_VERSION

    @classmethod
    def from_attrs(cls, attrs: Any, path: str | os.PathLike[str]) -> FeatureSpec:
        """Read the spec from HDF5 attributes; a file without one is not a FeatureStore."""
        if SPEC_ATTR not in attrs:
            raise FeatureError(
                f"{path}: not an mcsan feature store (no {SPEC_ATTR} attribute); create it "
                "with `mcsan extract` or FeatureStore.create"
            )
        try:
            raw = attrs[SPEC_ATTR]
            return cls.from_json(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
        except (KeyError, ValueError, TypeError) as exc:
            raise FeatureError(f"{path}: unreadable feature spec ({exc}); re-extract") from exc

    def mismatch(self, expected: FeatureSpec) -> str | None:
        """A description of the first field that differs from ``expected``, or None."""
        for name in ("backbone", "size", "frames", "fps"):
            have, want = getattr(self, name), getattr(expected, name)
            if have != want and not (name == "fps" and None in (have, want)):
                return f"field {name!r} is {have!r}, expected {want!r}"
        if list(self.streams) != list(expected.streams):
            return f"field 'streams' is {list(self.streams)}, expected {list(expected.streams)}"
        for name, shape in self.streams.items():
            if shape != expected.streams[name]:
                return f"field 'streams[{name!r}]' is {shape}, expected {expected.streams[name]}"
        return None

    def check(self, expected: FeatureSpec, path: str | os.PathLike[str]) -> None:
        """Raise :class:`FeatureError` naming ``path`` and the field when specs differ."""
        problem = self.mismatch(expected)
        if problem:
            raise FeatureError(
                f"{path}: feature spec mismatch: {problem}; re-extract the features with "
                "matching options or point to the right file"
            )


class FeatureStore:
    """An HDF5 file of per-video feature streams (see the module docstring)."""

    def __init__(self, handle: Any, path: Path, spec: FeatureSpec, mode: str) -> None:
        self._h5 = handle
        self.path = path
        self.spec = spec
        self.mode = mode
        self._ids: list[str] | None = None
        self._manifest: dict[str, tuple[str | None, str | None]] | None = None
        """{id: (entry digest, clip fingerprint JSON)} of the complete entries."""
        self._buffered = False  # True for a store built in memory by create()
        self._changed = False  # entries written: manifest and identity rewritten on close

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], spec: FeatureSpec, overwrite: bool = False
    ) -> FeatureStore:
        """A new, empty store at ``path`` (an existing file is an error unless overwrite)."""
        import h5py

        target = Path(path)
        if target.exists() and not overwrite and target.stat().st_size > 0:
            raise FeatureError(
                f"{target}: already exists; open it with FeatureStore.open(mode='a') or "
                "remove it first"
            )
        make_dir(target.parent)
        with output_errors(target, "create"):
            # Built in memory and written out on close: HDF5 writing straight to a disk
            # that fills up can crash the process; this way a full disk is an exception.
            handle = h5py.File(target, "w", driver="core", backing_store=True)
        spec.to_attrs(handle.attrs)
        handle.create_group(VIDEOS_GROUP)
        store = cls(handle, target, spec, "a")
        store._manifest = {}
        store._buffered = True
        store._changed = True
        return store

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        mode: str = "r",
        expect: FeatureSpec | None = None,
    ) -> FeatureStore:
        """Open an existing store for reading (``r``) or appending (``a``).

        With ``expect``, a different spec raises :class:`FeatureError` naming the file and
        the field.
        """
        import h5py

        if mode not in ("r", "a"):
            raise FeatureError(f"{path}: mode must be 'r' or 'a', not {mode!r}")
        source = Path(path)
        if not source.is_file():
            raise FeatureError(f"{source}: feature file not found; run `mcsan extract` first")
        try:
            handle = h5py.File(source, "r" if mode == "r" else "r+")
        except OSError as exc:
            raise FeatureError(
                f"{source}: not a readable HDF5 file ({exc}); re-extract or restore it"
            ) from exc
        try:
            spec = FeatureSpec.from_attrs(handle.attrs, source)
            if expect is not None:
                spec.check(expect, source)
            if VIDEOS_GROUP not in handle:
                if mode == "r":
                    raise FeatureError(f"{source}: no '{VIDEOS_GROUP}' group; re-extract")
                handle.create_group(VIDEOS_GROUP)
            if mode == "a":  # appending: a crash must leave no stale manifest or identity
                write_manifest(handle, None)
                handle.attrs.pop(IDENTITY_ATTR, None)
                handle.flush()
        except BaseException:
            handle.close()
            raise
        return cls(handle, source, spec, mode)

    def close(self) -> None:
        """Flush and close the file."""
        if self._h5 is not None and self._h5.id.valid:
            try:
                if self.mode != "r" and self._changed:
                    self._record_identity()
                if self.mode != "r":
                    self._h5.flush()
            finally:
                self._h5.close()

    def _record_identity(self) -> None:
        entries = self._entries()
        spec_json = self._h5.attrs[SPEC_ATTR]
        identity = store_identity(spec_json if isinstance(spec_json, str) else
                                  spec_json.decode(), ((v, d) for v, (d, _) in entries.items()))
        write_manifest(self._h5, entries)
        if identity is None:
            self._h5.attrs.pop(IDENTITY_ATTR, None)
        else:
            self._h5.attrs[IDENTITY_ATTR] = identity
        self._changed = False

    def _entries(self) -> dict[str, tuple[str | None, str | None]]:
        if self._manifest is None:  # read at once; scanned in files made before manifests
            self._manifest = read_manifest(self._h5)
            if self._manifest is None:
                self._manifest = scan_entries(self._h5[VIDEOS_GROUP], COMPLETE_ATTR,
                                              DIGEST_ATTR, SOURCE_ATTR)  # fmt: skip
        return self._manifest

    @property
    def identity(self) -> str | None:
        """The store's identity (spec + entry digests), None for a store written before
        fingerprints (:mod:`mcsan.data.video.identity`)."""
        if self._changed:
            self._record_identity()
        raw = self._h5.attrs.get(IDENTITY_ATTR)
        return raw.decode() if isinstance(raw, bytes) else raw

    def sources(self) -> dict[str, dict[str, Any] | None]:
        """{id: fingerprint of the clip it was extracted from (None: not recorded)}."""
        return {v: json.loads(s) if s else None for v, (_, s) in self._entries().items()}

    def source(self, video_id: str) -> dict[str, Any] | None:
        """The fingerprint of the clip one entry was extracted from (None: not recorded)."""
        self._entry(video_id)
        raw = self._entries()[video_id][1]
        return json.loads(raw) if raw else None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Ids of the complete entries, sorted."""
        if self._ids is None:
            self._ids = sorted(self._entries())
        return list(self._ids)

    def __contains__(self, video_id: object) -> bool:
        if not isinstance(video_id, str) or not video_id:
            return False
        return video_id in self._entries()

    def __len__(self) -> int:
        return len(self.ids())

    def read(
        self, video_id: str, dtype: Any = np.float32, streams: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Every stream (or ``streams``) of one video as ``dtype`` (T, *shape); float16 is
        the stored precision (no conversion), float32 is exact."""
        entry = self._entry(video_id)
        names = self.spec.streams if streams is None else streams
        return {name: entry[name][()].astype(dtype, copy=False) for name in names}

    def frame_count(self, video_id: str) -> int:
        """T of one video, read from the file's metadata (no feature is decoded)."""
        return int(self._entry(video_id)[next(iter(self.spec.streams))].shape[0])

    def _entry(self, video_id: str) -> Any:
        if video_id not in self:
            raise FeatureError(
                f"{self.path}: no features for video id {video_id!r}; extract it or drop it "
                "from the captions"
            )
        return self._h5[VIDEOS_GROUP][escape_id(video_id)]

    def read_all(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
        """``{video_id: streams}`` for ``ids`` (default: every complete entry)."""
        return {video_id: self.read(video_id) for video_id in (self.ids() if ids is None else ids)}

    # -- writing ---------------------------------------------------------------------------
    def validate(self, video_id: str, streams: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Check stream names, shapes and values against the spec; return float16 arrays."""
        where = f"{self.path}: video {video_id!r}"
        if set(streams) != set(self.spec.streams):
            raise FeatureError(
                f"{where}: streams {sorted(streams)} do not match the store's "
                f"{sorted(self.spec.streams)}"
            )
        frames: int | None = None
        out: dict[str, np.ndarray] = {}
        for name, shape in self.spec.streams.items():
            array = np.asarray(streams[name])
            if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
                raise FeatureError(
                    f"{where}: stream {name!r} has shape {array.shape}, expected (T, "
                    f"{', '.join(map(str, shape))})"
                )
            if frames is None:
                frames = array.shape[0]
            if array.shape[0] != frames or frames < 1:
                raise FeatureError(f"{where}: streams need the same T >= 1 frames")
            if self.spec.frames and frames != self.spec.frames:
                raise FeatureError(
                    f"{where}: {frames} frames, the store's spec says {self.spec.frames}"
                )
            if not np.issubdtype(array.dtype, np.number):
                raise FeatureError(f"{where}: stream {name!r} is not numeric ({array.dtype})")
            if not np.isfinite(array).all() or np.abs(array).max() > FLOAT16_MAX:
                raise FeatureError(
                    f"{where}: stream {name!r} has NaN, inf or values beyond float16; "
                    "the features are broken, not stored"
                )
            out[name] = array.astype(np.float16)
        return out

    def write(
        self, video_id: str, streams: Mapping[str, np.ndarray], overwrite: bool = False,
        source: Mapping[str, Any] | None = None,
    ) -> None:
        """Store one video's streams (float16); the entry appears complete or not at all.
        ``source``: the fingerprint of the clip they were extracted from."""
        if self.mode == "r":
            raise FeatureError(f"{self.path}: opened read-only; open with mode='a' to write")
        arrays = self.validate(video_id, streams)
        group = self._h5[VIDEOS_GROUP]
        name = escape_id(video_id)
        if name in group:
            if group[name].attrs.get(COMPLETE_ATTR, False) and not overwrite:
                raise FeatureError(
                    f"{self.path}: video {video_id!r} is already stored; pass overwrite=True "
                    "to replace it"
                )
            del group[name]
        entry = group.create_group(name)
        for stream, array in arrays.items():
            entry.create_dataset(stream, data=array)
        meta = (entry_digest(arrays), None if source is None else json.dumps(dict(source)))
        entry.attrs[DIGEST_ATTR] = meta[0]
        if meta[1] is not None:
            entry.attrs[SOURCE_ATTR] = meta[1]
        entry.attrs[COMPLETE_ATTR] = True
        if not self._buffered:
            self._h5.flush()
        self._entries()[video_id] = meta
        self._changed, self._ids = True, None

    def copy_entry(self, source: FeatureStore, video_id: str) -> None:
        """Copy one complete entry from another store with an equal spec, without decoding."""
        group = self._h5[VIDEOS_GROUP]
        name = escape_id(video_id)
        if name in group:
            del group[name]
        source._h5.copy(source._h5[VIDEOS_GROUP][name], group, name=name)
        self._entries()[video_id] = source._entries()[video_id]
        self._changed, self._ids = True, None

    def flush(self) -> None:
        """Write buffered data to disk."""
        self._h5.flush()

