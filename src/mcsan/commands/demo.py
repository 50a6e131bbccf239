"""`mcsan demo`: the whole pipeline on the embedded default, MCSAN vs the global-only baseline."""

from __future__ import annotations

import argparse

from mcsan.core.validate import MAX_FRAMES, MAX_SIZE, int_in, non_negative_int, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="generate the synthetic world, extract, train MCSAN and its baseline, report",
        description="Runs every stage on the embedded default and writes OUT/REPORT.md. "
        "Each stage is cached: a second run reuses finished work.",
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (under a minute)")
    parser.add_argument(
        "--config", default="world", help="run config: a built-in name (default world) or a YAML path"
    )
    parser.add_argument("--videos", type=int_in(1, 1_000_000), help="clips in the world")
    parser.add_argument("--frames", type=int_in(2, MAX_FRAMES), help="frames per clip")
    parser.add_argument("--size", type=int_in(16, MAX_SIZE), help="frame size in px")
    parser.add_argument("--twins", type=non_negative_int, help="test clips that get twins")
    parser.add_argument(
        "--epochs", type=positive_int, help="training epochs (default 9, --quick 2)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        "--workers", type=int_in(1, 64), default=2, help="processes for rendering/decoding"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override for both models, e.g. train.batch_size=32",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo, print each stage's summary and the main table."""
    from mcsan.apps.demo import DemoSettings, run_demo
    from mcsan.evaluate.ceiling import ceiling_lines, with_oracle_row
    from mcsan.evaluate.split import SMALL_SAMPLE_VIDEOS, format_metrics_table, small_sample_warning

    given = {
        key: getattr(args, key)
        for key in ("videos", "frames", "size", "twins", "epochs")
        if getattr(args, key) is not None
    }
    common = {"seed": args.seed, "workers": args.workers, "config": args.config,
              "extra_overrides": tuple(args.overrides)}  # fmt: skip
    settings = (DemoSettings.quick(**given, **common) if args.quick
                else DemoSettings(**given, **common))  # fmt: skip
    result = run_demo(
        settings, args.out,
        on_stage=lambda s: print(f"[{s.name}] {s.summary} ({s.seconds:.1f} s)", flush=True),
    )
    print()
    print("Test split, fused score (re-ranked: the binding matcher's second stage):")
    tables, oracle = result.metric_tables("test"), result.oracle("test")
    print(format_metrics_table(with_oracle_row(tables, oracle)))
    for line in ceiling_lines(tables, oracle):
        print(line)
    test_videos = next(iter(result.variants.values())).metrics["test"]["videos"]
    if test_videos < SMALL_SAMPLE_VIDEOS:
        print(small_sample_warning(test_videos))
    print()
    for name, accuracy in result.twins.items():
        levels = ", ".join(
            f"{lvl} {v['accuracy']:.1f}% ({v.get('focused_accuracy', float('nan')):.1f}% focused)"
            for lvl, v in accuracy.items()
        )
        print(f"twin accuracy {name}: {levels}")
    total = sum(s.seconds for s in result.stages)
    print()
    for name, variant in result.variants.items():
        print(f"best checkpoint {name}: {variant.run_dir / 'best.pt'}")
    print(f"report: {result.report_path}  (total {total:.0f} s)")
    return 0
