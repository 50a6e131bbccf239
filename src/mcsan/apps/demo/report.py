"""REPORT.md of a demo run: metric tables, twin accuracy, plots, examples, timings."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from mcsan import LEVELS
from mcsan.apps.demo.plots import (
    chance_recalls,
    plot_levels,
    plot_recalls,
    plot_training,
    plot_twins,
    plot_validation,
    twin_kinds,
)
from mcsan.apps.demo.settings import DemoResult
from mcsan.core.io import atomic_write_text
from mcsan.evaluate.ceiling import with_oracle_row
from mcsan.inference.twins import twin_cell

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
    """Rows = models (or levels), columns = the protocol's metrics ("-" where a row has none:
    the oracle's v2t columns)."""
    rows = [[name] + [f"{m[c]:.1f}" if c in m else "-" for c in METRIC_COLUMNS]
            for name, m in table.items()]  # fmt: skip
    return markdown_table(["model", *METRIC_COLUMNS], rows)


def ceiling_markdown(table: dict[str, dict[str, float]], oracle: dict[str, Any] | None) -> str:
    """Each model's t2v R@K as a share of the oracle's, and each re-ranked row's first-stage
    recall at its shortlist; empty without an oracle or a re-ranked row."""
    from mcsan.evaluate.ceiling import model_rows, oracle_shares

    names = model_rows(table)
    reranked = any("first_stage_recall" in table[name] for name in names)
    if oracle is None and not reranked:
        return ""
    header = ["model"]
    if oracle is not None:
        header += [f"t2v R@{k} / oracle" for k in (1, 5, 10)]
    header.append("first stage: t2v queries whose clip is in the shortlist")
    rows = []
    for name in names:
        row = [name]
        if oracle is not None:
            row += [f"{v:.0f}%" for v in oracle_shares(table[name], oracle).values()]
        m = table[name]
        row.append(f"{m['first_stage_recall']:.1f}% (top {m['shortlist']:.0f})"
                   if "first_stage_recall" in m else "-")  # fmt: skip
        rows.append(row)
    intro = ""
    if oracle is not None:
        intro = (f"*Oracle ceiling*: a perfect model ranks the clips whose ground truth "
                 f"satisfies everything a caption says first, in random order (a caption is true "
                 f"of {oracle['mean_consistent']:.1f} of the {oracle['clips']} clips on average, "
                 f"median {oracle['median_consistent']:.0f}); its expected t2v R@K is the mean "
                 "of min(1, K / that count).\n\n")  # fmt: skip
    return intro + markdown_table(header, rows)


def machine_line() -> str:
    """Where the numbers were measured."""
    import os

    import torch

    return (f"{platform.platform()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, torch {torch.__version__}, "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}")  # fmt: skip


def version_line() -> str:
    """The package version and the git commit of its source, when it is a checkout."""
    import subprocess

    from mcsan import __version__

    try:
        done = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).parent)  # fmt: skip
        commit = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    dirty = ""
    if commit:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent)  # fmt: skip
        dirty = " with uncommitted changes" if status.stdout.strip() else ""
    where = f"git commit {commit}{dirty}" if commit else "not a git checkout"
    return f"mcsan {__version__} ({where})."


def _kl_note(result: DemoResult) -> str:
    """A sentence on the KL term when it rose while the total loss fell (it should)."""
    history = result.variants["mcsan"].history if "mcsan" in result.variants else []
    terms = [h["loss"] for h in history if "kl" in h["loss"] and "total" in h["loss"]]
    if len(terms) < 2 or terms[0]["kl"] <= 0:
        return ""
    kl, total = (terms[0]["kl"], terms[-1]["kl"]), (terms[0]["total"], terms[-1]["total"])
    if not (kl[1] > kl[0] and total[1] < total[0]):
        return ""
    return (f" MCSAN's KL term rose {kl[1] / kl[0]:.1f}x (from {kl[0]:.4f} to {kl[1]:.4f}) "
            f"while its total loss fell from {total[0]:.1f} to {total[1]:.1f}: the KL compares "
            "the video's and the caption's attribute distributions, which start near uniform "
            "(so nearly equal) and sharpen as the attribute heads learn, so it grows from "
            "about zero; it is a small part of the total.")


def _reranked_note(result: DemoResult) -> str:
    histories = [v.history for v in result.variants.values()]
    if any("reranked" in h.get("val", {}) for history in histories for h in history):
        return " and re-ranked by the binding matcher"
    return ("; the re-ranked score is measured on the test split only (training does not "
            "validate it per epoch)")


def _twin_cell_ci(entry: dict[str, Any] | None, key: str, n_key: str) -> str:
    return twin_cell(entry, key, n_key).replace("-", "–")


def _twin_markdown(result: DemoResult) -> str:
    """Rows = twin kinds, columns = per model: focused accuracy and all-caption accuracy."""
    kinds = twin_kinds(result.twins)
    header = ["twin kind"]
    for name in result.twins:
        header += [f"{name}: mention the change", f"{name}: all captions"]
    header += ["twins", "pairs (mention / all)"]
    counts = next(iter(result.twins.values()), {})
    rows = []
    for kind in kinds:
        row = [kind]
        for acc in result.twins.values():
            row += [_twin_cell_ci(acc.get(kind), "focused_accuracy", "focused_pairs"),
                    _twin_cell_ci(acc.get(kind), "accuracy", "pairs")]  # fmt: skip
        entry = counts.get(kind, {})
        row += [str(entry.get("twins", "–")),
                f"{entry.get('focused_pairs', '–')} / {entry.get('pairs', '–')}"]  # fmt: skip
        rows.append(row)
    return markdown_table(header, rows)


def _examples_markdown(examples: list[dict[str, Any]]) -> str:
    parts = []
    for example in examples:
        found = [i + 1 for i, (_, _, ok) in enumerate(example["top"]) if ok]
        where = f"rank {found[0]}" if found else "not in the top 5"
        parts.append(f"**“{example['query']}”** (its clip `{example['truth']}`: {where})\n\n"
                     f"![top 5 with frames]({example['image']})\n")  # fmt: skip
    return "\n".join(parts)


def _small_sample_note(videos: int) -> str:
    from mcsan.evaluate.split import SMALL_SAMPLE_VIDEOS, small_sample_warning

    return f"\n\n*{small_sample_warning(videos)}*" if videos < SMALL_SAMPLE_VIDEOS else ""


def write_report(result: DemoResult) -> Path:
    """Write plots and ``REPORT.md`` into the demo folder; return the report's path."""
    plots = result.out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    counts = next(iter(result.variants.values())).metrics["test"]
    plot_recalls(result.metric_tables("test"), plots / "recall_at_k.png",
                 chance_recalls(counts["videos"], counts["captions"]))  # fmt: skip
    histories = {n: v.history for n, v in result.variants.items()}
    plot_training(histories, plots / "training.png")
    plot_validation(histories, plots / "validation.png")
    plot_twins(result.twins, plots / "twins.png")
    if "mcsan" in result.variants:
        plot_levels(result.variants["mcsan"].metrics["test"]["metrics"],
                    plots / "recall_per_level.png", "mcsan")  # fmt: skip

    s = result.settings
    sections = [
        "# mcsan demo report",
        f"The embedded default world: {s.videos} clips x {s.frames} frames at {s.size} px, "
        f"seed {s.seed}; twins for {s.twins} test clips. Config `{s.config}` "
        f"(overrides: {', '.join(s.overrides(result.out_dir / 'world'))}). Features: "
        "EfficientNet-Lite0 (ImageNet) head on a 2x2 grid + block-10 + 2x2 RGB histogram.",
        "Protocol: t2v ranks each caption's clip among all clips; v2t ranks a clip's best "
        "caption among all captions; ties count against the model; best epoch chosen on "
        "validation rsum only (fused score). Rows marked *first stage*: every clip scored by "
        "fused + `rerank.late_weight` x the mean of the binding matcher's `rerank.late_terms` "
        "(late interaction on the cells the index stores). Rows marked *re-ranked*: the binding "
        "matcher (a text-conditioned second stage, `model.rerank`) re-orders each query's top "
        "`rerank.top_k` by the first stage, by fused + `rerank.weight` x match; twins count "
        "both clips as "
        "one shortlist.",
    ]
    for split, title in (("test", "Test split"), ("comp", "Compositional split (unseen combinations)")):
        table = result.metric_tables(split)
        if table:
            counts = next(iter(result.variants.values())).metrics[split]
            oracle = result.oracle(split)
            ceiling = ceiling_markdown(table, oracle)
            sections.append(f"## {title}: {counts['videos']} clips, {counts['captions']} captions\n\n"
                            + metrics_markdown(with_oracle_row(table, oracle))
                            + _small_sample_note(counts["videos"])
                            + (f"\n\n{ceiling}" if ceiling else ""))  # fmt: skip
    sections.append("![recall at K](plots/recall_at_k.png)\n\nDashed: a random ranking's "
                    "recall. One training seed per model: the tables carry no seed-to-seed "
                    "spread (`mcsan ablate --seeds N` gives mean +/- sd).")  # fmt: skip
    if "mcsan" in result.variants:
        per_level = {name: row for name, row in result.variants["mcsan"].metrics["test"]
                     ["metrics"].items() if name == "fused" or name in LEVELS}  # fmt: skip
        sections.append("## MCSAN per level (test)\n\nEach level's similarity alone, and fused.\n\n"
                        + metrics_markdown(per_level)
                        + "\n\n![recall per level](plots/recall_per_level.png)")  # fmt: skip
    sections += [
        "## Twin accuracy (%)\n\nShare of (caption of a clip, its twin) pairs where the model "
        "scores the clip above a twin that differs in one respect only (the twin kind); 50 is "
        "chance. *Mention the change*: only the captions that mention what the twin changed "
        "(the other captions are equally true of both clips, so no model can tell the two "
        "apart on them); *all captions*: every caption of the clip. In brackets: 95% Wilson "
        "interval over caption–twin pairs (pairs of one clip are not independent, so the "
        "true spread is wider).\n\n" + _twin_markdown(result)
        + "\n\n![twin accuracy](plots/twins.png)",
        "## Training\n\nMean loss per batch of each loss term (own axes) and validation rsum "
        "per epoch." + _kl_note(result) + "\n\n![training](plots/training.png)\n\nValidation "
        "rsum per epoch of each level's score alone and fused (the curve the best epoch is "
        "chosen on)" + _reranked_note(result) + ".\n\n![validation](plots/validation.png)",
        "## Example queries (MCSAN, test clips)\n\nThe five best-scoring test clips per query, "
        "each shown by frames from start to end; ✓ marks the query's own clip.\n\n"
        + _examples_markdown(result.examples),
        "## Timings\n\n" + markdown_table(
            ["stage", "seconds", "summary"],
            [[t.name, f"{t.seconds:.1f}", t.summary] for t in result.stages],
        ) + f"\n\nMachine: {machine_line()}. {version_line()}",
    ]
    path = result.out_dir / "REPORT.md"
    atomic_write_text(path, "\n\n".join(sections) + "\n")
    return path
