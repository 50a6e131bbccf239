"""`mcsan ablate`: the ablation table (each level off, KL off, separate heads, BCE, ...)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablate`` subcommand."""
    from mcsan.apps.ablation import VARIANTS

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
    parser.add_argument("--seeds", type=int, default=1,
                        help="train every variant with seeds 0..N-1 (in OUT/NAME/seed<k>) and "
                             "report mean +/- sd of every number (default 1: the config's seed)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override for every variant")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train each variant and seed (resuming finished work), print the mean +/- sd table
    (fused metrics and focused twin accuracy per level and kind), write JSON."""
    from pathlib import Path

    from mcsan.apps.ablation import (
        csv_summary,
        format_summary,
        markdown_summary,
        run_ablation,
        run_numbers,
        summarize,
        table_keys,
    )
    from mcsan.core.io import atomic_write_json, atomic_write_text

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    def progress(r) -> None:  # noqa: ANN001 - a VariantResult
        seed = "" if r.seed is None else f" seed {r.seed}"
        fused = r.metrics[args.split]["metrics"]["fused"]
        print(f"[{r.name}{seed}] best epoch {r.best_epoch}, {args.split} rsum "
              f"{fused['rsum']:.1f}", flush=True)  # fmt: skip

    results = run_ablation(
        args.config, args.out, variants, args.overrides, (args.split,), on_variant=progress,
        seeds=args.seeds,
    )  # fmt: skip
    summary = summarize(results, args.split)
    keys = table_keys(summary)
    print(format_summary(summary, keys))
    runs = {name: [run_numbers(r, args.split) for r in rs] for name, rs in results.items()}
    out = Path(args.out)
    atomic_write_json(
        out / f"ablation_{args.split}.json",
        {"seeds": args.seeds, "summary": summary, "runs": runs},
    )
    atomic_write_text(out / "ablation.md", markdown_summary(summary, keys, args.split))
    atomic_write_text(out / "ablation.csv", csv_summary(summary, keys))
    print(f"wrote {out / 'ablation.md'}, {out / 'ablation.csv'} and "
          f"{out / f'ablation_{args.split}.json'}")
    return 0
