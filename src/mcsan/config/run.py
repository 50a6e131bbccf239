"""The run configuration: the dataclasses of a training run, read from YAML and saved beside it.

A :class:`RunConfig` composes the data's :class:`~mcsan.data.data_config.DataConfig`, the model's
``ModelConfig``, the losses' ``LossConfig`` and :class:`TrainConfig`. ``load_config(path,
overrides)`` reads a YAML file, applies ``--set key.path=value`` overrides and checks every
key and type with the generic machinery of :mod:`mcsan.core.typed_yaml`: an unknown key is a
:class:`~mcsan.core.errors.ConfigError` naming its full path and the file.

``path`` is a YAML file or the name of a config shipped in :mod:`mcsan.config.presets`
(``world``, ``msrvtt``, ``vatex``). Relative paths (``data.root``, ``data.parse_cache``, a
word-vector file) are resolved against the current working directory when the config is
loaded. The config saved beside a run (``config.yaml``) holds the resolved absolute paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mcsan.core.errors import ConfigError
from mcsan.core.io import atomic_write_text
from mcsan.core.typed_yaml import apply_overrides, from_dict, read_yaml_mapping, to_dict
from mcsan.core.validate import check_device, check_section
from mcsan.data.data_config import DataConfig
from mcsan.model import ModelConfig
from mcsan.model.losses import LossConfig

__all__ = [
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "RerankConfig",
    "RunConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
    "save_config",
    "validate",
]


LEGACY_RERANK_KEYS: dict[str, str] = {"rerank_top_k": "top_k", "rerank_weight": "weight"}
"""``model.<key>`` where the shortlist settings lived before the ``rerank`` section (still
read, as ``rerank.<value>``)."""


@dataclass
class TrainConfig:
    """Optimisation, logging and hardware settings."""

    epochs: int = 50
    """Training epochs; the best epoch on validation is kept."""
    batch_size: int = 128
    """Global batch size (split across ranks under DDP)."""
    eval_batch_size: int = 256
    """Captions or clips per batch when encoding for validation and evaluation."""
    lr: float = 1e-4
    """Learning rate of the model (the matcher's: rerank_lr)."""
    rerank_lr: float | None = None
    """Learning rate of the binding matcher (model.rerank); None = ``lr``."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Adam, or AdamW with decoupled weight decay."""
    weight_decay: float = 0.0
    """L2 penalty (Adam) or decoupled weight decay (AdamW)."""
    scheduler: Literal["none", "step", "cosine"] = "none"
    """Learning-rate schedule: constant, step decay (step_size, gamma) or cosine to 0 over the epochs."""
    step_size: int = 10
    """Epochs between lr decays for the ``step`` scheduler."""
    gamma: float = 0.5
    """Decay factor of the ``step`` scheduler."""
    grad_clip: float | None = 2.0
    """Max global gradient norm; None = no clipping."""
    num_workers: int | None = None
    """DataLoader worker processes (0 = build batches in the training process); None =
    auto: 0 on CPU (batch building costs ~1% of a step there), 4 on CUDA."""
    pin_memory: bool | None = None
    """Page-locked batches for asynchronous host-to-GPU copies; None = on with CUDA."""
    prefetch_factor: int = 2
    """Batches each worker prepares ahead (with num_workers > 0)."""
    threads: int = 0
    """Torch intra-op threads for training; 0 = auto (1 on CPU: measured faster on a busy
    2-core machine and equal when idle, see benchmarks/bench_loader.py; torch's default
    on CUDA)."""
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA only: auto = bf16 where supported, else fp16."""
    eval_every: int = 1
    """Validate every this many epochs (and always after the last one)."""
    log_every: int = 50
    """Steps between TensorBoard loss points."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""


@dataclass
class RerankConfig:
    """The two stages: with a binding matcher (``model.rerank``) the first stage scores every
    clip by ``fused + late_weight * late`` and each query's top ``top_k`` by that score (or
    its top ``fraction`` of the collection) is re-ordered by ``fused + weight * match``.
    Read once into a frozen :class:`mcsan.evaluate.shortlist.ShortlistPolicy`; training
    never reads it."""

    top_k: int = 20
    """Shortlist size as a count of clips (of captions, video-to-text)."""
    fraction: float | None = None
    """Shortlist size as a share of the collection, in (0, 1]; when set it replaces
    ``top_k`` (at least one item)."""
    weight: float = 1.0
    """``reranked = fused + weight * match`` (on the first stage's shortlist)."""
    late_weight: float = 0.0
    """The first stage: ``first = fused + late_weight * late``, ``late`` the mean of the
    matcher's ``late_terms`` over every clip (late interaction on the cells the index
    stores); 0 = the fused score alone."""
    late_terms: tuple[str, ...] = ("entity", "action")
    """The matcher's terms the first stage adds (any of entity, action, relation)."""


RERANK_KEYS: tuple[str, ...] = (
    "rerank", "rerank.top_k", "rerank.fraction", "rerank.weight", "rerank.late_weight",
    "rerank.late_terms",
    *(f"model.{key}" for key in LEGACY_RERANK_KEYS),
)  # fmt: skip
"""Keys that change evaluation only (``rerank``: the whole section, absent from runs saved
before it): a resumed run may change them."""


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    seed: int = 0
    """Seed of weights, data order and sampling (the same seed gives the same weights)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return to_dict(self)


def upgrade_rerank_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the shortlist settings of configs and checkpoints written before the
    ``rerank`` section (``model.rerank_top_k`` / ``model.rerank_weight``) moved into it;
    a value the ``rerank`` section already holds wins."""
    model, section = data.get("model"), data.get("rerank", {})
    if not isinstance(model, dict) or not isinstance(section, dict):
        return data  # from_dict names the bad section
    if not set(model) & set(LEGACY_RERANK_KEYS):
        return data
    model, section = dict(model), dict(section)
    for old, new in LEGACY_RERANK_KEYS.items():
        if old in model:
            section.setdefault(new, model.pop(old))
    return {**data, "model": model, "rerank": section}


def _upgrade_override(item: str) -> str:
    """``model.rerank_top_k=K`` -> ``rerank.top_k=K`` (and the weight likewise)."""
    key, sep, value = item.partition("=")
    old = key.strip().removeprefix("model.")
    if sep and key.strip().startswith("model.") and old in LEGACY_RERANK_KEYS:
        return f"rerank.{LEGACY_RERANK_KEYS[old]}={value}"
    return item


def config_from_dict(
    data: dict[str, Any],
    overrides: list[str] | None = None,
    source: str = "<config>",
    base: str | os.PathLike[str] | None = None,
) -> RunConfig:
    """A checked RunConfig from a nested dict plus overrides; paths resolved from ``base``."""
    upgraded = [_upgrade_override(item) for item in overrides or []]
    merged = apply_overrides(upgrade_rerank_keys(data), upgraded)
    cfg = from_dict(RunConfig, merged, source)
    validate(cfg, source)
    cfg.data.resolve_paths(Path(base) if base is not None else Path.cwd())
    return cfg


def load_config(
    path: str | os.PathLike[str] | None, overrides: list[str] | None = None
) -> RunConfig:
    """Read a run config (a YAML path, a built-in name, or None = all defaults), apply
    overrides, check and resolve it."""
    if path is None:
        return config_from_dict({}, overrides, source="<defaults>")
    from mcsan.config.presets import config_file

    with config_file(path) as source:
        data = read_yaml_mapping(source)
        return config_from_dict(data, overrides, source=str(source))


def save_config(cfg: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def validate(cfg: RunConfig, source: str = "<config>") -> None:
    """Value checks that types alone cannot express."""
    check_section("train", cfg.train, source)
    check_section("rerank", cfg.rerank, source)
    cfg.data.validate(source)
    try:
        check_device(cfg.train.device, "key 'train.device'", present=False)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
