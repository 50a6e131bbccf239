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
    source.add_argument(
        "--add", nargs="+", metavar="DIR_OR_ID",
        help="add to the existing index --out: folders of clips (only clips it lacks are "
        "extracted and encoded) or video ids of the feature file it records; no rebuild",
    )
    source.add_argument(
        "--remove", nargs="+", metavar="ID", help="remove these video ids from the index --out"
    )
    source.add_argument(
        "--compact", action="store_true",
        help="rewrite the index --out without its removed clips and retrain its FAISS index "
        "(same kind; --index-type auto re-chooses by size); nothing is re-encoded",
    )
    source.add_argument(
        "--merge", nargs="+", metavar="PART",
        help="join shard indexes (built with --shard i/N) into --out; the FAISS index is "
        "built once over all of them, nothing is re-encoded",
    )
    parser.add_argument(
        "--shard", default=None,
        help="i/N: index only every N-th clip from the i-th (run N of these, then --merge)",
    )
    parser.add_argument("--out", required=True, help="index folder to write (replaced atomically)")
    parser.add_argument(
        "--index-type", choices=("auto", "flat", "ivf", "ivfpq", "qdrant"), default=None,
        help="FAISS index: flat (exact), ivf, ivfpq (compressed, beyond RAM); auto picks by "
        "collection size (flat below 100k clips; the choice is logged); qdrant: a Qdrant "
        "collection, embedded or the cluster at $MCSAN_QDRANT_URL ([qdrant] extra). "
        "Default: flat, or ivf with --approx",
    )
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

    if args.add or args.remove:
        return _change(args)
    if args.compact:
        from mcsan.search.compact import compact_index

        summary = compact_index(args.out, args.index_type)
        print(f"compacted {summary.out}: {summary.videos} videos kept, {summary.removed} "
              f"removed rows dropped, FAISS index retrained, in {summary.seconds:.1f} s")
        return 0
    if args.merge:
        from mcsan.search.index_shards import merge_indexes

        merged = merge_indexes(args.merge, args.out, args.index_type)
        print(f"merged {len(args.merge)} shard indexes ({len(merged)} videos, {merged.kind}) "
              f"into {args.out}")
        return 0
    shard = None
    if args.shard:
        from mcsan.data.video.shards import parse_shard

        shard = parse_shard(args.shard)
    summary = build_index(args.out, checkpoint=args.checkpoint, dataset=args.dataset,
                          videos=args.videos, approx=args.approx,
                          concepts=not args.no_concepts, index_type=args.index_type,
                          shard=shard)
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


def _change(args: argparse.Namespace) -> int:
    """``--add`` / ``--remove`` on the index in ``--out``."""
    from mcsan.search.grow import add_to_index, remove_from_index

    retriever = None
    if args.checkpoint:
        from mcsan.inference.retriever import Retriever

        retriever = Retriever.from_checkpoint(args.checkpoint)
    if args.add:
        summary = add_to_index(args.out, args.add, retriever)
        print(f"added {summary.added} videos to {summary.out} (now {summary.videos}) in "
              f"{summary.seconds:.1f} s; {len(summary.skipped)} already indexed")
    else:
        summary = remove_from_index(args.out, args.remove)
        print(f"removed {summary.removed} videos from {summary.out} (now {summary.videos}) "
              f"in {summary.seconds:.1f} s")
    for video_id in summary.failed:
        print(f"warning: could not decode {video_id}; left out of the index")
    return 0
