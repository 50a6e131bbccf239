"""`mcsan ablate`: the ablation table (each level off, KL off, separate heads, BCE, ...)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablate`` subcommand."""
    from mcsan.ablation import VARIANTS

    parser = subparsers.add_parser(
        "ablate",
        help="train and evaluate MCSAN's ablations on one config",
        description="Variants: " + "; ".join(
            f"{name} ({' '.join(sets) or 'the full model'})" for name, sets in VARIANTS.items()
        ),
    )  # fmt: skip
    parser.add_argument("--config", required=True, help="base run config: YAML path or built-in name")
    parser.add_argument("--out", required=True, help="folder; each variant trains in OUT/NAME")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of variants")
    parser.add_argument("--split", default="test", help="split to report (default test)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override for every variant")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train each variant (resuming finished work), print the fused table, write JSON."""
    import json
    from pathlib import Path

    from mcsan.ablation import fused_table, run_ablation
    from mcsan.evaluate import format_metrics_table
    from mcsan.io import atomic_write_json

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results = run_ablation(
        args.config, args.out, variants, args.overrides, (args.split,),
        on_variant=lambda r: print(f"[{r.name}] best epoch {r.best_epoch}, "
                                   f"{args.split} rsum {r.metrics[args.split]['metrics']['fused']['rsum']:.1f}"),
    )  # fmt: skip
    table = fused_table(results, args.split)
    print(format_metrics_table(table))
    atomic_write_json(Path(args.out) / f"ablation_{args.split}.json", json.loads(json.dumps(table)))
    return 0
