"""Typed run configuration: YAML in, dataclasses out, the resolved config saved beside a run.

A :class:`RunConfig` composes :class:`DataConfig`, the model's ``ModelConfig``, the
losses' ``LossConfig`` and :class:`TrainConfig`. ``load_config(path, overrides)`` reads a
YAML file, applies ``--set key.path=value`` overrides (values parsed as YAML scalars or
flow lists/maps, e.g. ``model.levels=[global,entity]``) and checks every key and type:
an unknown key is a :class:`~mcsan.errors.ConfigError` naming its full path and the file.

Relative paths (``data.root``, ``data.parse_cache``, a word-vector file) are resolved
against the current working directory when the config is loaded, so the configs in
``configs/`` are meant to be used from the repository root. The config saved beside a
run (``config.yaml``) holds the resolved absolute paths.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mcsan.errors import ConfigError
from mcsan.io import atomic_write_text, read_text_lines
from mcsan.losses import LossConfig
from mcsan.model import ModelConfig
from mcsan.validate import check_device, check_ranges

WORD_VECTOR_SOURCES: tuple[str, ...] = ("glove-6b-50d", "none")
YAML_BOOL_WORDS: dict[bool, tuple[str, ...]] = {
    False: ("off", "false", "no", "n"),
    True: ("on", "true", "yes", "y"),
}
"""Words YAML 1.1 turns into booleans; a choice field given one gets the word back."""


@dataclass
class DataConfig:
    """Where the data is and how captions become inputs."""

    root: str = "runs/demo/world"
    """Native dataset folder (dataset.yaml, captions.jsonl, features/)."""
    feature_set: str | None = None
    """Feature set name under ``features/``; None = the only one the dataset card lists."""
    streams: list[str] | None = None
    """Feature streams to feed the model; None = every stream of the set."""
    max_words: int = 32
    """Captions are truncated to this many tokens (spans beyond are dropped/clipped)."""
    max_frames: int | None = None
    """Frames beyond this many are dropped (uniformly subsampled); None = keep all."""
    attribute_sizes: dict[str, int] = field(
        default_factory=lambda: {"entity": 512, "action": 256, "relation": 512}
    )
    """Attribute vocabulary size per level (the most frequent in training captions)."""
    min_word_count: int = 1
    """Training words seen fewer times map to UNK."""
    word_vectors: str = "glove-6b-50d"
    """``glove-6b-50d`` (installed package), ``none``, or a path to a GloVe .txt file."""
    parse_cache: str | None = None
    """Parsed-caption cache; None = ``<root>/cache/parsed_captions.jsonl``."""
    drop_missing_features: bool = False
    """Drop (and count) captions whose video has no features instead of failing."""


@dataclass
class TrainConfig:
    """Optimisation, logging and hardware settings."""

    epochs: int = 50
    batch_size: int = 128
    """Global batch size (split across ranks under DDP)."""
    eval_batch_size: int = 256
    lr: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 0.0
    scheduler: Literal["none", "step", "cosine"] = "none"
    step_size: int = 10
    """Epochs between lr decays for the ``step`` scheduler."""
    gamma: float = 0.5
    """Decay factor of the ``step`` scheduler."""
    grad_clip: float | None = 2.0
    """Max global gradient norm; None = no clipping."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the main process)."""
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA only: auto = bf16 where supported, else fp16."""
    eval_every: int = 1
    """Validate every this many epochs (and always after the last one)."""
    log_every: int = 50
    """Steps between TensorBoard loss points."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``."""


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready)."""
        return to_dict(self)


# ---------------------------------------------------------------- generic conversion


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain dicts, lists and scalars."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """``value`` checked against / converted to type ``tp``; errors name ``key``."""

    def fail(expected: str) -> ConfigError:
        return ConfigError(
            f"{source}: key '{key}' must be {expected}, got {value!r}; fix the value"
        )

    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ConfigError:
                continue
        raise fail(" or ".join(_type_name(a) for a in args))
    if origin is Literal:
        if isinstance(value, bool):  # YAML 1.1 reads off/on/no/yes as booleans
            spellings = YAML_BOOL_WORDS[value]
            value = next((a for a in args if isinstance(a, str) and a in spellings), value)
        if value not in args:
            raise fail("one of " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise fail(f"a mapping ({tp.__name__})")
        return from_dict(tp, value, source, prefix=key)
    if origin in (list, tuple) or tp in (list, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise fail("a list")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise fail(f"a list of {len(args)} items")
            pairs = enumerate(zip(value, args, strict=True))
            items = [_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in pairs]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise fail("a mapping")
        key_tp, val_tp = args if args else (Any, Any)
        return {
            _convert(k, key_tp, f"{key}.{k}", source): _convert(v, val_tp, f"{key}.{k}", source)
            for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise fail("a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise fail(f"a {tp.__name__}")
    return value


def from_dict(cls: type, data: dict[str, Any], source: str = "<config>", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, recursively, checking keys and types.

    Missing keys keep their defaults; an unknown key raises ConfigError naming its
    full dotted path and ``source``.
    """
    if not isinstance(data, dict):
        where = f"'{prefix}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if name not in known:
            choices = ", ".join(sorted(known))
            raise ConfigError(f"{source}: unknown key '{path}'; valid keys here: {choices}")
        kwargs[name] = _convert(value, hints[name], path, source)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        where = f"'{prefix}'" if prefix else "config"
        raise ConfigError(f"{source}: invalid {where}: {exc}") from exc


# ---------------------------------------------------------------- overrides and files


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as a YAML scalar / flow collection)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. train.epochs=5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: empty key; use dotted names like model.levels")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({exc})") from exc
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``KEY=VALUE`` override set (nested keys)."""
    result = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                path = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {text!r}: '{path}' is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _resolve_paths(cfg: RunConfig, base: Path) -> RunConfig:
    """Make the data paths absolute (relative ones are taken from ``base``)."""

    def absolute(path: str) -> str:
        expanded = Path(os.path.expanduser(path))
        return str(expanded if expanded.is_absolute() else (base / expanded).resolve())

    cfg.data.root = absolute(cfg.data.root)
    if cfg.data.parse_cache is not None:
        cfg.data.parse_cache = absolute(cfg.data.parse_cache)
    if cfg.data.word_vectors not in WORD_VECTOR_SOURCES:
        cfg.data.word_vectors = absolute(cfg.data.word_vectors)
    return cfg


def config_from_dict(
    data: dict[str, Any],
    overrides: list[str] | None = None,
    source: str = "<config>",
    base: str | os.PathLike[str] | None = None,
) -> RunConfig:
    """A checked RunConfig from a nested dict plus overrides; paths resolved from ``base``."""
    merged = apply_overrides(data, list(overrides or []))
    cfg = from_dict(RunConfig, merged, source)
    validate(cfg, source)
    return _resolve_paths(cfg, Path(base) if base is not None else Path.cwd())


def load_config(
    path: str | os.PathLike[str] | None, overrides: list[str] | None = None
) -> RunConfig:
    """Read a YAML run config (None = all defaults), apply overrides, check and resolve it."""
    if path is None:
        return config_from_dict({}, overrides, source="<defaults>")
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"{source}: config file not found; check the --config path")
    try:
        data = yaml.safe_load("\n".join(read_text_lines(source, "config file"))) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}); fix the file") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return config_from_dict(data, overrides, source=str(source))


def save_config(cfg: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], ignore: tuple[str, ...] = (), prefix: str = ""
) -> list[str]:
    """Dotted keys whose values differ between two config dicts (``ignore``d keys skipped)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        path = f"{prefix}{key}"
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, ignore, f"{path}.")
        elif path not in ignore and to_dict(a) != to_dict(b):
            out.append(path)
    return out


def validate(cfg: RunConfig, source: str = "<config>") -> None:
    """Value checks that types alone cannot express."""
    check_ranges("train", cfg.train, source)
    check_ranges("data", cfg.data, source)
    for level, size in cfg.data.attribute_sizes.items():
        if level not in ("entity", "action", "relation"):
            raise ConfigError(
                f"{source}: unknown key 'data.attribute_sizes.{level}'; "
                "levels with attributes are entity, action, relation"
            )
        if not 1 <= size <= 1_000_000:
            raise ConfigError(
                f"{source}: key 'data.attribute_sizes.{level}' must be in [1, 1000000], "
                f"got {size}"
            )
    try:
        check_device(cfg.train.device, "key 'train.device'", present=False)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
