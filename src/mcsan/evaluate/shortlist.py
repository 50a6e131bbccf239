"""The one policy of the two stages: how the first stage scores, which clips the matcher re-orders.

The first stage (what the index holds) ranks the whole collection: the fused score, plus
with ``late_weight`` > 0 the binding matcher's late-interaction terms
(:mod:`mcsan.evaluate.first_stage`). With a binding matcher (``model.rerank``) each query's
shortlist, its top K by first-stage score, is re-ordered by ``fused + weight * match`` and
stays ahead of everything outside it (the match score has the late terms already: adding
the first stage's copy of them again cost 6.5 re-ranked rsum on the demo world). :class:`ShortlistPolicy` holds K (a count, or a
fraction of the collection), the weight and the late weight;
it is built once from the run config's ``rerank`` section (:meth:`ShortlistPolicy.from_config`)
and never changed: another shortlist is another policy (:meth:`ShortlistPolicy.replaced`).
Evaluation (:mod:`mcsan.evaluate.reranked`), twin accuracy (:mod:`mcsan.inference.twins`),
the :class:`~mcsan.inference.retriever.Retriever` and search read it.

:func:`first_stage_recall` says what the second stage can reach at all: the share of
text-to-video queries whose clip is in the fused shortlist.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcsan.core.errors import ConfigError
from mcsan.core.validate import check_ranges

REPORT_FRACTIONS: tuple[float, ...] = (0.01, 0.05)
"""Shortlists given as a share of the collection that scale reports show beside a count."""


@dataclass(frozen=True)
class ShortlistPolicy:
    """Top ``top_k`` (or the top ``fraction`` of the collection, when set) by first-stage
    score ``fused + late_weight * late``, re-ordered by ``fused + weight * match``."""

    top_k: int = 20
    fraction: float | None = None
    weight: float = 1.0
    late_weight: float = 0.0
    late_terms: tuple[str, ...] = ("entity", "action")

    def __post_init__(self) -> None:
        check_ranges("rerank", self, "shortlist")
        unknown = [t for t in self.late_terms if t not in ("entity", "action", "relation")]
        if unknown or not self.late_terms:
            raise ConfigError(f"rerank.late_terms {list(self.late_terms)}: name one or more of "
                              "entity, action, relation (the binding matcher's terms)")

    @classmethod
    def from_config(cls, section: Any) -> ShortlistPolicy:
        """From a run config's ``rerank`` section (:class:`mcsan.config.run.RerankConfig`)."""
        return cls(int(section.top_k), section.fraction, float(section.weight),
                   float(getattr(section, "late_weight", 0.0)),
                   tuple(getattr(section, "late_terms", ("entity", "action"))))

    def replaced(self, top_k: int | None = None, fraction: float | None = None,
                 weight: float | None = None, late_weight: float | None = None,
                 late_terms: Sequence[str] | None = None) -> ShortlistPolicy:  # fmt: skip
        """Another policy with the given settings (None: keep this one's); a ``top_k``
        given without a ``fraction`` drops this policy's fraction. ConfigError when out of
        range."""
        changes: dict[str, Any] = {}
        if top_k is not None:
            changes.update(top_k=int(top_k), fraction=None)
        if fraction is not None:
            changes["fraction"] = float(fraction)
        if weight is not None:
            changes["weight"] = float(weight)
        if late_weight is not None:
            changes["late_weight"] = float(late_weight)
        if late_terms is not None:
            changes["late_terms"] = tuple(late_terms)
        return dataclasses.replace(self, **changes) if changes else self

    def size(self, collection: int) -> int:
        """The shortlist's length in a collection of ``collection`` items (at least 1 when
        the collection is not empty, at most the collection)."""
        if collection <= 0:
            return 0
        if self.fraction is not None:
            return max(1, min(collection, math.ceil(self.fraction * collection - 1e-9)))
        return min(self.top_k, collection)

    def label(self, collection: int | None = None) -> str:
        """``top 22 (1% of 2,200)`` / ``top 100 (4.5% of 2,200)`` / ``top 100``."""
        if collection is None:
            return f"top {self.fraction:.0%}" if self.fraction is not None else f"top {self.top_k}"
        k = self.size(collection)
        share = 100.0 * k / max(collection, 1)
        shown = f"{self.fraction * 100:g}%" if self.fraction is not None else f"{share:.2g}%"
        return f"top {k} ({shown} of {collection:,})"

    @property
    def late(self) -> bool:
        """Whether the first stage adds the matcher's late interaction to the fused score."""
        return self.late_weight > 0

    def to_json(self) -> dict[str, Any]:
        """``{"top_k", "fraction", "weight", "late_weight", "late_terms"}``."""
        return {**dataclasses.asdict(self), "late_terms": list(self.late_terms)}


def kth_scores(fused: np.ndarray, k: int, axis: int) -> np.ndarray:
    """The k-th highest score of each row (``axis=1``) or column (``axis=0``) of ``fused``."""
    k = min(max(k, 1), fused.shape[axis])
    return -np.sort(-fused, axis=axis).take(k - 1, axis=axis)


def shortlist_orders(fused: np.ndarray, match: Any, policy: ShortlistPolicy,
                     first: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Score matrices whose orders are the re-ranked ones: (for t2v, for v2t).

    ``fused`` (Nt, Nv); ``match(text_rows, clip_rows) -> (P,)`` scores pairs; ``first``: the
    first stage's scores (default ``fused``). Each row's (t2v) shortlist is its top
    ``policy.size(Nv)`` clips by first-stage score, each column's (v2t) its top
    ``policy.size(Nt)`` captions, plus anything tied with the k-th (ties count against the
    model, as in :mod:`mcsan.evaluate.protocol`); they score ``fused + weight * match``, and
    everything outside keeps its first-stage order, lowered below any of those (so the
    shortlist's own scores are exact, whatever the weight)."""
    fused = np.asarray(fused, dtype=np.float64)
    first = fused if first is None else np.asarray(first, dtype=np.float64)
    weight = policy.weight
    span = float(max(np.abs(fused).max(), np.abs(first).max())) if fused.size else 0.0
    lift = 2.0 * span + 2.0 * weight + 1.0
    kth_video = kth_scores(first, policy.size(first.shape[1]), axis=1)
    kth_caption = kth_scores(first, policy.size(first.shape[0]), axis=0)
    t_rows, t_cols = np.nonzero(first >= kth_video[:, None])
    v_rows, v_cols = np.nonzero(first >= kth_caption[None, :])
    scores = match(np.concatenate([t_rows, v_rows]), np.concatenate([t_cols, v_cols]))
    t2v, v2t = first - lift, first - lift
    t2v[t_rows, t_cols] = fused[t_rows, t_cols] + weight * scores[: len(t_rows)]
    v2t[v_rows, v_cols] = fused[v_rows, v_cols] + weight * scores[len(t_rows):]
    return t2v, v2t


def first_stage_recall(fused: np.ndarray, caption_video: np.ndarray, policy: ShortlistPolicy
                       ) -> float:  # fmt: skip
    """Percent of text-to-video queries whose clip is in their fused shortlist (the clip
    tied with the k-th counts as in, as the re-ranker sees it): the ceiling of the re-ranked
    t2v R@K for any K."""
    fused = np.asarray(fused, dtype=np.float64)
    if fused.size == 0:
        return 0.0
    kth = kth_scores(fused, policy.size(fused.shape[1]), axis=1)
    own = fused[np.arange(fused.shape[0]), np.asarray(caption_video, dtype=np.int64)]
    return float(100.0 * np.mean(own >= kth))
