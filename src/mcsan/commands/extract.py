"""`mcsan extract`: frame features of a folder of clips into a FeatureStore.

mcsan extract --videos DIR --out FEATURES.h5 [--frames T] [--size PX] [--grid G]
              [--streams a,b,c] [--shard i/N] [--batch B] [--allow-failures]
mcsan extract --out FEATURES.h5 --merge [SHARD.h5 ...]   (default: FEATURES.shard*of*.h5)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mcsan.core.validate import MAX_FRAMES, MAX_SIZE, device_arg, float_in, int_in, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``extract`` subcommand."""
    parser = subparsers.add_parser(
        "extract",
        help="extract frame features of video clips (resumable, sharded)",
        description="Decode clips, run the pretrained frame encoder, store features. "
        "A killed run resumes where it stopped when started again with the same command.",
    )
    parser.add_argument("--videos", type=Path, help="folder of clips (or of image folders)")
    parser.add_argument("--out", type=Path, required=True, help="the FeatureStore (.h5)")
    parser.add_argument(
        "--frames", type=int_in(1, MAX_FRAMES), default=16, help="frames per clip (default 16)"
    )
    parser.add_argument(
        "--size", type=int_in(16, MAX_SIZE), default=224, help="frame size in px (default 224)"
    )
    parser.add_argument(
        "--fps", type=float_in(0.0, 240.0), default=None, help="sample at a fixed rate instead"
    )
    parser.add_argument(
        "--grid", type=int_in(1, 16), default=2, help="G of *_grid streams (default 2)"
    )
    parser.add_argument(
        "--streams",
        default="world",
        help="comma list: head, head_grid<G>, block10, block10_grid<G>, rgbhist, or 'world' "
        "(= head_grid2,block10,rgbhist,block10_grid4; the default)",
    )
    parser.add_argument("--backbone", default="efficientnet_lite0",
                        help="pretrained frame encoder (default efficientnet_lite0)")
    parser.add_argument("--shard", default=None, help="i/N: this process does shard i of N")
    parser.add_argument("--batch", type=int_in(1, 4096), default=64,
                        help="frames per forward pass (default 64)")
    parser.add_argument("--workers", type=int_in(1, 64), default=2,
                        help="decoding threads (default 2)")
    parser.add_argument(
        "--device", type=device_arg, default="cpu",
        help="torch device of the backbone: cpu (default), cuda or cuda:N",
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=64,
        help="videos per saved part, the resume unit (default 64)",
    )
    parser.add_argument("--allow-failures", action="store_true", help="exit 0 despite failures")
    parser.add_argument("--allow-missing-shards", action="store_true",
                        help="--merge: merge although a shard i/N is missing (named)")
    parser.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=None,
        metavar="SHARD",
        help="merge shard files into --out instead of extracting",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Extract (or merge) and print a one-line summary; non-zero exit if anything failed."""
    from mcsan.core.errors import ConfigError, DataError
    from mcsan.data.video.decode import VIDEO_EXTENSIONS, list_videos
    from mcsan.data.video.extract import (
        extract_features,
        find_shards,
        merge_shards,
        parse_shard,
        record_feature_set,
        shard_from_env,
    )

    if args.merge is not None:
        shards = list(args.merge) or find_shards(args.out)
        if not shards:
            raise ConfigError(f"{args.out}: no shard files given or found next to it")
        count = merge_shards(shards, args.out, allow_missing=args.allow_missing_shards)
        record_feature_set(args.out.resolve().parent.parent, args.out)
        print(f"{args.out}: merged {len(shards)} files, {count} videos")
        return 0
    if args.videos is None:
        raise ConfigError("give --videos DIR (or --merge to join shard files)")
    shard = parse_shard(args.shard) if args.shard else shard_from_env()
    videos = list_videos(args.videos)
    if not videos:
        raise DataError(
            f"{args.videos}: no clips found (video files {', '.join(sorted(VIDEO_EXTENSIONS))} "
            "or folders of images); check --videos"
        )
    summary = extract_features(
        videos,
        args.out,
        backbone=args.backbone,
        frames=args.frames,
        size=args.size,
        grid=args.grid,
        streams=args.streams,
        fps=args.fps,
        shard=shard,
        batch_frames=args.batch,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
    )
    if shard is None:  # extracting <root>/videos of a native dataset: list it in the card
        record_feature_set(args.videos.resolve().parent, summary.out_path)
    print(summary.line())
    if summary.failed and not args.allow_failures:
        print(
            f"error: {summary.failed} clips failed (listed in the failures file); "
            "fix or remove them, or pass --allow-failures",
            file=sys.stderr,
        )
        return 1
    return 0
