"""Search with the binding matcher: re-rank a model ranking's shortlist.

A checkpoint trained with ``model.rerank`` carries a binding matcher (:mod:`mcsan.model.matcher`)
that reads a caption's parse against a clip's frame features: it tells "a red cube left of a
blue ball" from the clip with the colours or the roles exchanged, which the fused score
(an inner product, what the index holds) often cannot. Search uses it as evaluation does
(:mod:`mcsan.evaluate.reranked`): the query's shortlist by fused score (``rerank.top_k``
clips or ``rerank.fraction`` of the index) is re-ordered by ``fused + rerank.weight * match``. The matcher reads the clips' cell keys and
changes from the index's matcher store (:mod:`mcsan.search.matcher_store`); an index without
one (built before stores) falls back to the feature file it was built from (its own
extraction cache ``INDEX/features.h5``, or the dataset's feature set it records).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import FeatureError
from mcsan.search.batching import BatchedEncoder
from mcsan.search.build import CACHE_NAME
from mcsan.search.index import VideoIndex
from mcsan.search.matcher_store import match_rows, store_layout
from mcsan.search.segments import prefetch

log = logging.getLogger(__name__)


def index_feature_file(index: VideoIndex) -> Path | None:
    """The feature file the index was encoded from (the one it records, else its own
    extraction cache), if it still exists."""
    candidates = []
    recorded = index.extra.get("feature_file")
    if recorded:
        candidates.append(Path(recorded))
    if index.directory is not None:
        candidates.append(index.directory / CACHE_NAME)
    return next((path for path in candidates if path.is_file()), None)


class ShortlistReranker:
    """Scores a query against candidate clips with the checkpoint's binding matcher: from
    the index's matcher store when it has one, else from the clips' feature file."""

    def __init__(self, retriever: Any, feature_file: Path | None,
                 index: VideoIndex | None = None) -> None:  # fmt: skip
        """``retriever`` a :class:`mcsan.inference.retriever.Retriever` with a matcher, whose
        shortlist policy sizes the shortlist for ``index``; the matcher reads ``index``'s
        matcher store when ``feature_file`` is None, else ``feature_file`` (which must hold
        the features ``index`` records: checked at every reopening)."""
        self.retriever = retriever
        self.feature_file = feature_file
        self.index = index
        self.from_store = feature_file is None and index is not None
        policy = retriever.shortlist
        self.top_k = policy.size(len(index)) if index is not None else policy.top_k
        self.weight = policy.weight

    @property
    def source(self) -> str:
        """Where the matcher's inputs come from: ``store`` or ``features``."""
        return "store" if self.from_store else "features"

    @classmethod
    def for_index(cls, index: VideoIndex, retriever: Any) -> tuple[ShortlistReranker | None,
                                                                    str | None]:  # fmt: skip
        """The reranker, or None and why not (None, None: the model has no matcher)."""
        if retriever is None or not getattr(retriever, "has_matcher", False):
            return None, None
        if index.matcher is not None and index.matcher_info == store_layout(retriever):
            return cls(retriever, None, index), None
        log.info("index %s has no matcher store for this checkpoint (built before stores, or "
                 "by another version); re-ranking reads the clips' feature file",
                 index.directory)  # fmt: skip
        feature_file = index_feature_file(index)
        if feature_file is None:
            recorded = index.extra.get("feature_file") or "none recorded"
            return None, (f"the checkpoint's binding matcher needs the clips' features, but the "
                          f"index's feature file ({recorded}) is gone; ranked by the fused score "
                          "alone (rebuild the index to re-rank)")  # fmt: skip
        from mcsan.data.video.store import FeatureStore

        try:
            with FeatureStore.open(feature_file, mode="r", expect=retriever.feature_spec) as store:
                missing = [video_id for video_id in index.live_ids() if video_id not in store]
                if not missing:
                    _check_identity(index, store)
        except (FeatureError, OSError) as exc:
            return None, (f"the binding matcher cannot read the index's feature file ({exc}); "
                          "ranked by the fused score alone")  # fmt: skip
        if missing:
            return None, (f"the index's feature file {feature_file} lacks {len(missing)} of its "
                          f"clips (e.g. {missing[0]!r}); ranked by the fused score alone "
                          "(rebuild the index to re-rank)")  # fmt: skip
        return cls(retriever, feature_file, index), None

    def match(self, query: str, video_ids: Sequence[str]) -> np.ndarray:
        """The matcher's score of ``query`` against each clip: (len(video_ids),) float32.
        FeatureError / OSError when the feature file can no longer be read."""
        from mcsan.data.video.store import FeatureStore

        if not video_ids:
            return np.zeros(0, np.float32)
        retriever = self.retriever
        if self.from_store:
            assert self.index is not None and self.index.matcher_info is not None
            rows = np.array([self.index.row_of(v) for v in video_ids], np.int64)
            prefetch(self.index.matcher, rows)
            key_dim = self.index.matcher_info["key_dim"]
            if isinstance(retriever, BatchedEncoder):  # with other threads' queries
                return retriever.match_rows(self.index.matcher, key_dim, query, rows)
            return match_rows(retriever, self.index.matcher, key_dim, [(query, rows)])[0]
        # reopened per query: the file must still have the model's spec and the index's identity
        with FeatureStore.open(self.feature_file, mode="r", expect=retriever.feature_spec) as store:
            if self.index is not None:
                _check_identity(self.index, store)
            clips = [store.read(video_id, np.float16, streams=retriever.matcher_streams)
                     for video_id in video_ids]  # fmt: skip
        rows = np.arange(len(clips))
        return retriever.match_encoded([query], retriever.match_clips(clips), np.zeros_like(rows),
                                       rows)  # fmt: skip

    def try_match(self, query: str, video_ids: Sequence[str]
                  ) -> tuple[np.ndarray | None, str | None]:  # fmt: skip
        """:meth:`match`, or None and a warning when the features cannot be read now."""
        try:
            return self.match(query, video_ids), None
        except (FeatureError, OSError) as exc:
            return None, (f"the binding matcher could not read the clips' features ({exc}); "
                          "ranked by the fused score alone")  # fmt: skip


def reorder_shortlist(rows: np.ndarray, fused: np.ndarray, match: np.ndarray, weight: float
                      ) -> np.ndarray:  # fmt: skip
    """The order (into the inputs) of the shortlist ``rows`` by ``fused + weight * match``,
    ties: lower row first."""
    scores = np.asarray(fused, np.float64) + weight * np.asarray(match, np.float64)
    return np.lexsort((rows, -scores))


def _check_identity(index: VideoIndex, store: Any) -> None:
    """FeatureError when ``store`` is not the feature file ``index`` was encoded from (a
    file of the same spec and ids swapped in: the matcher would score other clips)."""
    from mcsan.data.video.identity import check_identity

    check_identity(store.identity, index.extra.get("feature_identity"), store.path,
                   "the index", "rebuild the index with `mcsan index`")  # fmt: skip
