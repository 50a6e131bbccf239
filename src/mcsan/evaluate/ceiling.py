"""How far a model is from the best any model could do on a world split: the oracle ceiling
(:mod:`mcsan.world.oracle`) beside the model rows, each row's t2v R@K as a share of it, and
the first stage's recall at each re-ranked row's shortlist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcsan import LEVELS
from mcsan.evaluate.protocol import RECALL_KS

ORACLE_ROW = "oracle ceiling"
"""Row name of the oracle in metric tables (t2v recalls only)."""


def split_oracle(data: Any, split: str) -> dict[str, Any] | None:
    """The oracle ceiling of ``split`` of a loaded :class:`RetrievalData` (its captions
    against its clips); None unless the dataset is a world with its ground truth."""
    from mcsan.world.oracle import is_world, world_oracle

    if not is_world(data.root):
        return None
    rows = data.captions_of(split)
    _, videos, _ = data.split_view(split)
    queries = [(data.records[r].video_id, data.records[r].caption) for r in rows]
    return world_oracle(data.root, queries, [data.video_ids[v] for v in videos])


def oracle_shares(row: Mapping[str, float], oracle: Mapping[str, Any]) -> dict[str, float]:
    """``t2v_r<K>`` of ``row`` as a percentage of the oracle's."""
    return {f"t2v_r{k}": 100.0 * float(row[f"t2v_r{k}"]) / max(float(oracle[f"t2v_r{k}"]), 1e-9)
            for k in RECALL_KS if f"t2v_r{k}" in row}  # fmt: skip


def with_oracle_row(metrics: Mapping[str, Mapping[str, float]],
                    oracle: Mapping[str, Any] | None) -> dict[str, Mapping[str, float]]:  # fmt: skip
    """``metrics`` with the oracle as its first row (t2v recalls only) when there is one."""
    if oracle is None:
        return dict(metrics)
    return {ORACLE_ROW: {f"t2v_r{k}": float(oracle[f"t2v_r{k}"]) for k in RECALL_KS},
            **metrics}  # fmt: skip


def model_rows(metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The rows of ``metrics`` that rank with a whole model (not one level, not the oracle)."""
    return [name for name in metrics if name not in (*LEVELS, ORACLE_ROW)]


def ceiling_lines(metrics: Mapping[str, Mapping[str, float]],
                  oracle: Mapping[str, Any] | None) -> list[str]:  # fmt: skip
    """Lines under a metric table: the oracle's caption statistics, each model row's t2v R@K
    as a share of the oracle's, and each re-ranked row's first-stage recall at its shortlist
    (rows of single levels and the oracle's own are left out)."""
    names = model_rows(metrics)
    lines = []
    if oracle is not None:
        lines.append(
            f"{ORACLE_ROW}: a perfect model ranks the clips a caption is true of (ground truth: "
            f"mean {oracle['mean_consistent']:.1f}, median {oracle['median_consistent']:.0f} of "
            f"{oracle['clips']} clips) first, in random order; expected t2v R@K = "
            "mean of min(1, K / that count)")  # fmt: skip
    width = max([len("name"), *(len(name) for name in names)])
    head = ["name".ljust(width)]
    if oracle is not None:
        head += [f"R@{k} of oracle".rjust(14) for k in RECALL_KS]
    head.append("first stage at shortlist")
    rows = []
    for name in names:
        row = metrics[name]
        cells = [name.ljust(width)]
        if oracle is not None:
            cells += [f"{v:.1f}%".rjust(14) for v in oracle_shares(row, oracle).values()]
        cells.append(f"{row['first_stage_recall']:.1f}% in top {row['shortlist']:.0f}"
                     if "first_stage_recall" in row else "-")  # fmt: skip
        rows.append("  ".join(cells))
    if oracle is None and not any("first_stage_recall" in metrics[n] for n in names):
        return lines
    return [*lines, "  ".join(head), *rows]
