"""Importing community video features into a FeatureStore, checking each video.

:func:`import_features` copies the features of the wanted videos from a
:class:`~mcsan.data.convert.sources.FeatureSource` into a FeatureStore, checking each one
(non-finite values, float16 overflow, wrong per-frame shape, empty) and returning an
:class:`ImportResult` that names every video it did not import.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError
from mcsan.core.progress import track
from mcsan.data.convert.sources import FeatureSource

FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass
class ImportResult:
    """What :func:`import_features` did; every video it did not import is named."""

    imported: list[str] = field(default_factory=list)
    spec: Any = None
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    float16_overflow: list[str] = field(default_factory=list)
    wrong_dimensions: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    duplicate_feature_ids: list[str] = field(default_factory=list)
    expected_shape: tuple[int, ...] = ()
    wrong_shapes: dict[str, list[int]] = field(default_factory=dict)

    def rejected(self) -> dict[str, list[str]]:
        """Videos that have captions but were not imported, by reason."""
        return {
            "videos_without_features": self.missing,
            "nonfinite_features": self.nonfinite,
            "float16_overflow_features": self.float16_overflow,
            "wrong_dimensions": self.wrong_dimensions,
            "empty_features": self.empty,
        }


def _as_frames(array: np.ndarray) -> np.ndarray:
    """A (D,) vector becomes (1, D); anything else keeps its shape."""
    return array[None, ...] if array.ndim == 1 else array


def import_features(
    source: FeatureSource,
    store_path: str | os.PathLike[str],
    video_ids: Iterable[str],
    backbone: str,
    stream: str = "frame",
    frame_shape: tuple[int, ...] | None = None,
    size: int = 0,
) -> ImportResult:
    """Copy the features of ``video_ids`` from ``source`` into a new FeatureStore.

    The per-frame shape is ``frame_shape`` or else the most common one among the wanted
    videos; videos with another shape, no frames, non-finite values or values beyond the
    float16 range (the store's disk type) are not imported and are named in the result.
    ``frames`` of the spec is T when every imported video has T frames, else 0.
    """
    from mcsan.data.video.store import FeatureSpec, FeatureStore

    result = ImportResult()
    wanted = list(dict.fromkeys(video_ids))
    available = set(source.ids())
    result.missing = [v for v in wanted if v not in available]
    wanted_set = set(wanted)
    result.orphans = [v for v in source.ids() if v not in wanted_set]
    result.duplicate_feature_ids = list(getattr(source, "duplicates", []))
    present = [v for v in wanted if v in available]

    shapes = {v: _frame_shape(source.shape(v)) for v in present}
    expected = frame_shape or _most_common([s[1:] for s in shapes.values() if s[0] > 0])
    if expected is None:
        raise FeatureError(
            f"{source.description}: none of the {len(wanted)} annotated videos has features; "
            "check that the feature ids match the caption video ids"
        )
    result.expected_shape = tuple(expected)
    candidates = []
    for video_id in present:
        shape = shapes[video_id]
        if shape[0] == 0:
            result.empty.append(video_id)
        elif shape[1:] != result.expected_shape:
            result.wrong_dimensions.append(video_id)
            result.wrong_shapes[video_id] = list(shape[1:])
        else:
            candidates.append(video_id)
    lengths = {shapes[v][0] for v in candidates}
    frames = lengths.pop() if len(lengths) == 1 else 0
    spec = FeatureSpec(
        backbone=backbone, size=size, frames=frames, streams={stream: result.expected_shape}
    )
    result.spec = spec
    with FeatureStore.create(store_path, spec) as store:
        for video_id in track(candidates, total=len(candidates), desc="import features"):
            array = _as_frames(source.read(video_id))
            if not np.isfinite(array).all():
                result.nonfinite.append(video_id)
            elif array.size and float(np.abs(array).max()) > FLOAT16_MAX:
                result.float16_overflow.append(video_id)
            else:
                store.write(video_id, {stream: array})
                result.imported.append(video_id)
    return result


def _frame_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Stored shape as (T, *per-frame shape); a (D,) vector is one frame."""
    return (1, *shape) if len(shape) == 1 else tuple(shape)


def _most_common(shapes: list[tuple[int, ...]]) -> tuple[int, ...] | None:
    """The most frequent per-frame shape (ties: the first seen)."""
    if not shapes:
        return None
    return Counter(shapes).most_common(1)[0][0]
