"""The demo's stages, their caching and their timings."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.ablation import DEMO_VARIANTS, VariantResult, train_variant
from mcsan.errors import ConfigError

FEATURE_SET = "world"


@dataclass
class DemoSettings:
    """Sizes of the demo; the defaults finish in about ten minutes on 2 CPU cores."""

    videos: int = 1000
    frames: int = 8
    size: int = 128
    twins: int = 200
    """Test clips that get twins (up to one per level each)."""
    epochs: int | None = None
    """None = the config's epoch count."""
    seed: int = 0
    workers: int = 2
    config: str = "configs/world.yaml"
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


StageCallback = Callable[[StageTiming], None]


def _timed(result: DemoResult, name: str, on_stage: StageCallback | None, work: Callable[[], str]):
    started = time.perf_counter()
    summary = work()
    stage = StageTiming(name, time.perf_counter() - started, summary)
    result.stages.append(stage)
    if on_stage is not None:
        on_stage(stage)


def _world_stage(settings: DemoSettings, root: Path) -> str:
    from mcsan.data.world import generate_world

    summary = generate_world(
        root, settings.videos, settings.seed, frames=settings.frames, size=settings.size,
        workers=settings.workers, n_twin_originals=settings.twins,
    )  # fmt: skip
    return summary.line()


def _feature_stage(settings: DemoSettings, root: Path) -> str:
    from mcsan.data.native import feature_path, videos_dir
    from mcsan.data.video.decode import list_videos
    from mcsan.data.video.extract import extract_features, record_feature_set
    from mcsan.errors import FeatureError

    out = feature_path(root, FEATURE_SET)
    summary = extract_features(
        list_videos(videos_dir(root)), out, frames=settings.frames, size=settings.size,
        workers=settings.workers,
    )  # fmt: skip
    if summary.failed:
        raise FeatureError(
            f"{out}: {summary.failed} clips failed to extract (see the failures file); "
            "delete the world folder and run the demo again"
        )
    record_feature_set(root, out)
    return summary.line()


def _evaluate_twins(variant: VariantResult, root: Path) -> dict[str, dict[str, Any]]:
    from mcsan.data.native import feature_path
    from mcsan.data.video.store import FeatureStore
    from mcsan.inference import Retriever
    from mcsan.twins import read_twins, twin_accuracy

    ids = sorted({vid for p in read_twins(root) for vid in (p.original_id, p.twin_id)})
    with FeatureStore.open(feature_path(root, FEATURE_SET)) as store:
        features = store.read_all(ids)
    retriever = Retriever.from_checkpoint(variant.run_dir / "best.pt")
    return twin_accuracy(retriever, root, features)


def run_demo(
    settings: DemoSettings, out_dir: str | os.PathLike[str], on_stage: StageCallback | None = None
) -> DemoResult:
    """Run every stage into ``out_dir`` and write ``out_dir/REPORT.md``."""
    from mcsan.config import load_config
    from mcsan.demo.examples import example_queries
    from mcsan.demo.report import write_report

    out = Path(out_dir).resolve()
    config = Path(settings.config)
    if not config.is_file():
        raise ConfigError(
            f"{config}: demo config not found; run from the repository root or pass --config"
        )
    root = out / "world"
    load_config(config, list(settings.overrides(root)))  # a bad config fails before any work
    result = DemoResult(out, settings)
    _timed(result, "world", on_stage, lambda: _world_stage(settings, root))
    _timed(result, "features", on_stage, lambda: _feature_stage(settings, root))
    overrides = settings.overrides(root)
    for name in DEMO_VARIANTS:

        def train_one(name: str = name) -> str:
            variant = train_variant(name, config, out / "runs", overrides, ("test", "comp"))
            result.variants[name] = variant
            fused = variant.metrics["test"]["metrics"]["fused"]
            return (f"{name}: best epoch {variant.best_epoch}, test rsum {fused['rsum']:.1f}, "
                    f"{variant.pairs_per_second:.0f} pairs/s")  # fmt: skip

        _timed(result, f"train {name}", on_stage, train_one)

    def twins() -> str:
        for name, variant in result.variants.items():
            result.twins[name] = _evaluate_twins(variant, root)
        return "; ".join(
            f"{name}: " + ", ".join(
                f"{lvl} {v.get('focused_accuracy', v['accuracy']):.1f}%" for lvl, v in acc.items()
            )
            for name, acc in result.twins.items()
        )

    _timed(result, "twins", on_stage, twins)

    def report() -> str:
        result.examples = example_queries(result.variants["mcsan"], root, out / "plots")
        result.report_path = write_report(result)
        return f"wrote {result.report_path}"

    _timed(result, "report", on_stage, report)
    return result
