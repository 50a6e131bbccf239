"""`mcsan serve`: the search HTTP API and web page over an index (uvicorn)."""

from __future__ import annotations

import argparse

from mcsan.core.validate import int_in


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve an index over HTTP: JSON API and a search page",
        description="GET / (page), /api/search?q=...&k=...&mode=..., /api/health, /media/<clip>. "
        "An index built without --checkpoint serves concept search alone.",
    )
    parser.add_argument("--index", required=True, help="index folder built by `mcsan index`")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int_in(0, 65535), default=8000, help="port (default 8000)")
    parser.add_argument(
        "--checkpoint", help="checkpoint to encode queries (default: the one that built it)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the index and the encoder, then serve until interrupted."""
    import uvicorn

    from mcsan.search.server import create_app

    app = create_app(args.index, checkpoint=args.checkpoint)
    print(f"serving {args.index} on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
