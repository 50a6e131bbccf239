"""Ablations: train and evaluate MCSAN variants on the same data and features.

Each variant is the base run config plus ``--set``-style overrides. Variants train into
``<out>/<name>/`` (with several seeds: ``<out>/<name>/seed<k>/``, ``seed=k`` set) and
resume there when a run was cut short; a finished run is reused. With a twin set in the
dataset (the synthetic world), each run's twin accuracy is measured too; :func:`summarize`
gives mean and standard deviation of every number over the seeds.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.core.errors import ConfigError
from mcsan.evaluate.split import FIRST_STAGE_ROW

logger = logging.getLogger(__name__)

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
    "relation-self-attention": ("model.relation_mode=self_attention",),
    "relation-geometric": ("model.relation_mode=geometric",),
    "relation-network": ("model.relation_mode=relation_network",),
    "relation-cells": ("model.relation_mode=cell_tensor",),
    "entity-slots": ("model.entity_mode=slots",),
    "entity-cells": ("model.entity_mode=cell_tensor",),
    "action-frames": ("model.action_mode=frames",),
    "action-cells": ("model.action_mode=cell_tensor",),
    "no-negatives": ("loss.negative_roles=false", "loss.negative_attributes=false",
                     "loss.negative_actions=false", "loss.negative_predicates=false"),
    "no-neg-roles": ("loss.negative_roles=false",),
    "no-neg-attributes": ("loss.negative_attributes=false",),
    "no-neg-actions": ("loss.negative_actions=false",),
    "no-neg-predicates": ("loss.negative_predicates=false",),
    "no-rerank": ("model.rerank=false",),
    "no-match-predicates": ("loss.match_predicates=false",),
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
    seed: int | None = None
    twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Twin accuracy (``mcsan.inference.twins.twin_accuracy``) when the dataset has a twin set."""
    reranked_twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The same from the re-ranked score, for a model with a binding matcher."""
    first_twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The same from the first stage with late interaction (``rerank.late_weight`` > 0)."""


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
    seed: int | None = None,
    restart_changed: bool = False,
) -> VariantResult:
    """Train variant ``name`` into ``out_dir/name`` (``out_dir/name/seed<k>`` with a
    ``seed``), resuming or reusing, and evaluate it (and its twin accuracy).

    A run left there with another config is an error, or with ``restart_changed`` (the
    demo, which owns its folder) deleted and trained anew."""
    import time

    from mcsan.config.run import load_config
    from mcsan.inference.checkpoint import load_checkpoint
    from mcsan.inference.retriever import evaluate_checkpoint
    from mcsan.inference.twins import TWINS_FILE, evaluate_twin_scores
    from mcsan.model.matcher import MATCH_TERMS
    from mcsan.train.trainer import resume_differences, train

    seeded = () if seed is None else (f"seed={seed}",)
    overrides = (*extra_overrides, *variant_overrides(name), *seeded)
    cfg = load_config(config_path, list(overrides))
    run_dir = Path(out_dir) / name / ("" if seed is None else f"seed{seed}")
    if restart_changed and (run_dir / "last.pt").is_file():
        changed = resume_differences(load_checkpoint(run_dir / "last.pt"), cfg)
        if changed:
            logger.warning("%s: config changed (%s); training it anew", run_dir,
                           ", ".join(changed))  # fmt: skip
            shutil.rmtree(run_dir)
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
        seed=cfg.seed,
    )
    for split in splits:
        outcome.metrics[split] = evaluate_checkpoint(run_dir / "best.pt", split)
    if (Path(cfg.data.root) / TWINS_FILE).is_file():
        rerank = cfg.model.rerank and bool(set(cfg.model.levels) & set(MATCH_TERMS))
        scores = ("fused", "reranked") if rerank else ("fused",)
        if rerank and cfg.rerank.late_weight > 0:
            scores = ("fused", "first", "reranked")
        twins = evaluate_twin_scores(run_dir / "best.pt", cfg.data.root, scores)
        outcome.twins, outcome.reranked_twins = twins["fused"], twins.get("reranked", {})
        outcome.first_twins = twins.get("first", {})
    return outcome


def run_ablation(
    config_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    variants: Sequence[str] = tuple(VARIANTS),
    extra_overrides: Sequence[str] = (),
    splits: Sequence[str] = ("test",),
    on_variant: Callable[[VariantResult], None] | None = None,
    seeds: int = 1,
) -> dict[str, list[VariantResult]]:
    """Train and evaluate each variant with ``seeds`` seeds (0 .. seeds-1; with one seed the
    config's own seed and the plain ``out/name`` folder), seed-major so that a cut-short
    run has every variant at its first seeds; ``on_variant`` is called after each run."""
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: train each variant with at least one seed")
    for name in variants:
        variant_overrides(name)  # fail before any training on a typo
    results: dict[str, list[VariantResult]] = {name: [] for name in variants}
    for k in range(seeds):
        for name in variants:
            run = train_variant(
                name, config_path, out_dir, extra_overrides, splits, None if seeds == 1 else k
            )
            results[name].append(run)
            if on_variant is not None:
                on_variant(run)
    return results


def run_numbers(run: VariantResult, split: str) -> dict[str, float]:
    """Every number of one run, flat: ``<level>/<metric>`` on ``split`` (fused included)
    and ``twins/<level[/kind]>/<accuracy|focused_accuracy>`` (``reranked_twins/...`` from
    the re-ranked score, ``reranked/<metric>`` for a model with a binding matcher, its
    ``reranked/first_stage_recall`` at the shortlist; ``first stage/<metric>`` and
    ``first_twins/...`` with late interaction); on a world ``oracle/t2v_r<K>`` (the oracle
    ceiling) and ``<fused|first stage|reranked>/t2v_r<K>_of_oracle`` (percent of it)."""
    from mcsan.evaluate.ceiling import oracle_shares

    flat: dict[str, float] = {}
    report = run.metrics[split]
    for level, metrics in report["metrics"].items():
        flat.update({f"{level}/{k}": float(v) for k, v in metrics.items()})
    oracle = report.get("oracle")
    if oracle is not None:  # a world: the ceiling and each ranking's share of it
        flat.update({f"oracle/t2v_r{k}": float(oracle[f"t2v_r{k}"]) for k in (1, 5, 10)})
        for row in ("fused", FIRST_STAGE_ROW, "reranked"):
            if row in report["metrics"]:
                shares = oracle_shares(report["metrics"][row], oracle)
                flat.update({f"{row}/{k}_of_oracle": v for k, v in shares.items()})
    for prefix, twins in (("twins", run.twins), ("first_twins", run.first_twins),
                          ("reranked_twins", run.reranked_twins)):  # fmt: skip
        for level, entry in twins.items():
            for key in ("accuracy", "focused_accuracy"):
                if key in entry:
                    flat[f"{prefix}/{level}/{key}"] = float(entry[key])
    return flat


def summarize(
    results: Mapping[str, Sequence[VariantResult]], split: str
) -> dict[str, dict[str, dict[str, float]]]:
    """variant -> number -> {"mean", "sd", "n"} over its seeds (sample sd; 0 for one seed).
    A number missing from some seed's run is summarised over the runs that have it."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, runs in results.items():
        values: dict[str, list[float]] = {}
        for run in runs:
            for key, value in run_numbers(run, split).items():
                values.setdefault(key, []).append(value)
        out[name] = {}
        for key, vals in values.items():
            mean = sum(vals) / len(vals)
            var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1) if len(vals) > 1 else 0.0
            out[name][key] = {"mean": mean, "sd": math.sqrt(var), "n": len(vals)}
    return out


def _cell(cell: Mapping[str, float] | None) -> str:
    """``mean +/- sd`` over several seeds, the plain value for one, ``-`` when absent."""
    if cell is None:
        return "-"
    if int(cell.get("n", 1)) < 2:
        return f"{cell['mean']:.1f}"
    return f"{cell['mean']:.1f} +/- {cell['sd']:.1f}"


def format_summary(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]], keys: Sequence[str],
    width: int = 100,
) -> str:
    """A plain-text table: one row per variant, one column per key (``mean +/- sd`` with
    several seeds, the value with one, "-" if absent), split into blocks of columns that
    fit ``width`` characters, each block repeating the variant column."""
    name_width = max([len("variant"), *(len(name) for name in summary)])
    labels = [_label(k) for k in keys]
    cols = [max(len(label), *(len(_cell(n.get(k))) for n in summary.values()))
            for k, label in zip(keys, labels, strict=True)]  # fmt: skip
    blocks: list[list[int]] = [[]]
    used = name_width
    for column, col in enumerate(cols):
        if blocks[-1] and used + 2 + col > width:
            blocks.append([])
            used = name_width
        blocks[-1].append(column)
        used += 2 + col
    out = []
    for block in blocks:
        header = "  ".join(["variant".ljust(name_width), *(labels[c].rjust(cols[c]) for c in block)])
        lines = [header, "-" * len(header)]
        for name, numbers in summary.items():
            cells = (_cell(numbers.get(keys[c])).rjust(cols[c]) for c in block)
            lines.append("  ".join([name.ljust(name_width), *cells]))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def markdown_summary(
    summary: Mapping[str, Mapping[str, Mapping[str, float]]], keys: Sequence[str], split: str,
) -> str:
    """The summary as a markdown table (one row per variant) with a line on what it shows."""
    seeds = sorted({int(c.get("n", 1)) for numbers in summary.values() for c in numbers.values()})
    spread = ("mean +/- sample sd over the seeds" if seeds and seeds[-1] > 1
              else "one seed per variant, so no spread")  # fmt: skip
    lines = [
        f"# Ablation on the {split} split",
        "",
        f"Seeds per variant: {', '.join(map(str, seeds)) or '-'} ({spread}). Retrieval "
        "numbers are in % (rsum: the six recalls summed); twin columns are the focused "
        "accuracy, the share of twin pairs (a clip against a copy changed in one respect) "
        "told apart by the captions that mention the change; chance is 50%.",
        "",
        "| variant | " + " | ".join(_label(k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for name, numbers in summary.items():
        lines.append(f"| {name} | " + " | ".join(_cell(numbers.get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def csv_summary(summary: Mapping[str, Mapping[str, Mapping[str, float]]],
                keys: Sequence[str]) -> str:  # fmt: skip
    """The summary as CSV: variant, then mean, sd and n of every key (empty when absent)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", *(f"{k}/{part}" for k in keys for part in ("mean", "sd", "n"))])
    for name, numbers in summary.items():
        row: list[object] = [name]
        for key in keys:
            cell = numbers.get(key)
            row += (["", "", ""] if cell is None
                    else [round(cell["mean"], 4), round(cell["sd"], 4), int(cell["n"])])
        writer.writerow(row)
    return buffer.getvalue()


def _label(key: str) -> str:
    """Column label: ``twins/relation/swapped/focused_accuracy`` -> ``relation/swapped
    twins`` (focused), ``.../accuracy`` -> ``... twins (all)``; metrics keep their name."""
    prefix = next((p for p in ("twins/", "first_twins/", "reranked_twins/")
                   if key.startswith(p)), None)  # fmt: skip
    if prefix is None:
        return key
    group, _, kind = key.removeprefix(prefix).rpartition("/")
    label = f"{group} twins" + ("" if kind == "focused_accuracy" else " (all)")
    return {"twins/": label, "first_twins/": f"first stage {label}"}.get(prefix,
                                                                         f"reranked {label}")


TWIN_KEYS: tuple[str, ...] = (
    "entity/changed", "entity/binding", "action/changed", "action/binding",
    "relation/changed", "relation/swapped", "relation",
)
"""Twin groups the ablation table shows (focused accuracy: captions naming the change)."""


def table_keys(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The columns worth showing: fused rsum, R@1s, MedR, on a world the oracle's t2v R@10 and
    the fused share of it, then the twin groups present; with late interaction the first
    stage's rsum, share and twins; with a binding matcher the re-ranked
    rsum, share of the oracle, first-stage recall and twins after them."""
    present = {key for numbers in summary.values() for key in numbers}
    keys = ["fused/rsum", "fused/t2v_r1", "fused/v2t_r1", "fused/t2v_medr", "oracle/t2v_r10",
            "fused/t2v_r10_of_oracle"]  # fmt: skip
    twins = [f"twins/{group}/focused_accuracy" for group in TWIN_KEYS]
    first = [f"{FIRST_STAGE_ROW}/rsum", f"{FIRST_STAGE_ROW}/t2v_r10_of_oracle",
             *(f"first_{k}" for k in twins)]  # fmt: skip
    reranked = ["reranked/rsum", "reranked/t2v_r10_of_oracle", "reranked/first_stage_recall",
                *(f"reranked_{k}" for k in twins)]  # fmt: skip
    return [k for k in keys + twins + first + reranked if k in present]
