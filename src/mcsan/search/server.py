"""The HTTP API and web page over an index (FastAPI; run it with uvicorn).

    GET /api/health             index size, modes, levels, weights, checkpoint, dataset, domain,
                                example queries from the index's own vocabulary
    GET /api/search?q=...&k=...&mode=auto|concepts|model
                                ranked hits, matched concepts, unknown words, warnings,
                                per-stage times (``timings``: encode, first_stage,
                                second_stage, concepts, total; milliseconds)
    GET /media/{path}           a clip of the index, only from the index's media root
    GET /                       the search page (static/index.html)

Every client mistake gets a 4xx with ``{"error": message}``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mcsan.core.errors import MCSANError
from mcsan.inference.encoder import Encoder
from mcsan.search.batching import BatchedEncoder, one_blas_thread
from mcsan.search.concepts import ConceptBank
from mcsan.search.honesty import concept_domain_line
from mcsan.search.index import VideoIndex
from mcsan.search.index_identity import changed_files
from mcsan.search.library import open_searcher, rerank_fields
from mcsan.search.searcher import Searcher

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
SEARCH_PARAMS = frozenset({"q", "k", "mode", "rerank"})
RERANK_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
VIDEO_SUFFIXES = frozenset({".mp4", ".webm", ".m4v"})
IMAGE_SUFFIXES = frozenset({".gif", ".jpg", ".jpeg", ".png", ".webp"})
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


class ClientError(Exception):
    """A request the client must change: becomes ``status`` with a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_media(index: VideoIndex, requested: str) -> Path:
    """The file under the index's media root that ``requested`` names; ClientError otherwise.

    Refuses absolute paths, ``..`` segments, backslashes, NUL bytes, files the index does
    not list, unknown file types and anything (symlinks included) resolving outside the root.
    """
    if index.media_root is None:
        raise ClientError(404, "this index has no media folder; it was built from features only")
    if "\x00" in requested or "\\" in requested:
        raise ClientError(400, "media path contains a NUL byte or a backslash")
    posix = PurePosixPath(requested)
    if requested.startswith("/") or posix.is_absolute():
        raise ClientError(400, "media path must be relative to the index's media folder")
    if any(part in ("..", ".") for part in requested.split("/")):
        raise ClientError(400, "media path must not contain '.' or '..' segments")
    if posix.suffix.lower() not in MEDIA_SUFFIXES:
        raise ClientError(404, f"{requested!r} is not a clip or thumbnail of this index")
    if requested not in _known_media(index):
        raise ClientError(404, f"{requested!r} is not a clip of this index")
    try:  # a symlink loop raises RuntimeError (Python < 3.13) or OSError
        root = Path(index.media_root).resolve()
        target = (root / posix).resolve()
    except (RuntimeError, OSError):
        raise ClientError(404, f"{requested!r} is a broken link (a symlink loop)") from None
    if not target.is_relative_to(root):
        raise ClientError(403, f"{requested!r} points outside the index's media folder")
    if not target.is_file():
        raise ClientError(404, f"{requested!r} is listed in the index but missing on disk")
    return target


def _known_media(index: VideoIndex) -> frozenset[str]:
    known = getattr(index, "_known_media_cache", None)
    if known is None:
        known = frozenset(p for p in index.paths if p)
        index._known_media_cache = known  # type: ignore[attr-defined]
    return known


def media_fields(path: str | None) -> dict[str, str | None]:
    """``media_url`` and ``media_kind`` (video / image / None) of a hit's clip for the page."""
    suffix = PurePosixPath(path).suffix.lower() if path else ""
    if suffix in VIDEO_SUFFIXES:
        kind = "video"
    elif suffix in IMAGE_SUFFIXES:
        kind = "image"
    else:
        return {"media_url": None, "media_kind": None}
    return {"media_url": f"/media/{quote(path or '')}", "media_kind": kind}


def parse_search_params(request: Request) -> tuple[str, str, str, bool]:
    """The raw ``q``, ``k`` and ``mode`` of a search request and its ``rerank`` switch
    (default on); ClientError on unknown, repeated or invalid ones."""
    params = request.query_params
    unknown = sorted(set(params.keys()) - SEARCH_PARAMS)
    if unknown:
        raise ClientError(400, f"unknown parameter(s) {unknown}; use only q, k, mode and rerank")
    for name in SEARCH_PARAMS:
        if len(params.getlist(name)) > 1:
            raise ClientError(400, f"parameter {name!r} given more than once")
    if "q" not in params:
        raise ClientError(400, "missing parameter q; pass the query text as ?q=...")
    rerank = params.get("rerank", "1").strip().lower()
    if rerank not in RERANK_VALUES:
        raise ClientError(400, f"rerank must be 1 or 0 (true / false), got {rerank!r}")
    return params["q"], params.get("k", "10"), params.get("mode", "auto"), RERANK_VALUES[rerank]


def health_fields(searcher: Searcher) -> dict[str, Any]:
    """What an index can answer: modes, model (checkpoint, dataset, domain), concepts."""
    index = searcher.index
    model = searcher.model or {}
    domains = [model["domain"]] if model.get("domain") else []
    if index.concepts is not None:
        domains.append(concept_domain_line())
    return {
        "modes": searcher.modes(),
        "checkpoint": model.get("checkpoint"),
        "dataset": model.get("dataset"),
        "vocabulary_size": model.get("vocabulary_size"),
        "concepts": index.concepts.info if index.concepts is not None else None,
        "rerank": rerank_fields(searcher),
        "domain": " ".join(domains),
    }


class LiveSearcher:
    """The searcher of an index folder, reopened when the folder changes (``mcsan index --add``
    / ``--remove`` / a rebuild swap in a new meta.json): each request compares meta.json's
    inode and modification time with the loaded one's; a changed index is loaded once, logged,
    and used from then on. A rebuild with another checkpoint is refused (the old one stays)."""

    def __init__(self, index_dir: str | os.PathLike[str], searcher: Searcher,
                 bank: ConceptBank | None) -> None:  # fmt: skip
        """``searcher`` was opened from ``index_dir``."""
        self.index_dir = Path(index_dir)
        self.searcher = searcher
        self.bank = bank
        self.stamp = _stamp(self.index_dir)
        self._lock = threading.Lock()

    def current(self) -> Searcher:
        """The searcher of the index as it is on disk now."""
        stamp = _stamp(self.index_dir)
        if stamp is None or stamp == self.stamp:
            return self.searcher
        with self._lock:
            if stamp != self.stamp:
                self._reload(stamp)
        return self.searcher

    def _reload(self, stamp: tuple[int, int]) -> None:
        old = self.searcher
        try:
            index = VideoIndex.load(self.index_dir)
            searcher = Searcher(index, old.retriever, old._bank or self.bank,
                                where=f"index {self.index_dir}")  # fmt: skip
        except MCSANError as exc:
            log.warning("index %s changed but cannot be used (%s); still serving version %d",
                        self.index_dir, exc, old.index.version)  # fmt: skip
            self.stamp = stamp
            return
        log.info("index %s changed: reloaded (version %d -> %d, %d clips)", self.index_dir,
                 old.index.version, index.version, len(index))  # fmt: skip
        self.searcher, self.stamp = searcher, stamp


def _stamp(index_dir: Path) -> tuple[int, int] | None:
    """(inode, mtime) of the index's meta.json (None mid-swap or when missing)."""
    try:
        info = (index_dir / "meta.json").stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns


def _json_errors(app: FastAPI) -> None:
    """Every error of ``app`` as ``{"error": message}`` with its status (never a 500 page)."""

    @app.exception_handler(ClientError)
    async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(MCSANError)
    async def _mcsan_error(_: Request, exc: MCSANError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {exc.errors()}"}, status_code=400)


def _search_body(searcher: Searcher, answer: Any) -> dict[str, Any]:
    """The JSON of ``/api/search``: the answer, its hits with media links, the model."""
    index = searcher.index
    body = answer.to_json()
    body["hits"] = [{**hit.to_json(), **media_fields(hit.path)} for hit in answer.hits]
    model = searcher.model or {}
    return {
        **body,
        "k": len(answer.hits),
        "levels": list(index.levels) if answer.mode != "concepts" else [],
        "weights": index.weights,
        "dataset": model.get("dataset"),
        "checkpoint": model.get("checkpoint"),
        "rerank": rerank_fields(searcher),
        "version": index.version,
    }


def create_app(
    index_dir: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    retriever: Encoder | None = None,
    bank: ConceptBank | None = None,
) -> FastAPI:
    """The search app over the index in ``index_dir`` (see :func:`open_searcher`).

    Requests run in parallel threads; their model work is batched on one worker
    (:mod:`mcsan.search.batching`). The index is reloaded when it changes on disk."""
    searcher = open_searcher(index_dir, checkpoint, retriever, bank)
    one_blas_thread()  # request threads' numpy products must not spin-wait on each other
    if searcher.retriever is not None:
        searcher = Searcher(searcher.index, BatchedEncoder(searcher.retriever), searcher._bank,
                            where=f"index {index_dir}")  # fmt: skip
    if searcher.index.concepts is not None:
        _ = searcher.bank  # read GloVe now, not on the first query
    from mcsan.search.example_queries import example_queries

    examples = example_queries(searcher)
    live = LiveSearcher(index_dir, searcher, searcher._bank)

    app = FastAPI(title="mcsan search", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.live = live
    app.state.index = searcher.index
    app.state.retriever = getattr(searcher.retriever, "encoder", None)
    app.state.searcher = searcher

    _json_errors(app)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        searcher = live.current()
        index = searcher.index
        return {
            "status": "ok",
            "videos": len(index),
            "version": index.version,
            "levels": list(index.levels),
            "weights": index.weights,
            "kind": index.kind,
            "checkpoint_sha256": index.checkpoint_sha256,
            "has_media": index.media_root is not None,
            **health_fields(searcher),
            "examples": examples,
        }

    @app.get("/api/search")
    def api_search(request: Request) -> JSONResponse:
        query, k, mode, rerank = parse_search_params(request)
        searcher = live.current()
        index = searcher.index
        if changed := changed_files(index.directory, index.on_disk):  # never a half-read index
            raise ClientError(503, f"{changed} in place; rebuild it with `mcsan index` (a new "
                              "meta.json, as `mcsan index` writes, is reloaded by itself)")
        # encoded here (json.dumps) rather than by FastAPI's encoder on the event loop:
        # 0.05 ms a body instead of 0.7 ms, which 30 concurrent answers waited for in turn
        return JSONResponse(_search_body(searcher, searcher.answer(query, k, mode, rerank)))

    @app.get("/media/{requested:path}")
    def media(requested: str) -> FileResponse:
        return FileResponse(resolve_media(live.current().index, requested))

    @app.get("/")
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
