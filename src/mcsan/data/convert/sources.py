"""Readers of video features as the community distributes them.

Four layouts are read (``FEATURE_FORMATS``):

* ``npy-dir``  a folder of per-video ``<video_id>.npy`` files, each (T, D) or (D,);
* ``hdf5``     one HDF5 file ``{video_id: (T, D)}`` (HGR's frame-level features);
* ``npy-mean`` one mean-pooled (N, D) ``.npy`` array plus a list of its N names
  (HGR's ``{trn,val,tst}_names.npy``, or a ``.txt``/``.json`` list);
* ``bigfile``  Dual Encoding's ``feature.bin`` + ``shape.txt`` + ``id.txt``, one float32
  row per frame; frame ids ``<video_id>_<k>`` are grouped per video in numeric order of k.

:func:`open_features` opens any of them as one :class:`FeatureSource`; importing into a
FeatureStore is :mod:`mcsan.data.convert.features`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from mcsan.core.errors import DataError
from mcsan.core.io import read_json, read_text_lines
from mcsan.core.safe_load import load_npy

FEATURE_FORMATS: tuple[str, ...] = ("npy-dir", "hdf5", "bigfile", "npy-mean")
_BIGFILE_PARTS = ("feature.bin", "shape.txt", "id.txt")


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Read a list of ids from ``.npy`` (HGR ``*_names.npy``), ``.json`` or text.

    Text files hold ids separated by whitespace (one a line, or space-separated).
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: id list not found; check the path")
    suffix = source.suffix.lower()
    if suffix == ".npy":  # never unpickled: an object array is refused with the fix
        array = load_npy(source, what="id list")
        values = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel()]
    elif suffix == ".json":
        data = read_json(source, "id list", "give a JSON list of video ids")
        if not isinstance(data, list):
            raise DataError(f"{source}: expected a JSON list of video ids")
        values = [str(v) for v in data]
    else:
        values = [v for line in read_text_lines(source, "id list") for v in line.split()]
        if values and values[0][:1] in ("[", "{"):
            raise DataError(
                f"{source}: holds JSON, not one id a line; name it .json (a JSON list of ids)"
            )
    return [v.strip() for v in values if v.strip()]


class FeatureSource:
    """Features of many videos, read one video at a time (as stored, float32)."""

    description = "features"

    def ids(self) -> list[str]:
        """Video ids this source holds, in a stable order."""
        raise NotImplementedError

    def shape(self, video_id: str) -> tuple[int, ...]:
        """Shape of one video's features without reading them: (T, D) or (D,)."""
        raise NotImplementedError

    def read(self, video_id: str) -> np.ndarray:
        """One video's features as float32."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files."""

    def __enter__(self) -> FeatureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NpyDirSource(FeatureSource):
    """A folder of ``<video_id>.npy`` files."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: not a folder of per-video .npy files")
        self._files = {p.stem: p for p in sorted(self.folder.glob("*.npy"))}
        if not self._files:
            raise DataError(f"{self.folder}: no .npy files found; is this the feature folder?")
        self.description = f"npy-dir {self.folder}"

    def ids(self) -> list[str]:
        """Stems of the .npy files, sorted."""
        return list(self._files)

    def shape(self, video_id: str) -> tuple[int, ...]:
        """Shape from the .npy header (memory-mapped, nothing read)."""
        return tuple(load_npy(self._files[video_id], mmap_mode="r", what="feature array").shape)

    def read(self, video_id: str) -> np.ndarray:
        """The whole array as float32."""
        return np.asarray(load_npy(self._files[video_id], what="feature array"), dtype=np.float32)


class Hdf5Source(FeatureSource):
    """An HDF5 file whose top-level datasets are ``{video_id: (T, D)}``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: HDF5 feature file not found")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        self._ids = sorted(k for k, v in self._file.items() if isinstance(v, h5py.Dataset))
        self.skipped = sorted(k for k in self._file if k not in set(self._ids))
        self.description = f"hdf5 {self.path}"

    def ids(self) -> list[str]:
        """Names of the top-level datasets, sorted."""
        return list(self._ids)

    def shape(self, video_id: str) -> tuple[int, ...]:
        """Dataset shape from the HDF5 metadata."""
        return tuple(self._file[video_id].shape)

    def read(self, video_id: str) -> np.ndarray:
        """The dataset as float32."""
        return np.asarray(self._file[video_id][()], dtype=np.float32)

    def close(self) -> None:
        """Close the HDF5 file."""
        self._file.close()


class MeanPooledSource(FeatureSource):
    """One (N, D) ``.npy`` array of pooled features and the list of its N names."""

    def __init__(self, array_path: str | os.PathLike[str], names_path: str | os.PathLike[str]):
        self.path = Path(array_path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: mean-pooled feature array not found")
        self._array = load_npy(self.path, mmap_mode="r", what="feature array")
        names = read_id_list(names_path)
        if self._array.ndim != 2 or self._array.shape[0] != len(names):
            raise DataError(
                f"{self.path}: shape {tuple(self._array.shape)} does not match the "
                f"{len(names)} names in {names_path}; pass the names file of this array"
            )
        self._rows: dict[str, int] = {}
        self.duplicates: list[str] = []
        for row, name in enumerate(names):
            if name in self._rows:
                self.duplicates.append(name)
            else:
                self._rows[name] = row
        self.description = f"npy-mean {self.path}"

    def ids(self) -> list[str]:
        """Names in array order (first occurrence of a repeated name)."""
        return list(self._rows)

    def shape(self, video_id: str) -> tuple[int, ...]:
        """(D,): one pooled vector."""
        return (int(self._array.shape[1]),)

    def read(self, video_id: str) -> np.ndarray:
        """The pooled vector as float32."""
        return np.asarray(self._array[self._rows[video_id]], dtype=np.float32)


def split_frame_id(frame_id: str, video_ids: Collection[str] = ()) -> tuple[str, int | None]:
    """Split a BigFile row id into (video_id, frame index); index None for a video-level row.

    A row id that is itself a known video id is video-level; otherwise a trailing
    ``_<digits>`` is the frame index (``video12_10`` -> (``video12``, 10)).
    """
    if frame_id in video_ids:
        return frame_id, None
    stem, sep, suffix = frame_id.rpartition("_")
    if sep and stem and suffix.isdigit():
        return stem, int(suffix)
    return frame_id, None


class BigFileSource(FeatureSource):
    """Dual Encoding BigFile: ``feature.bin`` (float32 rows), ``shape.txt``, ``id.txt``."""

    def __init__(self, folder: str | os.PathLike[str], video_ids: Collection[str] = ()) -> None:
        self.folder = Path(folder)
        missing = [n for n in _BIGFILE_PARTS if not (self.folder / n).is_file()]
        if missing:
            raise DataError(
                f"{self.folder}: not a BigFile folder, missing {', '.join(missing)}; point "
                "--features at the folder holding feature.bin, shape.txt and id.txt"
            )
        try:
            shape_text = " ".join(read_text_lines(self.folder / "shape.txt"))
            rows, dim = (int(v) for v in shape_text.split()[:2])
        except ValueError as exc:
            raise DataError(f"{self.folder / 'shape.txt'}: expected 'N D' ({exc})") from exc
        row_ids = [v for line in read_text_lines(self.folder / "id.txt") for v in line.split()]
        if len(row_ids) != rows:
            raise DataError(
                f"{self.folder / 'id.txt'}: {len(row_ids)} ids but shape.txt says {rows} rows"
            )
        size = (self.folder / "feature.bin").stat().st_size
        if size != rows * dim * 4:
            raise DataError(
                f"{self.folder / 'feature.bin'}: {size} bytes, expected {rows}x{dim} float32 "
                f"= {rows * dim * 4}; the file is truncated or shape.txt is wrong"
            )
        self._matrix = np.memmap(self.folder / "feature.bin", np.float32, "r", shape=(rows, dim))
        frames: dict[str, list[tuple[int, int]]] = {}
        known = set(video_ids)
        for row, row_id in enumerate(row_ids):
            video, index = split_frame_id(row_id, known)
            frames.setdefault(video, []).append((-1 if index is None else index, row))
        self._rows: dict[str, list[int]] = {}
        for video, entries in frames.items():
            entries.sort()
            repeated = [i for i, n in Counter(i for i, _ in entries).items() if n > 1]
            if repeated:
                raise DataError(
                    f"{self.folder / 'id.txt'}: video {video} has frame index {repeated[0]} "
                    "more than once; the BigFile is corrupt or merges two collections"
                )
            self._rows[video] = [row for _, row in entries]
        self.description = f"bigfile {self.folder}"

    def ids(self) -> list[str]:
        """Video ids in order of first appearance."""
        return list(self._rows)

    def shape(self, video_id: str) -> tuple[int, ...]:
        """(number of frames, D)."""
        return (len(self._rows[video_id]), int(self._matrix.shape[1]))

    def read(self, video_id: str) -> np.ndarray:
        """The video's frame rows, in frame order, as float32 (T, D)."""
        return np.array(self._matrix[self._rows[video_id]], dtype=np.float32)


class CombinedSource(FeatureSource):
    """Several sources read as one; a video in two sources is taken from the first."""

    def __init__(self, sources: Sequence[FeatureSource]) -> None:
        self.sources = list(sources)
        self._owner: dict[str, FeatureSource] = {}
        self.duplicates: list[str] = []
        for source in self.sources:
            self.duplicates.extend(getattr(source, "duplicates", []))
            for video_id in source.ids():
                if video_id in self._owner:
                    self.duplicates.append(video_id)
                else:
                    self._owner[video_id] = source
        self.description = "; ".join(s.description for s in self.sources)

    def ids(self) -> list[str]:
        """Union of the sources' ids."""
        return list(self._owner)

    def shape(self, video_id: str) -> tuple[int, ...]:
        """Shape from the owning source."""
        return self._owner[video_id].shape(video_id)

    def read(self, video_id: str) -> np.ndarray:
        """Features from the owning source."""
        return self._owner[video_id].read(video_id)

    def close(self) -> None:
        """Close every source."""
        for source in self.sources:
            source.close()


def detect_feature_format(path: str | os.PathLike[str]) -> str:
    """Guess the layout of a feature path: BigFile folder, .npy folder, HDF5 or .npy array."""
    source = Path(path)
    if source.is_dir():
        if all((source / n).is_file() for n in _BIGFILE_PARTS):
            return "bigfile"
        return "npy-dir"
    if source.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        return "hdf5"
    if source.suffix.lower() == ".npy":
        return "npy-mean"
    raise DataError(
        f"{source}: cannot tell the feature layout; pass --feature-format "
        f"({' | '.join(FEATURE_FORMATS)})"
    )


def open_features(
    paths: Sequence[str | os.PathLike[str]],
    feature_format: str = "auto",
    names: Sequence[str | os.PathLike[str]] = (),
    video_ids: Collection[str] = (),
) -> FeatureSource:
    """Open one or more feature paths as one :class:`FeatureSource`.

    ``names`` pairs with ``paths`` for ``npy-mean``; ``video_ids`` (the annotated videos)
    lets a BigFile tell video-level rows from frame rows.
    """
    if not paths:
        raise DataError("no feature paths given; pass --features PATH")
    sources: list[FeatureSource] = []
    for index, path in enumerate(paths):
        layout = detect_feature_format(path) if feature_format == "auto" else feature_format
        if layout == "npy-dir":
            sources.append(NpyDirSource(path))
        elif layout == "hdf5":
            sources.append(Hdf5Source(path))
        elif layout == "bigfile":
            sources.append(BigFileSource(path, video_ids))
        elif layout == "npy-mean":
            if len(names) != len(paths):
                raise DataError(
                    f"{path}: a mean-pooled .npy needs its names list; pass --feature-names "
                    f"with one names file per --features file ({len(paths)} given, "
                    f"{len(names)} names files)"
                )
            sources.append(MeanPooledSource(path, names[index]))
        else:
            raise DataError(f"unknown feature format {layout!r}; use one of {FEATURE_FORMATS}")
    return sources[0] if len(sources) == 1 else CombinedSource(sources)
