"""Option ranges and choices, checked at the edge: config load and argument parsing.

One table (:data:`RANGES`) gives the valid range of every numeric config field, and each
choice field is typed ``Literal[...]`` in its dataclass; the typed config sections call
:func:`check_section` (ranges, then choices) when they are built, so a bad value is refused
with its key and range before anything runs (attention heads 0, negative sizes, dropout
outside [0, 1), negative weight decay, NaN). The argparse types below do the same for
command-line options, so ``argparse`` reports them (exit 2, no traceback). Devices are
checked for syntax and for being present in this build (:func:`check_device`).
"""

from __future__ import annotations

import argparse
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal

from mcsan.core.errors import ConfigError

INF = math.inf


@dataclass(frozen=True)
class Range:
    """A closed or half-open interval; ``None`` values pass when ``optional``."""

    low: float = -INF
    high: float = INF
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` (finite) lies in the range."""
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        low, high = _show(self.low), _show(self.high)
        if self.high == INF:
            text = f"> {low}" if self.low_open else f">= {low}"
        else:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {left}{low}, {high}{right}"
        return text + (" (or null)" if self.optional else "")


def _show(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
DIM = Range(1, 65536)
"""A layer width: beyond 65,536 the weight matrices alone outgrow memory."""
COUNT = Range(1, 1024)

RANGES: dict[str, dict[str, Range]] = {
    "model": {
        "embed_dim": DIM, "word_dim": DIM, "text_hidden": Range(2, 65536),
        "video_hidden": Range(2, 65536), "entity_slots": COUNT, "attention_heads": COUNT,
        "attention_hidden": DIM, "action_channels": DIM,
        "dropout": Range(0, 1, high_open=True), "rerank_dim": DIM,
    },
    "rerank": {
        "top_k": Range(1, 1 << 20), "fraction": Range(0, 1, low_open=True, optional=True),
        "weight": NON_NEGATIVE, "late_weight": NON_NEGATIVE,
    },
    "loss": {
        "margin": NON_NEGATIVE, "fbce_alpha": Range(0, 1), "fbce_gamma": NON_NEGATIVE,
        "lambda_fbce": NON_NEGATIVE, "lambda_kl": NON_NEGATIVE, "kl_temperature": POSITIVE,
        "lambda_match": NON_NEGATIVE, "lambda_predicates": NON_NEGATIVE,
        "lambda_distill": NON_NEGATIVE, "distill_temperature": POSITIVE,
        "lambda_hard_negatives": NON_NEGATIVE,
    },
    "train": {
        "epochs": Range(1, 1_000_000), "batch_size": Range(2, 1 << 20),
        "eval_batch_size": Range(1, 1 << 20), "lr": POSITIVE,
        "rerank_lr": Range(0, low_open=True, optional=True), "weight_decay": NON_NEGATIVE,
        "step_size": AT_LEAST_1, "gamma": Range(0, 1, low_open=True),
        "grad_clip": Range(0, low_open=True, optional=True), "num_workers": Range(0, 256, optional=True),
        "eval_every": AT_LEAST_1, "log_every": AT_LEAST_1, "prefetch_factor": Range(1, 1024),
        "threads": Range(0, 4096),
    },
    "data": {
        "max_words": Range(1, 4096), "max_frames": Range(1, 1 << 16, optional=True),
        "min_word_count": AT_LEAST_1, "resident_limit_gb": NON_NEGATIVE,
        "feature_cache_gb": NON_NEGATIVE, "hard_negatives": Range(0, 1 << 20),
        "edit_negatives": Range(0, 1 << 20),
    },
}  # fmt: skip
"""Valid range of each numeric field, per config section."""


def check_ranges(section: str, obj: Any, source: str = "") -> None:
    """Raise ConfigError for the first field of ``obj`` outside its range in ``RANGES``."""
    for name, valid in RANGES[section].items():
        value = getattr(obj, name)
        if value is None and valid.optional:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not valid.contains(value)
        ):
            where = f"{source}: " if source else ""
            raise ConfigError(
                f"{where}key '{section}.{name}' must be {valid}, got {value!r}; fix the value"
            )


@cache
def choices(cls: type) -> dict[str, tuple[Any, ...]]:
    """The ``Literal`` choice fields of a config dataclass: {field: allowed values}."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: typing.get_args(hints[f.name])
        for f in fields(cls)
        if typing.get_origin(hints[f.name]) is Literal
    }


def check_section(section: str, obj: Any, source: str = "") -> None:
    """Ranges (:func:`check_ranges`) and ``Literal`` choices of one config section: raise
    ConfigError naming the first bad key, its valid values and the file."""
    check_ranges(section, obj, source)
    for name, allowed in choices(type(obj)).items():
        value = getattr(obj, name)
        if value not in allowed:
            where = f"{source}: " if source else ""
            shown = ", ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"{where}key '{section}.{name}' must be one of {shown}, got {value!r}; "
                "fix the value"
            )


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(name: str, key: str = "--device", present: bool = True) -> str:
    """``name`` if it is auto, cpu, cuda or cuda:N (and, if ``present``, exists here).

    A config read back from a checkpoint is checked with ``present=False``: it may come
    from a machine with a GPU.
    """
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ConfigError(f"{key} {name!r}: not a device; use auto, cpu, cuda or cuda:N")
    if present and name.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.partition(":")[2] or 0)
        if count == 0:
            raise ConfigError(
                f"{key} {name!r}: this torch build sees no CUDA device; use cpu (or auto)"
            )
        if index >= count:
            raise ConfigError(
                f"{key} {name!r}: only {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            )
    return name


# ---------------------------------------------------------------- argparse types


def _number(kind: Callable[[str], float], valid: Range, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not valid.contains(value):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {valid}")
        return value

    parse.__name__ = what.replace(" ", "_")  # argparse names the type in its messages
    return parse


def int_in(low: int = 1, high: float = INF) -> Callable[[str], int]:
    """argparse type: an integer in [low, high]."""
    return _number(int, Range(low, high), "an integer")


def float_in(low: float = 0.0, high: float = INF, low_open: bool = True) -> Callable[[str], float]:
    """argparse type: a finite number in (low, high] (or [low, high] with low_open=False)."""
    return _number(float, Range(low, high, low_open=low_open), "a number")


MAX_K = 1_000
"""The most results one search returns (the CLI's -k, the API's k and the page)."""
MAX_FRAMES = 1024
"""Most frames per clip an option may ask for."""
MAX_SIZE = 2048
"""Largest frame side (px) an option may ask for; beyond it one clip outgrows memory."""

positive_int = int_in(1)
non_negative_int = int_in(0)
positive_float = float_in(0.0)


def device_arg(text: str) -> str:
    """argparse type: a torch device this build has (cpu, cuda, cuda:N; auto resolved)."""
    try:
        name = check_device(text)
        if name == "auto":
            import torch

            name = "cuda" if torch.cuda.is_available() else "cpu"
        return name
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--device ")) from None
