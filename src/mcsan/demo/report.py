"""REPORT.md of a demo run: metric tables, twin accuracy, plots, examples, timings."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from mcsan.demo.settings import DemoResult
from mcsan.io import atomic_write_text

METRIC_COLUMNS = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_mnr",
    "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "v2t_mnr", "rsum",
)  # fmt: skip


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_markdown(table: dict[str, dict[str, float]]) -> str:
    """Rows = models (or levels), columns = the protocol's metrics."""
    rows = [[name] + [f"{m[c]:.1f}" for c in METRIC_COLUMNS] for name, m in table.items()]
    return markdown_table(["model", *METRIC_COLUMNS], rows)


def machine_line() -> str:
    """Where the numbers were measured."""
    import os

    import torch

    return (f"{platform.platform()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, torch {torch.__version__}, "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")  # fmt: skip


def _plot_recalls(result: DemoResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for axis, side in zip(axes, ("t2v", "v2t"), strict=True):
        for name, variant in result.variants.items():
            fused = variant.metrics["test"]["metrics"]["fused"]
            axis.plot([1, 5, 10], [fused[f"{side}_r{k}"] for k in (1, 5, 10)], marker="o",
                      label=name)  # fmt: skip
        axis.set(title=f"{side} recall@K (test)", xlabel="K", ylabel="recall %", xticks=[1, 5, 10])
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _plot_training(result: DemoResult, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, (loss_axis, rsum_axis) = plt.subplots(1, 2, figsize=(8, 3.2))
    for name, variant in result.variants.items():
        epochs = [h["epoch"] for h in variant.history]
        loss_axis.plot(epochs, [h["loss"].get("total", float("nan")) for h in variant.history],
                       label=name)  # fmt: skip
        validated = [h for h in variant.history if "val" in h]
        rsum_axis.plot([h["epoch"] for h in validated],
                       [h["val"]["fused"]["rsum"] for h in validated], marker="o", label=name)  # fmt: skip
    loss_axis.set(title="training loss", xlabel="epoch")
    rsum_axis.set(title="validation rsum (fused)", xlabel="epoch")
    for axis in (loss_axis, rsum_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _plot_twins(result: DemoResult, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    levels = _twin_levels(result)
    figure, axis = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / max(1, len(result.twins))
    for i, (name, acc) in enumerate(result.twins.items()):
        values = [_focused(acc.get(lvl, {})) for lvl in levels]
        axis.bar(np.arange(len(levels)) + i * width, values, width, label=name)
    axis.axhline(50, color="grey", linestyle="--", linewidth=1, label="chance")
    axis.set(title="twin accuracy per level, captions that mention the change",
             ylabel="%", ylim=(0, 100))  # fmt: skip
    axis.set_xticks(np.arange(len(levels)) + width * (len(result.twins) - 1) / 2, levels)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _twin_levels(result: DemoResult) -> list[str]:
    """Twin levels in report order: each level alphabetically, then "all"."""
    names = {lvl for acc in result.twins.values() for lvl in acc}
    return sorted(names, key=lambda name: (name == "all", name))


def _focused(entry: dict[str, Any]) -> float:
    """Focused twin accuracy where known, else the all-caption one."""
    return float(entry.get("focused_accuracy", entry.get("accuracy", 0.0)))


def _twin_markdown(result: DemoResult) -> str:
    levels = _twin_levels(result)
    rows = [[name] + [_twin_cell(acc.get(lvl)) for lvl in levels]
            for name, acc in result.twins.items()]  # fmt: skip
    counts = next(iter(result.twins.values()), {})
    rows.append(["(caption–twin pairs)"] + [
        f"{counts[lvl]['pairs']} / {counts[lvl].get('focused_pairs', '–')}" if lvl in counts else "–"
        for lvl in levels
    ])  # fmt: skip
    return markdown_table(["model", *levels], rows)


def _twin_cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    focused = entry.get("focused_accuracy")
    return f"{entry['accuracy']:.1f} / " + ("–" if focused is None else f"{focused:.1f}")


def _examples_markdown(examples: list[dict[str, Any]]) -> str:
    parts = []
    for example in examples:
        found = [i + 1 for i, (_, _, ok) in enumerate(example["top"]) if ok]
        where = f"rank {found[0]}" if found else "not in the top 5"
        parts.append(f"**“{example['query']}”** (its clip `{example['truth']}`: {where})\n\n"
                     f"![top 5]({example['image']})\n")  # fmt: skip
    return "\n".join(parts)


def write_report(result: DemoResult) -> Path:
    """Write plots and ``REPORT.md`` into the demo folder; return the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    plots = result.out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    _plot_recalls(result, plots / "recall_at_k.png")
    _plot_training(result, plots / "training.png")
    _plot_twins(result, plots / "twins.png")

    s = result.settings
    sections = [
        "# mcsan demo report",
        f"The embedded default world: {s.videos} clips x {s.frames} frames at {s.size} px, "
        f"seed {s.seed}; twins for {s.twins} test clips. Config `{s.config}` "
        f"(overrides: {', '.join(s.overrides(result.out_dir / 'world'))}). Features: "
        "EfficientNet-Lite0 (ImageNet) head on a 2x2 grid + block-10 + 2x2 RGB histogram.",
        "Protocol: t2v ranks each caption's clip among all clips; v2t ranks a clip's best "
        "caption among all captions; ties count against the model; best epoch chosen on "
        "validation rsum only; no test-time rescoring.",
    ]
    for split, title in (("test", "Test split"), ("comp", "Compositional split (unseen combinations)")):
        table = {n: v.metrics[split]["metrics"]["fused"] for n, v in result.variants.items()
                 if split in v.metrics}  # fmt: skip
        if table:
            counts = next(iter(result.variants.values())).metrics[split]
            sections.append(f"## {title}: {counts['videos']} clips, {counts['captions']} captions\n\n"
                            + metrics_markdown(table))  # fmt: skip
    if "mcsan" in result.variants:
        per_level = result.variants["mcsan"].metrics["test"]["metrics"]
        sections.append("## MCSAN per level (test)\n\nEach level's similarity alone, and fused.\n\n"
                        + metrics_markdown(per_level))  # fmt: skip
    sections += [
        "## Twin accuracy (%)\n\nShare of (caption of a clip, its twin) pairs where the model "
        "scores the clip above a twin that differs at one level only; 50 is chance. Each cell: "
        "over all captions of the clip / over the captions that mention what the twin changed "
        "(the others are equally true of both clips).\n\n"
        + _twin_markdown(result),
        "## Plots\n\n![recall](plots/recall_at_k.png)\n\n![training](plots/training.png)\n\n"
        "![twins](plots/twins.png)",
        "## Example queries (MCSAN, test clips)\n\n" + _examples_markdown(result.examples),
        "## Timings\n\n" + markdown_table(
            ["stage", "seconds", "summary"],
            [[t.name, f"{t.seconds:.1f}", t.summary] for t in result.stages],
        ) + f"\n\nMachine: {machine_line()}.",
    ]
    path = result.out_dir / "REPORT.md"
    atomic_write_text(path, "\n\n".join(sections) + "\n")
    return path
