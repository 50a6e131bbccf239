"""Search modes: ``concepts`` (zero-example), ``model`` (a trained checkpoint) and ``auto``.

- ``concepts``: the query's words are matched to the frame encoder's ImageNet classes and the
  people detector's concepts (:mod:`mcsan.search.concepts`); clips rank by
  ``sum_c w_c p_clip(c)``; clips below ``HIT_FLOOR`` are left out, not padded in.
- ``model``: the trained MCSAN checkpoint's fused score (:func:`mcsan.search.query.fused_search`);
  with a binding matcher in the checkpoint (``model.rerank``), its shortlist (``rerank.top_k``
  or ``rerank.fraction``) is re-ordered by ``fused + rerank.weight * match``
  (:mod:`mcsan.search.rerank`).
- ``auto`` (the default) never ranks worse than the model on what the model was trained for:
  concepts join only for the query's words the model does **not** know, and only when they
  carry evidence (the best clip's concept score for those words is at least
  ``EVIDENCE_FLOOR``). A query of known words is ranked by the model alone (on 80 demo
  captions over 40 demo clips the old mix of every matched concept gave R@1 53.8 against the
  model's 87.5, see BENCHMARKS.md); a query of words the model never saw by concepts alone.
  When both join, the candidates are the union of each part's top ``max(CANDIDATES, 4k)``;
  each score is min-max scaled over them and mixed as ``a * model + (1 - a) * concepts`` with
  ``a = known / (known + matched)``: ``known`` the content words the model knows,
  ``matched`` the unknown words that match a concept.

Every hit's ``score`` is what the hits are ordered by (the answer's ``ranked_by`` says how it
is made), so shown scores always follow the order; beside it stand the model's
``fused_score``, the matcher's ``match_score`` and the ``concept_score``. With a binding
matcher the clips outside the shortlist, not measured, get the shortlist's lowest match (no
unmeasured clip gains on a measured one, and their fused order is kept).

Every answer says which mode ranked it and why (``mode``, ``mode_reason``), the matched
concepts (and, per hit, the ones that carried it), the words the model does not know, and a
warning when the ranking means little.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mcsan.core.errors import SearchError
from mcsan.search.query import Hit

MODES = ("auto", "concepts", "model")
CANDIDATES = 100
WEAK_CONCEPT_SCORE = 0.05
"""Below this best concept score (the matched classes' summed, weighted probability) no clip
clearly shows what the query names; the answer says so (a clearly visible object scores
0.2-1.0 on the scikit-image photo clips, a barely visible one 0.03)."""
EVIDENCE_FLOOR = WEAK_CONCEPT_SCORE
"""``auto`` lets concepts join the model only when the best clip's concept score for the
words the model does not know reaches this (measured: BENCHMARKS.md, search modes)."""
HIT_FLOOR = 0.0075
"""Concept hits scoring below this are left out of the answer rather than padded in. On the
8 photo clips of the tests with 11 descriptions ("a cat", "a person", "a clock on the wall"),
the clip showing the named thing scored 0.010-1.0 and the 77 others 0.0043 at most."""


@dataclass
class Answer:
    """The ranked hits of one query and everything a user needs to judge them."""

    query: str
    mode: str
    hits: list[Hit]
    unknown_words: list[str] = field(default_factory=list)
    unmatched_words: list[str] = field(default_factory=list)
    matched_concepts: list[dict[str, Any]] = field(default_factory=list)
    model_weight: float | None = None
    warnings: list[str] = field(default_factory=list)
    reranked: int = 0
    """How many of the hits the binding matcher re-scored (0: ranked without it)."""
    requested_mode: str = "auto"
    ranked_by: str = ""
    """How each hit's ``score`` (the order) is made, e.g. ``fused + 2 x match``."""
    mode_reason: str | None = None
    """Why ``auto`` ranked with the parts it used (None for an explicit mode)."""
    notes: list[str] = field(default_factory=list)
    """What the matched concepts cannot tell (e.g. "woman" matched as any person)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage: ``encode`` (parse + caption encoding), ``first_stage`` (the
    fused-score search), ``second_stage`` (the binding matcher), ``concepts``, ``total``."""

    def to_json(self) -> dict[str, Any]:
        """The answer as a JSON-serialisable dict."""
        return asdict(self)


def validate_mode(mode: object) -> str:
    """``mode`` if it is one of MODES; SearchError otherwise."""
    if not isinstance(mode, str) or mode not in MODES:
        raise SearchError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode
