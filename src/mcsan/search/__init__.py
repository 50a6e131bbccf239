"""Search a video collection with text: an index, queries, and an HTTP API with a page.

``VideoIndex`` holds a collection's per-level embeddings and a FAISS index over their
fused form; :func:`search` ranks it for a text query with any encoder that follows
:class:`mcsan.encoder.Encoder` (``mcsan.inference.Retriever``); ``mcsan.search.server.create_app``
serves it over HTTP.
"""

from mcsan.search.index import SearchResult, VideoIndex
from mcsan.search.query import MAX_K, MAX_QUERY_CHARS, Hit, search, search_many

__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "Hit",
    "SearchResult",
    "VideoIndex",
    "search",
    "search_many",
]
