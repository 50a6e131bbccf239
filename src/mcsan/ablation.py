"""Ablations: train and evaluate MCSAN variants on the same data and features.

Each variant is the base run config plus ``--set``-style overrides. Variants train into
``<out>/<name>/`` and resume there when a run was cut short; a finished run is reused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.errors import ConfigError

VARIANTS: dict[str, tuple[str, ...]] = {
    "mcsan": (),
    "global-only": ("model.levels=[global]", "model.attribute_levels=[]"),
    "no-global": ("model.levels=[entity,action,relation]",),
    "no-entity": ("model.levels=[global,action,relation]",),
    "no-action": ("model.levels=[global,entity,relation]",),
    "no-relation": ("model.levels=[global,entity,action]",),
    "no-kl": ("loss.use_kl=false",),
    "separate-heads": ("model.shared_attribute_heads=false",),
    "bce": ("loss.use_focal=false",),
    "no-attributes": ("model.attribute_levels=[]",),
}
"""Variant name -> overrides of the base config. ``global-only`` is the plain dual encoder."""

DEMO_VARIANTS: tuple[str, ...] = ("mcsan", "global-only")


@dataclass
class VariantResult:
    """A trained variant and its metrics."""

    name: str
    run_dir: Path
    overrides: tuple[str, ...]
    best_epoch: int
    pairs_per_second: float
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """split -> the result of ``evaluate_checkpoint`` (fused and per-level metrics)."""


def variant_overrides(name: str) -> tuple[str, ...]:
    """The overrides of a named variant; ConfigError naming the known ones otherwise."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown ablation variant {name!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[name]


def train_variant(
    name: str,
    config_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    extra_overrides: Sequence[str] = (),
    splits: Sequence[str] = ("test",),
) -> VariantResult:
    """Train variant ``name`` into ``out_dir/name`` (resuming or reusing) and evaluate it."""
    import time

    from mcsan.config import load_config
    from mcsan.inference import evaluate_checkpoint
    from mcsan.train import train

    overrides = (*extra_overrides, *variant_overrides(name))
    cfg = load_config(config_path, list(overrides))
    run_dir = Path(out_dir) / name
    started = time.perf_counter()
    result = train(cfg, run_dir, resume=(run_dir / "last.pt").is_file())
    seconds = time.perf_counter() - started
    outcome = VariantResult(
        name=name,
        run_dir=run_dir,
        overrides=overrides,
        best_epoch=result.best_epoch,
        pairs_per_second=result.pairs_per_second,
        train_seconds=seconds,
        history=list(result.history),
    )
    for split in splits:
        outcome.metrics[split] = evaluate_checkpoint(run_dir / "best.pt", split)
    return outcome


def run_ablation(
    config_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    variants: Sequence[str] = tuple(VARIANTS),
    extra_overrides: Sequence[str] = (),
    splits: Sequence[str] = ("test",),
    on_variant: Callable[[VariantResult], None] | None = None,
) -> dict[str, VariantResult]:
    """Train and evaluate each variant in turn; ``on_variant`` is called after each."""
    for name in variants:
        variant_overrides(name)  # fail before any training on a typo
    results = {}
    for name in variants:
        results[name] = train_variant(name, config_path, out_dir, extra_overrides, splits)
        if on_variant is not None:
            on_variant(results[name])
    return results


def fused_table(results: dict[str, VariantResult], split: str) -> dict[str, dict[str, float]]:
    """variant -> fused metrics on ``split`` (input of ``mcsan.evaluate.format_metrics_table``)."""
    return {name: r.metrics[split]["metrics"]["fused"] for name, r in results.items()}
