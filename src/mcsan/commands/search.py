"""`mcsan search`: rank an index's videos for a text query."""

from __future__ import annotations

import argparse

from mcsan.validate import int_in


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help="search an index with a text query",
        description="Rank the videos of an index for a query: fused score and each level's "
        "contribution (global, entity, action, relation).",
    )
    parser.add_argument("--index", required=True, help="index folder built by `mcsan index`")
    parser.add_argument("query", help='the query text, e.g. "a red ball chases a blue cube"')
    parser.add_argument(
        "-k", type=int_in(1, 10_000), default=10, help="number of results (default 10)"
    )
    parser.add_argument(
        "--checkpoint", help="checkpoint to encode the query (default: the one that built it)"
    )
    parser.add_argument("--json", action="store_true", help="print the hits as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the ranked hits as a table or JSON."""
    import json

    from mcsan.search import VideoIndex, search
    from mcsan.search.server import load_retriever

    index = VideoIndex.load(args.index)
    checkpoint = args.checkpoint or index.extra.get("checkpoint")
    if not checkpoint:
        from mcsan.errors import SearchError

        raise SearchError(f"{args.index}: the index records no checkpoint; pass --checkpoint")
    hits = search(index, load_retriever(checkpoint), args.query, args.k)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_json() for h in hits]}, indent=2))
        return 0
    levels = index.levels
    header = f"{'rank':>4}  {'score':>7}  " + "  ".join(f"{lv:>8}" for lv in levels) + "  video"
    print(header)
    for hit in hits:
        parts = "  ".join(f"{hit.level_scores[lv]:>8.4f}" for lv in levels)
        where = f"{hit.video_id}  {hit.path}" if hit.path else hit.video_id
        print(f"{hit.rank:>4}  {hit.score:>7.4f}  {parts}  {where}")
    return 0
