"""What the demo runs (its settings) and what it produced (its result and stage timings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.apps.ablation import VariantResult
from mcsan.evaluate.split import FIRST_STAGE_ROW

FEATURE_SET = "world"
RERANKED = "re-ranked"
"""Suffix of a model's row once its binding matcher re-ranked the shortlists."""


@dataclass
class DemoSettings:
    """Sizes of the demo; the defaults finish in about ten minutes on 2 CPU cores."""

    videos: int = 1000
    frames: int = 8
    size: int = 128
    twins: int = 200
    """Test clips that get twins (up to one per level each)."""
    epochs: int | None = 9
    """None = the config's epoch count (12 for ``world``). 9 keeps `make demo` within ten
    minutes on 2 cores now that MCSAN trains its binding matcher too (BENCHMARKS.md); the
    3-seed ablation table uses the config's 12."""
    seed: int = 0
    workers: int = 2
    config: str = "world"
    """A packaged config's name or a YAML path."""
    extra_overrides: tuple[str, ...] = ()

    @classmethod
    def quick(cls, **changes: Any) -> DemoSettings:
        """A tiny variant for tests: under a minute on 2 cores."""
        base = {"videos": 40, "frames": 4, "size": 64, "twins": 4, "epochs": 2}
        return cls(**{**base, **changes})

    def overrides(self, root: Path) -> list[str]:
        """Config overrides that point training at this demo's data."""
        sets = [f"data.root={root}", f"data.feature_set={FEATURE_SET}", f"seed={self.seed}"]
        if self.epochs is not None:
            sets.append(f"train.epochs={self.epochs}")
        return [*sets, *self.extra_overrides]


@dataclass
class StageTiming:
    """One stage: its name, wall seconds and one-line summary."""

    name: str
    seconds: float
    summary: str


@dataclass
class DemoResult:
    """Everything the report shows."""

    out_dir: Path
    settings: DemoSettings
    stages: list[StageTiming] = field(default_factory=list)
    variants: dict[str, VariantResult] = field(default_factory=dict)
    twins: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """variant -> twin level -> {accuracy, pairs, twins}."""
    examples: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None

    def oracle(self, split: str) -> dict[str, Any] | None:
        """The oracle ceiling of ``split`` (:mod:`mcsan.world.oracle`), when evaluated."""
        return next((v.metrics[split].get("oracle") for v in self.variants.values()
                     if split in v.metrics), None)  # fmt: skip

    def metric_tables(self, split: str) -> dict[str, dict[str, float]]:
        """Model -> fused metrics on ``split``, ``"<model> first stage"`` (with late
        interaction) and ``"<model> re-ranked"`` after them for a model with a binding
        matcher (``model.rerank``)."""
        tables = {}
        for name, variant in self.variants.items():
            if split not in variant.metrics:
                continue
            metrics = variant.metrics[split]["metrics"]
            tables[name] = metrics["fused"]
            if FIRST_STAGE_ROW in metrics:
                tables[f"{name} {FIRST_STAGE_ROW}"] = metrics[FIRST_STAGE_ROW]
            if "reranked" in metrics:
                tables[f"{name} {RERANKED}"] = metrics["reranked"]
        return tables
