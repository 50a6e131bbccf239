"""`mcsan train`: train MCSAN from a run config (single process, or DDP under torchrun)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a native dataset",
        description=(
            "Train MCSAN; validate on the val split each epoch; keep RUN/best.pt (best val "
            "rsum) and RUN/last.pt. Under `torchrun --nproc_per_node N -m mcsan train ...` "
            "the same command trains data-parallel (gloo on CPU, nccl on CUDA)."
        ),
    )
    parser.add_argument("--config", help="run config YAML (default: built-in defaults)")
    parser.add_argument("--out", required=True, help="run folder (checkpoints, logs, metrics)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/last.pt")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.epochs=5 --set model.levels=[global]",
    )
    parser.set_defaults(func=run)


def _epoch_line(record: dict[str, Any]) -> str:
    line = (
        f"epoch {record['epoch']:3d}  loss {record['loss'].get('total', float('nan')):.4f}  "
        f"{record['pairs_per_second']:.0f} pairs/s"
    )
    val = record.get("val")
    if val:
        fused = val["fused"]
        line += (
            f"  val rsum {fused['rsum']:.1f} (t2v R@1 {fused['t2v_r1']:.1f}, "
            f"v2t R@1 {fused['v2t_r1']:.1f})"
        )
    return line


def run(args: argparse.Namespace) -> int:
    """Load the config, train, print one line per epoch and the best validation table."""
    import os

    from mcsan.config import load_config
    from mcsan.distributed import launched_by_torchrun
    from mcsan.evaluate import format_metrics_table
    from mcsan.train import train
    from mcsan.validate import check_device

    cfg = load_config(args.config, args.overrides)
    check_device(cfg.train.device, "train.device")  # present in this build, before any work
    main_rank = not launched_by_torchrun() or os.environ.get("RANK", "0") == "0"
    result = train(
        cfg,
        args.out,
        resume=args.resume,
        on_epoch=(lambda record: print(_epoch_line(record), flush=True)) if main_rank else None,
    )
    if main_rank:
        if result.dropped_captions:
            print(f"dropped {result.dropped_captions} caption(s) whose video has no features")
        print(f"best epoch {result.best_epoch} (validation):")
        print(format_metrics_table(result.best_metrics))
        print(f"checkpoints: {result.out_dir / 'best.pt'}, {result.out_dir / 'last.pt'}")
    return 0
