"""`mcsan index`: build a search index of a video collection (concepts and/or a trained model)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` subcommand."""
    parser = subparsers.add_parser(
        "index",
        help="build a search index of a folder of clips or a native dataset",
        description="For a folder of clips: keep the frame encoder's ImageNet class "
        "probabilities per clip (concept search, no training needed) and, with --checkpoint, "
        "encode every clip at the four levels of a trained model with a FAISS index. For a "
        "native dataset (--dataset): the model's embeddings of its features.",
    )
    parser.add_argument(
        "--checkpoint", help="trained checkpoint, e.g. RUN/best.pt (omit: concepts only)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--videos", help="folder of clips (.mp4, ...) to index")
    source.add_argument("--dataset", help="native dataset folder whose features to index")
    parser.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    parser.add_argument(
        "--approx", action="store_true", help="approximate IVF index (for large collections)"
    )
    parser.add_argument(
        "--no-concepts", action="store_true",
        help="do not keep concept scores (a folder of clips with --checkpoint only)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the index and print a summary."""
    from mcsan.search.build import build_index

    summary = build_index(args.out, checkpoint=args.checkpoint, dataset=args.dataset,
                          videos=args.videos, approx=args.approx,
                          concepts=not args.no_concepts)
    parts = []
    if args.checkpoint:
        parts.append(f"model embeddings ({summary.kind})")
    if args.videos and not args.no_concepts:
        parts.append("concept scores")
    print(
        f"indexed {summary.videos} videos ({' + '.join(parts)}) into {summary.out} in "
        f"{summary.seconds:.1f} s; features: {summary.extracted} extracted"
        f"{f' ({summary.changed} of them: clips changed since the last run)' if summary.changed else ''}, "
        f"{summary.reused} reused; {summary.with_media} with clips"
    )
    for video_id in summary.failed:
        print(f"warning: could not decode {video_id}; left out of the index")
    return 0
