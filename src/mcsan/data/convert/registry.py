"""The dataset-format registry and the types formats and the pipeline share.

A format (one small class per module in :mod:`mcsan.data.convert`) only knows how to read
its own annotation files into ``(video_id, caption, split)`` records
(:meth:`DatasetFormat.load_annotations`); :mod:`mcsan.data.convert.convert` does the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mcsan.core.errors import DataError
from mcsan.data.native import CaptionRecord

SPLIT_ALIASES = {
    "train": "train", "trn": "train", "training": "train",
    "val": "val", "validate": "val", "validation": "val", "valid": "val", "dev": "val",
    "test": "test", "tst": "test", "testing": "test",
}  # fmt: skip


def normalise_split(name: str, source: str = "") -> str:
    """Map a split name as datasets spell it (``validate``, ``trn``, ...) to train/val/test."""
    key = name.strip().lower()
    if key not in SPLIT_ALIASES:
        raise DataError(
            f"{source or 'split'}: unknown split {name!r}; use one of train, val, test"
        )
    return SPLIT_ALIASES[key]


@dataclass
class ConvertOptions:
    """Everything a conversion needs besides the format and the annotation files."""

    out: Path
    features: list[Path] = field(default_factory=list)
    feature_format: str = "auto"
    feature_names: list[Path] = field(default_factory=list)
    backbone: str = "unknown"
    feature_set: str | None = None
    stream: str = "frame"
    frame_shape: tuple[int, ...] | None = None
    split_files: list[str] = field(default_factory=list)
    protocol: str | None = None
    val_size: int = 500
    seed: int = 0
    dedup: bool = False
    name: str | None = None
    overwrite: bool = False

    @property
    def set_name(self) -> str:
        """Name of the feature set written (``--feature-set`` or the backbone)."""
        raw = self.feature_set or self.backbone
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-") or "features"


@dataclass
class Annotations:
    """What a format read: captions with their split, plus what it had to leave out."""

    records: list[CaptionRecord]
    expected_sizes: dict[str, int] = field(default_factory=dict)
    issues: dict[str, list[str]] = field(default_factory=dict)
    dropped_captions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    feature_names: list[Path] = field(default_factory=list)
    """Names lists for mean-pooled features that the format found itself (HGR)."""
    carve_val: int = 0
    """Training videos the pipeline moves to ``val`` after every drop (1k-A has no val)."""


@dataclass
class ConversionSummary:
    """Counts of one conversion. ``problems`` maps a reason to the ids it concerns
    (one entry per occurrence); ``dropped_captions`` counts the captions each reason
    removed, so ``captions_read - sum(dropped_captions) == captions_written``."""

    format: str
    out: str
    captions_read: int
    captions_written: int
    videos_written: int
    splits: dict[str, dict[str, int]]
    feature_set: str | None = None
    feature_spec: dict[str, Any] | None = None
    features_imported: int = 0
    dropped_captions: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    split_size_mismatch: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def problem_counts(self) -> dict[str, int]:
        """Number of ids per reported problem (only the non-empty ones)."""
        return {k: len(v) for k, v in self.problems.items() if v}

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (the report file's content)."""
        return asdict(self)


class DatasetFormat:
    """Base of every dataset format: subclasses implement :meth:`load_annotations`."""

    name = ""
    description = ""
    inputs = ""
    protocols: tuple[str, ...] = ()
    archive_members: tuple[str, ...] = (".json", ".csv", ".txt")
    """Suffixes of the members of a zip given as annotations that this format reads."""

    def load_annotations(self, paths: Sequence[Path], options: ConvertOptions) -> Annotations:
        """Read the format's annotation files into caption records with their split."""
        raise NotImplementedError


F = TypeVar("F", bound=type[DatasetFormat])
_REGISTRY: dict[str, type[DatasetFormat]] = {}


def register_format(cls: F) -> F:
    """Class decorator: add a :class:`DatasetFormat` subclass to the registry by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no format name")
    _REGISTRY[cls.name] = cls
    return cls
