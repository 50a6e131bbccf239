"""DataConfig: where a native dataset is and how its captions become model inputs.

The ``data`` section of a run config (:class:`mcsan.config.run.RunConfig` composes it). It is a
plain dataclass of simple types, so the data side needs nothing from the model or training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mcsan import ATTRIBUTE_LEVELS
from mcsan.core.errors import ConfigError
from mcsan.core.validate import check_section
from mcsan.data.captions.attributes import DEFAULT_SIZES

WORD_VECTOR_SOURCES: tuple[str, ...] = ("glove-6b-50d", "none")
"""Word-vector sources that are names, not paths."""


@dataclass
class DataConfig:
    """Where the data is and how captions become inputs."""

    root: str = "data"
    """Native dataset folder (dataset.yaml, captions.jsonl, features/)."""
    feature_set: str | None = None
    """Feature set name under ``features/``; None = the only one the dataset card lists."""
    streams: list[str] | None = None
    """Feature streams to feed the model; None = every stream of the set."""
    max_words: int = 32
    """Captions are truncated to this many tokens (spans beyond are dropped/clipped)."""
    max_frames: int | None = None
    """Frames beyond this many are dropped (uniformly subsampled); None = keep all."""
    attribute_sizes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    """Attribute vocabulary size per level (the most frequent in training captions)."""
    min_word_count: int = 1
    """Training words seen fewer times map to UNK."""
    word_vectors: str = "glove-6b-50d"
    """``glove-6b-50d`` (installed package), ``none``, or a path to a GloVe .txt file."""
    parse_cache: str | None = None
    """Parsed-caption cache; None = ``<root>/cache/parsed_captions.jsonl``."""
    drop_missing_features: bool = False
    """Drop (and count) captions whose video has no features instead of failing."""
    feature_memory: Literal["auto", "resident", "on_demand"] = "auto"
    """Video features in memory as float16 (``resident``) or read from the HDF5 store per
    batch (``on_demand``); ``auto``: resident when they fit in ``resident_limit_gb``."""
    resident_limit_gb: float = 4.0
    """``auto`` keeps features resident up to this float16 size, else reads on demand."""
    feature_cache_gb: float = 0.5
    """On demand: LRU cache of recently read clips, per process (each worker has one). In a
    random epoch order over a large collection it hits ~cache/collection of the time; the
    OS page cache (outside the process) does the rest."""
    hard_negatives: int = 0
    """Training only: at most this many negative clips per batch from
    ``<root>/hard_negatives.jsonl`` (clips that differ from a caption's own clip in what the
    caption says, e.g. the world's training twins: ``mcsan synth --train-twins``), one per
    caption that has any; each must score below the caption's own clip
    (``loss.lambda_hard_negatives``). 0 = none (the file is not read)."""
    edit_negatives: int = 0
    """Training only: at most this many edited clips per batch, each a caption's own clip
    changed so that the caption becomes false (played backwards for a caption with a
    direction in time, mirrored for one that says left or right:
    :mod:`mcsan.data.loading.hard_negatives`); scored like hard negatives. 0 = none."""

    def validate(self, source: str = "<config>") -> None:
        """Value checks that types alone cannot express; ConfigError naming the key."""
        check_section("data", self, source)
        for level, size in self.attribute_sizes.items():
            if level not in ATTRIBUTE_LEVELS:
                raise ConfigError(
                    f"{source}: unknown key 'data.attribute_sizes.{level}'; "
                    f"levels with attributes are {', '.join(ATTRIBUTE_LEVELS)}"
                )
            if not 1 <= size <= 1_000_000:
                raise ConfigError(
                    f"{source}: key 'data.attribute_sizes.{level}' must be in [1, 1000000], "
                    f"got {size}"
                )

    def resolve_paths(self, base: Path) -> None:
        """Make the paths absolute (relative ones are taken from ``base``)."""

        def absolute(path: str) -> str:
            expanded = Path(os.path.expanduser(path))
            return str(expanded if expanded.is_absolute() else (base / expanded).resolve())

        self.root = absolute(self.root)
        if self.parse_cache is not None:
            self.parse_cache = absolute(self.parse_cache)
        if self.word_vectors not in WORD_VECTOR_SOURCES:
            self.word_vectors = absolute(self.word_vectors)
