"""`mcsan index`: encode a video collection with a trained checkpoint into a search index."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` subcommand."""
    parser = subparsers.add_parser(
        "index",
        help="build a search index of a folder of clips or a native dataset",
        description="Extract features if needed (with the checkpoint's feature spec), encode "
        "every video at the four levels and store them with a FAISS index.",
    )
    parser.add_argument("--checkpoint", required=True, help="trained checkpoint, e.g. RUN/best.pt")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--videos", help="folder of clips (.mp4, ...) to index")
    source.add_argument("--dataset", help="native dataset folder whose features to index")
    parser.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    parser.add_argument(
        "--approx", action="store_true", help="approximate IVF index (for large collections)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the index and print a summary."""
    from mcsan.inference import Retriever
    from mcsan.search.build import index_dataset, index_videos

    retriever = Retriever.from_checkpoint(args.checkpoint)
    build = index_videos if args.videos else index_dataset
    summary = build(
        retriever, args.videos or args.dataset, args.out,
        approx=args.approx, checkpoint=args.checkpoint,
    )
    print(
        f"indexed {summary.videos} videos ({summary.kind}) into {summary.out} in "
        f"{summary.seconds:.1f} s; features: {summary.extracted} extracted, "
        f"{summary.reused} reused ({summary.feature_file}); {summary.with_media} with clips"
    )
    for video_id in summary.failed:
        print(f"warning: could not decode {video_id}; left out of the index")
    return 0
