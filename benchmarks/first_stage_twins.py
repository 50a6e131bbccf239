"""The first stage's binding, per checkpoint: test rsum (fused and re-ranked) and focused
twin accuracy per twin kind from the fused score and from the re-ranked score (issue 25).

Writes one JSON per checkpoint (``--out DIR/<run>.json``) and prints a markdown row each;
with several checkpoints per variant (``VARIANT=path`` arguments) the table gives mean
+/- sd over them.

    PYTHONPATH=src .venv/bin/python benchmarks/first_stage_twins.py WORLD \
        base=/tmp/r/base/best.pt twins=/tmp/r/twins/best.pt --out /tmp/r/eval
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mcsan.inference.checkpoint import load_checkpoint
from mcsan.inference.retriever import evaluate_checkpoint
from mcsan.inference.twins import evaluate_twin_scores

KINDS = ("entity/binding", "action/binding", "relation/swapped", "relation/changed",
         "entity/changed", "action/changed")  # fmt: skip


def measure(checkpoint: Path, world: Path, split: str) -> dict:
    """rsum and focused twin accuracy of one checkpoint (fused, and re-ranked if it can)."""
    model = load_checkpoint(checkpoint)["config"]["model"]
    scores = ("fused", "reranked") if model.get("rerank") and len(model["levels"]) > 1 \
        else ("fused",)
    metrics = evaluate_checkpoint(checkpoint, split, dataset=world)["metrics"]
    twins = evaluate_twin_scores(checkpoint, world, scores)
    out = {"checkpoint": str(checkpoint), "rsum": {s: metrics[s]["rsum"] for s in scores}}
    for score in scores:
        out[score] = {k: twins[score][k].get("focused_accuracy") for k in KINDS
                      if k in twins[score]}  # fmt: skip
    out["levels"] = {lvl: metrics[lvl]["rsum"] for lvl in model["levels"] if lvl in metrics}
    return out


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} +/- {np.std(values, ddof=1):.1f}"


def table(results: dict[str, list[dict]]) -> str:
    """Markdown: per variant, n, fused / re-ranked rsum, fused and re-ranked focused twins."""
    head = ["variant", "n", "fused rsum", "re-ranked rsum",
            *(f"fused {k}" for k in KINDS[:4]), *(f"re-ranked {k}" for k in KINDS[:4])]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, runs in results.items():
        col: dict[str, list[float]] = defaultdict(list)
        for run in runs:
            for score, value in run["rsum"].items():
                col[f"rsum/{score}"].append(value)
            for score in ("fused", "reranked"):
                for kind, value in run.get(score, {}).items():
                    if value is not None:
                        col[f"{score}/{kind}"].append(value)
        cells = [name, str(len(runs)), _cell(col["rsum/fused"]), _cell(col["rsum/reranked"]),
                 *(_cell(col[f"fused/{k}"]) for k in KINDS[:4]),
                 *(_cell(col[f"reranked/{k}"]) for k in KINDS[:4])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Measure every ``VARIANT=checkpoint`` argument and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("runs", nargs="+", help="VARIANT=path/to/best.pt (repeat a variant "
                        "for several seeds)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, default=None, help="folder for one JSON per run")
    args = parser.parse_args()
    results: dict[str, list[dict]] = defaultdict(list)
    for spec in args.runs:
        name, _, path = spec.partition("=")
        path = Path(path)
        cached = args.out / f"{name}__{path.parent.name}.json" if args.out else None
        if cached is not None and cached.is_file():
            results[name].append(json.loads(cached.read_text()))
            continue
        result = measure(path, args.world, args.split)
        results[name].append(result)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(result, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
