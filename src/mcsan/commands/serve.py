"""`mcsan serve`: the search HTTP API and web page over an index (uvicorn)."""

from __future__ import annotations

import argparse
import socket

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
    parser.add_argument("--port", type=int_in(0, 65535), default=8000, help="port (default 8000; 0: a free one, printed)")
    parser.add_argument(
        "--checkpoint", help="checkpoint to encode queries (default: the one that built it)"
    )
    parser.add_argument(
        "--threads", type=int_in(1, 256), default=1,
        help="torch threads of the model (default 1: batched model work runs on one thread "
        "while the others read and answer requests; more spin-wait on a busy machine)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the index and the encoder, then serve until interrupted."""
    import torch
    import uvicorn

    from mcsan.search.server import create_app

    torch.set_num_threads(args.threads)

    app = create_app(args.index, checkpoint=args.checkpoint)
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]  # the one the system chose for --port 0
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {args.index} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    return 0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port); SearchError naming both."""
    from mcsan.core.errors import SearchError

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until the app is up
    except (OSError, OverflowError) as exc:
        sock.close()
        raise SearchError(f"{host}:{port}: cannot listen there ({exc}); choose another --port "
                          "(0 picks a free one) or --host") from exc  # fmt: skip
    return sock
