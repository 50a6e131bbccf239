"""The demo report's figures: recall@K, recall per level, training curves, twin accuracy.

Every figure is generic over what the results hold: the models trained, the levels a model
scores, the loss terms it logs and the twin kinds of the world. Each figure keeps its
labels inside the canvas (``constrained_layout``) and gives different quantities their own
axes. Twin accuracy carries 95% Wilson intervals over caption–twin pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcsan.core.extras import require
from mcsan.inference.twins import wilson_interval

RECALL_KS = (1, 5, 10)
FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9}


def pyplot() -> Any:
    matplotlib = require("matplotlib", "the demo report's plots")
    matplotlib.use("Agg")
    matplotlib.rcParams.update(FONT)
    return require("matplotlib.pyplot")


def _legend_above(figure: Any, axis: Any) -> None:
    """One legend for the figure, above the panels, so that it hides no data."""
    handles, labels = axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6))


def _save(figure: Any, path: Path) -> None:
    plt = pyplot()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def chance_recalls(videos: int, captions: int) -> dict[str, list[float]]:
    """Recall@K (%) of a random ranking: t2v ``K / videos``; v2t, where a clip's best of its
    ``captions / videos`` captions counts, ``1 - (1 - c / captions)^K`` (draws with
    replacement, close for K much smaller than the captions)."""
    per_clip = captions / max(videos, 1)
    return {
        "t2v": [100.0 * min(1.0, k / max(videos, 1)) for k in RECALL_KS],
        "v2t": [100.0 * (1.0 - (1.0 - per_clip / max(captions, 1)) ** k) for k in RECALL_KS],
    }


def plot_recalls(fused: Mapping[str, Mapping[str, float]], path: Path,
                 chance: Mapping[str, Sequence[float]] | None = None) -> None:  # fmt: skip
    """Recall@1/5/10 per model, t2v and v2t side by side (``fused``: model -> metrics), with
    a random ranking's recall as a dashed line (``chance``: side -> recall per K)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.8), constrained_layout=True, sharey=True)
    for axis, side in zip(axes, ("t2v", "v2t"), strict=True):
        for name, metrics in fused.items():
            axis.plot(RECALL_KS, [metrics[f"{side}_r{k}"] for k in RECALL_KS], marker="o",
                      label=name)  # fmt: skip
        if chance is not None:
            axis.plot(RECALL_KS, chance[side], linestyle="--", color="grey", label="chance")
        axis.set(title=f"{side} recall@K, test split", xlabel="K", xticks=list(RECALL_KS),
                 ylim=(0, 100))  # fmt: skip
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("recall (%)")
    _legend_above(figure, axes[0])
    _save(figure, path)


def plot_levels(per_level: Mapping[str, Mapping[str, float]], path: Path, model: str) -> None:
    """Recall@K of each level's similarity alone and fused (``per_level``: level -> metrics)."""
    import numpy as np

    plt = pyplot()
    levels = list(per_level)
    x = np.arange(len(levels))
    width = 0.8 / len(RECALL_KS)
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True, sharey=True)
    for axis, side in zip(axes, ("t2v", "v2t"), strict=True):
        for i, k in enumerate(RECALL_KS):
            axis.bar(x + (i - (len(RECALL_KS) - 1) / 2) * width,
                     [per_level[lvl][f"{side}_r{k}"] for lvl in levels], width, label=f"R@{k}")  # fmt: skip
        axis.set_xticks(x, levels)
        axis.set(title=f"{model}: {side} recall per level, test split", ylim=(0, 100))
        axis.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("recall (%)")
    _legend_above(figure, axes[0])
    _save(figure, path)


def loss_terms(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The top-level loss terms logged by any model, ``total`` first."""
    names = {key for history in histories.values() for h in history for key in h["loss"]
             if "/" not in key}  # fmt: skip
    return sorted(names, key=lambda name: (name != "total", name))


def plot_training(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> None:
    """One panel per loss term (each on its own scale) and one for validation rsum."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    terms = loss_terms(histories)
    panels = len(terms) + 1
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows),
                                constrained_layout=True, squeeze=False)  # fmt: skip
    flat = list(axes.flat)
    for axis, term in zip(flat, terms, strict=False):
        for name, history in histories.items():
            points = [(h["epoch"], h["loss"][term]) for h in history if term in h["loss"]]
            if points:
                axis.plot(*zip(*points, strict=True), marker=".", label=name)
        axis.set(title=f"training loss: {term}", xlabel="epoch", ylabel="mean loss per batch")
    rsum_axis = flat[len(terms)]
    for name, history in histories.items():
        validated = [h for h in history if "val" in h]
        rsum_axis.plot([h["epoch"] for h in validated],
                       [h["val"]["fused"]["rsum"] for h in validated], marker="o", label=name)  # fmt: skip
    rsum_axis.set(title="validation rsum (fused)", xlabel="epoch", ylabel="rsum (max 600)")
    for axis in flat[:panels]:
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_above(figure, rsum_axis)
    for axis in flat[panels:]:
        axis.set_visible(False)
    _save(figure, path)


def plot_validation(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> None:
    """Validation rsum per epoch of each level's score alone, the fused score and (when the
    run recorded it) the re-ranked score: one panel per model."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    names = [name for name, history in histories.items() if any("val" in h for h in history)]
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=(4.6 * max(1, len(names)), 3.4),
                                constrained_layout=True, squeeze=False)  # fmt: skip
    for axis, name in zip(axes.flat, names, strict=False):
        validated = [h for h in histories[name] if "val" in h]
        scores = list(dict.fromkeys(s for h in validated for s in h["val"]))
        for score in scores:
            points = [(h["epoch"], h["val"][score]["rsum"]) for h in validated
                      if score in h["val"]]  # fmt: skip
            style = {"linewidth": 2.4} if score in ("fused", "reranked") else {"alpha": 0.8}
            axis.plot(*zip(*points, strict=True), marker=".", label=score, **style)
        axis.set(title=f"{name}: validation rsum", xlabel="epoch", ylabel="rsum (max 600)")
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def twin_kinds(twins: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Twin kinds (levels or finer kinds) in report order: alphabetical, ``all`` last."""
    names = {kind for acc in twins.values() for kind in acc}
    return sorted(names, key=lambda name: (name == "all", name))


def plot_twins(twins: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> None:
    """Twin accuracy per kind and model with 95% intervals: captions that mention the
    change (when the world's ground truth is known) and all captions, in separate panels."""
    import numpy as np

    plt = pyplot()
    kinds = twin_kinds(twins)
    focused = any("focused_accuracy" in e for acc in twins.values() for e in acc.values())
    panels = [("focused_accuracy", "focused_pairs", "captions that mention the change")] * focused
    panels.append(("accuracy", "pairs", "all captions of the clip"))
    x = np.arange(len(kinds))
    width = 0.8 / max(1, len(twins))
    wide = min(14.0, max(7.0, 0.6 * len(kinds) * max(1, len(twins)) ** 0.5 + 2))
    figure, axes = plt.subplots(len(panels), 1, figsize=(wide, 3.6 * len(panels)),
                                constrained_layout=True, squeeze=False, sharex=True)  # fmt: skip
    for axis, (key, n_key, title) in zip(axes[:, 0], panels, strict=True):
        for i, (name, acc) in enumerate(twins.items()):
            values, low, high = [], [], []
            for kind in kinds:
                entry = acc.get(kind, {})
                value, n = float(entry.get(key, math.nan)), int(entry.get(n_key, 0))
                lo, hi = wilson_interval(value * n / 100, n) if n else (value, value)
                values.append(value)
                low.append(max(0.0, value - lo))
                high.append(max(0.0, hi - value))
            axis.bar(x + (i - (len(twins) - 1) / 2) * width, values, width, label=name,
                     yerr=[low, high], capsize=3)  # fmt: skip
        axis.axhline(50, color="grey", linestyle="--", linewidth=1, label="chance")
        axis.set_xticks(x, kinds, rotation=30 if len(kinds) > 5 else 0, ha="right"
                        if len(kinds) > 5 else "center")  # fmt: skip
        axis.set(title=f"twin accuracy, {title}", ylabel="clip above its twin (%)",
                 ylim=(0, 105))  # fmt: skip
        axis.grid(alpha=0.3, axis="y")
    axes[-1][0].set_xlabel("twin kind")
    _legend_above(figure, axes[0][0])
    _save(figure, path)
