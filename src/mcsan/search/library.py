"""The library's way to search: open an index with its model and answer a query exactly as
``mcsan search`` and the server do (the mode, the binding matcher's re-ranking, warnings).

``search(index_dir, "a red ball", k=5)`` opens the index once per call; for many queries keep
``open_searcher(index_dir)`` and call its ``answer``.
"""

from __future__ import annotations

import os
from typing import Any

from mcsan.core.errors import SearchError
from mcsan.inference.encoder import Encoder
from mcsan.search.concepts import ConceptBank
from mcsan.search.index import VideoIndex
from mcsan.search.modes import Answer
from mcsan.search.searcher import Searcher


def load_retriever(checkpoint: str | os.PathLike[str]) -> Encoder:
    """The trained encoder of ``checkpoint`` (``mcsan.inference.retriever.Retriever``)."""
    from mcsan.inference.retriever import Retriever

    return Retriever.from_checkpoint(checkpoint)


def open_searcher(
    index_dir: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    retriever: Encoder | None = None,
    bank: ConceptBank | None = None,
) -> Searcher:
    """The index in ``index_dir`` with its query encoder.

    An index with model embeddings needs its checkpoint: ``retriever`` if given, else loaded
    from ``checkpoint``, else from the path recorded in the index (another one is refused).
    A concept-only index needs none.
    """
    index = VideoIndex.load(index_dir)
    if index.has_model and retriever is None:
        source = checkpoint or index.extra.get("checkpoint")
        if not source:
            raise SearchError(
                f"{index_dir}: the index records no checkpoint path; pass --checkpoint"
            )
        retriever = load_retriever(source)
    return Searcher(index, retriever, bank, where=f"index {index_dir}")


def rerank_fields(searcher: Searcher) -> dict[str, Any] | None:
    """The binding matcher's shortlist size and weight, or None when search cannot re-rank."""
    reranker = searcher.reranker
    if reranker is None:
        return None
    return {"top_k": reranker.top_k, "weight": reranker.weight,
            "shortlist": min(reranker.top_k, len(searcher.index))}


def search(
    index_dir: str | os.PathLike[str],
    query: str,
    k: int = 10,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    mode: str = "auto",
    rerank: bool = True,
) -> Answer:
    """``mcsan search``'s answer for ``query`` on the index in ``index_dir``: the hits (with
    their scores), the mode that ranked them, unknown words and warnings."""
    return open_searcher(index_dir, checkpoint).answer(query, k, mode, rerank=rerank)
