"""Search a video collection with text: an index, queries, and an HTTP API with a page.

``VideoIndex`` holds a collection's per-level embeddings and a FAISS index over their
fused form, and/or per-clip concept scores (the frame encoder's ImageNet classes);
:func:`search` (``search(index_dir, query, k)``) gives ``mcsan search``'s answer: a
:class:`Searcher` (``open_searcher(index_dir)``) answers in the ``concepts`` (no training),
``model`` or ``auto`` mode, re-ranked by the checkpoint's binding matcher, with the matched
concepts, unknown words and warnings; :func:`fused_search` is the first stage alone (the
fused score with any :class:`mcsan.inference.encoder.Encoder`);
``mcsan.search.server.create_app`` serves it over HTTP.

May import: core, data, model, config, evaluate, inference (never train, apps or the CLI).
"""

from mcsan.search.index import SearchResult, VideoIndex
from mcsan.search.library import open_searcher, search
from mcsan.search.modes import MODES, Answer
from mcsan.search.query import MAX_K, MAX_QUERY_CHARS, Hit, fused_search, search_many
from mcsan.search.searcher import Searcher

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MODES",
    "Answer",
    "Hit",
    "SearchResult",
    "Searcher",
    "VideoIndex",
    "fused_search",
    "open_searcher",
    "search",
    "search_many",
]
