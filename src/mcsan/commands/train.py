"""`mcsan train`: train MCSAN from a run config (single process, or DDP under torchrun)."""

from __future__ import annotations

import argparse


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
    parser.add_argument(
        "--config", help="run config: a YAML path or a built-in name (world, msrvtt, vatex)"
    )
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


def run(args: argparse.Namespace) -> int:
    """Load the config, train (one log line per epoch on stderr), print the best table."""
    import os
    from pathlib import Path

    from mcsan.config.run import load_config
    from mcsan.core.validate import check_device
    from mcsan.evaluate.split import format_metrics_table
    from mcsan.train.distributed import launched_by_torchrun
    from mcsan.train.trainer import train

    cfg = load_config(args.config, args.overrides)
    check_device(cfg.train.device, "train.device")  # present in this build, before any work
    main_rank = not launched_by_torchrun() or os.environ.get("RANK", "0") == "0"
    result = train(cfg, args.out, resume=args.resume)
    if main_rank:
        if result.dropped_captions:
            print(f"dropped {result.dropped_captions} caption(s) whose video has no features")
        print(f"best epoch {result.best_epoch} (validation):")
        print(format_metrics_table(result.best_metrics))
        run = Path(result.out_dir).resolve()
        print(f"best checkpoint: {run / 'best.pt'} (last: {run / 'last.pt'})")
    return 0
