"""Which level tells the twins apart? Focused twin accuracy per twin kind, from the fused
score and from each level's score alone (and, for a model with a binding matcher, from the
re-ranked score and the match score alone), for one or more checkpoints.

A level's score alone ties on captions that name nothing at that level (both clips score
the same); ties count as misses, as in the fused accuracy.

    PYTHONPATH=src .venv/bin/python benchmarks/twin_levels.py WORLD RUN/best.pt [RUN2/best.pt ...]

With ``--margins``: how far apart the first stage puts a clip and its twin instead
(:mod:`twin_margins`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mcsan.inference.checkpoint import load_checkpoint
from mcsan.inference.twins import MATCHER_SCORES, evaluate_twin_scores


def main() -> None:
    """Print one markdown table per checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--margins", action="store_true",
                        help="print twin_margins.py's table (clip and score margins) instead")
    args = parser.parse_args()
    if args.margins:
        from twin_margins import print_margins

        print_margins(args.world, args.checkpoints)
        return
    for checkpoint in args.checkpoints:
        model = load_checkpoint(checkpoint)["config"]["model"]
        matcher = MATCHER_SCORES if model.get("rerank") and len(model["levels"]) > 1 else ()
        table = evaluate_twin_scores(checkpoint, args.world,
                                     ("fused", *model["levels"], *matcher))  # fmt: skip
        kinds = [k for k in table["fused"] if "/" in k]
        print(f"\n{checkpoint} (focused accuracy, %)\n")
        print("| score | " + " | ".join(kinds) + " |")
        print("|---|" + "---:|" * len(kinds))
        for score, result in table.items():
            cells = [f"{result[k].get('focused_accuracy', float('nan')):.1f}" for k in kinds]
            print(f"| {score} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
