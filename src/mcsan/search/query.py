"""Text queries against a :class:`~mcsan.search.index.VideoIndex`, with input validation.

:func:`fused_search` ranks by a trained model's fused score; :class:`mcsan.search.searcher.Searcher`
adds concept (zero-example) search and the fused ``auto`` mode.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.core.validate import MAX_K
from mcsan.inference.encoder import Encoder
from mcsan.search.index import VideoIndex

MAX_QUERY_CHARS = 1_000


@dataclass(frozen=True)
class Hit:
    """One ranked video. ``score`` is what the hits are ordered by (the answer's
    ``ranked_by`` says how it is made); beside it the model's ``fused_score`` (the sum of
    ``level_scores``), the first stage's ``late_score`` (the matcher's entity and action
    terms, with ``rerank.late_weight``), the binding matcher's ``match_score`` when it
    re-scored the hit, and the ``concept_score`` with the concepts that carried it."""

    rank: int
    video_id: str
    path: str | None
    score: float
    level_scores: dict[str, float]
    concept_score: float | None = None
    concepts: list[dict[str, Any]] = field(default_factory=list)
    match_score: float | None = None
    fused_score: float | None = None
    late_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The hit as a JSON-serialisable dict."""
        return asdict(self)


def validate_query(query: object) -> str:
    """The query with its whitespace normalised (tabs, newlines and runs of spaces become
    one space; surrounding whitespace removed); SearchError when unusable."""
    if not isinstance(query, str):
        raise SearchError(f"the query must be text, got {type(query).__name__}")
    text = query.strip()
    if not text:
        raise SearchError("the query is empty; type a few words describing the video")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(
            f"the query has {len(text)} characters; the limit is {MAX_QUERY_CHARS}, shorten it"
        )
    bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs") and not ch.isspace()]
    if bad:
        raise SearchError(
            f"the query contains control character {bad[0]!r}; remove it and search again"
        )
    return " ".join(text.split())


def validate_k(k: object) -> int:
    """``k`` as an int in 1..MAX_K; SearchError for anything else (bools, floats, text)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        digits = k.strip().lstrip("+-") if isinstance(k, str) else ""
        if digits.isascii() and digits.isdigit() and len(digits) <= 12:
            k = int(k.strip())
        else:
            raise SearchError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    if not 1 <= int(k) <= MAX_K:
        raise SearchError(f"k must be from 1 to {MAX_K}, got {int(k)}")
    return int(k)


def fused_search(index: VideoIndex, retriever: Encoder, query: str, k: int = 10) -> list[Hit]:
    """The top-``k`` videos of ``index`` by the fused score alone (the first stage, no
    re-ranking, no concepts), best first; :func:`mcsan.search.search` gives the full answer."""
    return search_many(index, retriever, [query], k)[0]


def search_many(
    index: VideoIndex, retriever: Encoder, queries: Sequence[str], k: int = 10
) -> list[list[Hit]]:
    """Ranked hits for each of ``queries`` (validated, encoded in one batch)."""
    texts = [validate_query(q) for q in queries]
    k = validate_k(k)
    index.check_checkpoint(retriever.checkpoint_sha256)
    encoded = retriever.encode_captions(texts)
    missing = [lv for lv in index.levels if lv not in encoded]
    if missing:
        raise SearchError(f"the encoder returned no {missing} embeddings; the index needs them")
    results = index.search_vectors({lv: encoded[lv] for lv in index.levels}, k)
    return [_hits(index, result.rows, result.scores, result.level_scores) for result in results]


def _hits(
    index: VideoIndex, rows: np.ndarray, scores: np.ndarray, level_scores: dict[str, np.ndarray]
) -> list[Hit]:
    return [
        Hit(
            rank=rank,
            video_id=index.ids[row],
            path=index.paths[row],
            score=float(scores[pos]),
            level_scores={lv: float(level_scores[lv][pos]) for lv in index.levels},
            fused_score=float(scores[pos]),
        )
        for pos, (rank, row) in enumerate(zip(range(1, len(rows) + 1), rows.tolist(), strict=True))
    ]
