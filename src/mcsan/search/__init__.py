"""Search a video collection with text: an index, queries, and an HTTP API with a page.

``VideoIndex`` holds a collection's per-level embeddings and a FAISS index over their
fused form, and/or per-clip concept scores (the frame encoder's ImageNet classes);
:func:`search` ranks it for a text query with any encoder that follows
:class:`mcsan.inference.encoder.Encoder` (``mcsan.inference.retriever.Retriever``); :class:`Searcher` answers
in the ``concepts`` (no training), ``model`` or ``auto`` mode with the matched concepts,
unknown words and warnings; ``mcsan.search.server.create_app`` serves it over HTTP.

May import: core, data, model, config, evaluate, inference (never train, apps or the CLI).
"""

from mcsan.search.index import SearchResult, VideoIndex
from mcsan.search.modes import MODES, Answer, Searcher
from mcsan.search.query import MAX_K, MAX_QUERY_CHARS, Hit, search, search_many

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "MODES",
    "Answer",
    "Hit",
    "SearchResult",
    "Searcher",
    "VideoIndex",
    "search",
    "search_many",
]
