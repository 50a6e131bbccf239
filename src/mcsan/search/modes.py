"""Search modes: ``concepts`` (zero-example), ``model`` (a trained checkpoint) and ``auto``.

- ``concepts``: the query's words are matched to the frame encoder's ImageNet classes
  (:mod:`mcsan.search.concepts`); clips rank by ``sum_c w_c p_clip(c)``. Needs no training.
- ``model``: the trained MCSAN checkpoint's fused score (:func:`mcsan.search.query.search`);
  with a binding matcher in the checkpoint (``model.rerank``), its top ``rerank_top_k``
  clips are re-ordered by ``fused + rerank_weight * match`` (:mod:`mcsan.search.rerank`).
- ``auto``: both when the index has both. The candidates are the union of each mode's top
  ``max(CANDIDATES, 4k)``; each score is min-max scaled over the candidates and mixed as
  ``a * model + (1 - a) * concepts`` with ``a = known / (known + matched)``: ``known`` the
  query's content words in the model's vocabulary, ``matched`` those matching a concept. A
  query of words the model never saw therefore leans on concepts alone, and one that
  matches no concept on the model alone. With only one part available ``auto`` is that part.
  With a binding matcher, the model part of the candidates' top ``rerank_top_k`` by fused
  score is ``fused + weight * match``; the other candidates, not measured, get the lowest
  match of that shortlist (no unmeasured clip gains on a measured one).

Every answer says which mode ran, the matched concepts (and, per hit, the ones that
carried it), the words the model does not know, and a warning when the ranking means little.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.inference.encoder import Encoder
from mcsan.search.concepts import ConceptBank, ConceptQuery, default_bank
from mcsan.search.honesty import (
    concept_warning,
    model_info,
    model_warning,
    unknown_words,
)
from mcsan.search.index import VideoIndex
from mcsan.search.query import Hit, validate_k, validate_query
from mcsan.search.rerank import ShortlistReranker, reorder_shortlist

MODES = ("auto", "concepts", "model")
CANDIDATES = 100
WEAK_CONCEPT_SCORE = 0.05
"""Below this best concept score (the matched classes' summed, weighted probability) no clip
clearly shows what the query names; the answer says so (a clearly visible object scores
0.2-1.0 on the scikit-image photo clips, a barely visible one 0.03)."""


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


class Searcher:
    """Answers queries on one index with its model (optional) and the concept bank."""

    def __init__(
        self,
        index: VideoIndex,
        retriever: Encoder | None = None,
        bank: ConceptBank | None = None,
        *,
        where: str = "the index",
    ) -> None:
        """``retriever`` must be the checkpoint that built the index's model part."""
        self.index = index
        self.retriever = retriever if index.has_model else None
        if self.retriever is not None:
            index.check_checkpoint(self.retriever.checkpoint_sha256, where=where)
        self._bank = bank
        self.model = model_info(self.retriever) if self.retriever is not None else None
        if self.model is not None and index.extra.get("dataset"):
            self.model["dataset"] = index.extra["dataset"]
        self.reranker, self.rerank_problem = ShortlistReranker.for_index(index, self.retriever)

    @property
    def bank(self) -> ConceptBank:
        """The concept bank (GloVe is read on first use)."""
        if self._bank is None:
            self._bank = default_bank()
        return self._bank

    def modes(self) -> list[str]:
        """The modes this index supports (``auto`` always)."""
        found = ["auto"]
        if self.index.concepts is not None:
            found.append("concepts")
        if self.retriever is not None:
            found.append("model")
        return found

    def answer(self, query: object, k: object = 10, mode: object = "auto",
               rerank: bool = True) -> Answer:  # fmt: skip
        """Rank the index for ``query`` in ``mode`` (see the module docstring); ``rerank``
        False ranks by the fused score even when the checkpoint has a binding matcher."""
        started = time.perf_counter()
        text, k, mode = validate_query(query), validate_k(k), validate_mode(mode)
        reranker = self.reranker if rerank else None
        if mode not in self.modes():
            raise SearchError(
                f"mode {mode!r} is not available for this index (it has: "
                f"{', '.join(self.modes())}); "
                + ("build it with --checkpoint" if mode == "model" else "rebuild it with clips")
            )
        use_model = self.retriever is not None and mode in ("auto", "model")
        use_concepts = self.index.concepts is not None and mode in ("auto", "concepts")
        result = Answer(query=text, mode=mode, hits=[])
        known: list[str] = []
        if use_model:
            known, result.unknown_words = unknown_words(self.retriever, text)
        concept_query = self.bank.match(text) if use_concepts else None
        if concept_query is not None:
            result.matched_concepts = [m.to_json() for m in concept_query.matches]
            result.unmatched_words = list(concept_query.unmatched)
        if mode == "auto":
            use_model, use_concepts = self._auto_parts(known, concept_query, use_model,
                                                       use_concepts, result)
        if use_model and not use_concepts:
            dataset = self.model["dataset"] if self.model else "unknown"
            warning = model_warning(known, result.unknown_words, dataset)
            if warning:
                result.warnings.append(warning)
        if use_model and rerank and self.rerank_problem:
            result.warnings.append(self.rerank_problem)
        if use_model and use_concepts:
            result.mode = "auto"
            result.hits = self._fused(text, concept_query, k, result.model_weight or 0.0,
                                      reranker, result.warnings, result.timings)  # fmt: skip
        elif use_model:
            result.mode = "model"
            result.hits = self._model_hits(text, k, reranker, result.warnings, result.timings)
        elif concept_query is not None:
            result.mode = "concepts"
            warning = concept_warning(list(concept_query.words), list(concept_query.unmatched))
            if warning:
                result.warnings.append(warning)
            with _timed(result.timings, "concepts"):
                result.hits = self._concept_hits(concept_query, k)
        result.reranked = sum(h.match_score is not None for h in result.hits)
        result.timings["total"] = round(1000 * (time.perf_counter() - started), 3)
        best = max((h.concept_score for h in result.hits if h.concept_score is not None),
                   default=None)
        if best is not None and best < WEAK_CONCEPT_SCORE:
            result.warnings.append(
                f"Weak evidence: the best clip's concept score is {best:.3f} (below "
                f"{WEAK_CONCEPT_SCORE}); no clip clearly shows the matched concepts, so these "
                "results may be unrelated."
            )
        return result

    def _auto_parts(
        self, known: list[str], concept_query: ConceptQuery | None, use_model: bool,
        use_concepts: bool, result: Answer,
    ) -> tuple[bool, bool]:
        """Which parts an ``auto`` query uses, and the model's share ``a``."""
        matched = len(concept_query.matched_words) if concept_query is not None else 0
        if use_model and use_concepts:
            if matched == 0:
                use_concepts = False
            elif not known:
                use_model = False
                dataset = self.model["dataset"] if self.model else "unknown"
                result.warnings.append(
                    f"The model (trained on {dataset!r}) knows none of the query's words; "
                    "ranked by concepts alone."
                )
            else:
                result.model_weight = round(len(known) / (len(known) + matched), 4)
        return use_model, use_concepts

    # ----------------------------------------------------------------- ranking
    def _model_hits(self, text: str, k: int, reranker: ShortlistReranker | None,
                    warnings: list[str], timings: dict[str, float]) -> list[Hit]:  # fmt: skip
        with _timed(timings, "encode"):
            encoded = self._encode(text)
        pool = k if reranker is None else max(k, reranker.top_k)
        with _timed(timings, "first_stage"):
            found = self.index.search_vectors(encoded, pool)[0]
        order = np.arange(len(found.rows))
        matched = np.full(len(found.rows), np.nan)
        if reranker is not None:
            short = min(reranker.top_k, len(found.rows))
            ids = [self.index.ids[row] for row in found.rows[:short]]
            with _timed(timings, "second_stage"):
                match, problem = reranker.try_match(text, ids)
            warnings.extend([problem] if problem else [])
            if match is not None:
                order[:short] = reorder_shortlist(found.rows[:short], found.scores[:short],
                                                  match, reranker.weight)  # fmt: skip
                matched[:short] = match
        order = order[:k]
        return self._hits(found.rows[order], found.scores[order],
                          {lv: s[order] for lv, s in found.level_scores.items()}, None, None,
                          matched[order])  # fmt: skip

    def _concept_hits(self, query: ConceptQuery, k: int) -> list[Hit]:
        assert self.index.concepts is not None
        rows, scores = self.index.concepts.top(query, k)
        return self._hits(rows, scores, {}, scores, query)

    def _fused(self, text: str, query: ConceptQuery, k: int, weight: float,
               reranker: ShortlistReranker | None, warnings: list[str],
               timings: dict[str, float]) -> list[Hit]:  # fmt: skip
        concepts = self.index.concepts
        assert concepts is not None
        pool = max(CANDIDATES, 4 * k)
        with _timed(timings, "encode"):
            encoded = self._encode(text)
        with _timed(timings, "first_stage"):
            model_rows = self.index.search_vectors(encoded, pool)[0].rows
        with _timed(timings, "concepts"):
            concept_rows, _ = concepts.top(query, pool)
        rows = np.unique(np.concatenate([model_rows, concept_rows])).astype(np.int64)
        levels = self.index.contributions({lv: encoded[lv][0] for lv in self.index.levels}, rows)
        model = np.sum([levels[lv] for lv in self.index.levels], axis=0, dtype=np.float32)
        match = np.full(len(rows), np.nan)
        if reranker is not None:
            short = np.lexsort((rows, -model))[: reranker.top_k]
            with _timed(timings, "second_stage"):
                scored, problem = reranker.try_match(text, [self.index.ids[r] for r in rows[short]])
            warnings.extend([problem] if problem else [])
            if scored is not None:
                match[short] = scored
                floor = float(scored.min()) if len(scored) else 0.0
                bonus = np.where(np.isnan(match), floor, match)
                model = model + np.float32(reranker.weight) * bonus.astype(np.float32)
        concept = concepts.scores(query, rows)
        fused = weight * _scaled(model) + (1.0 - weight) * _scaled(concept)
        order = np.lexsort((rows, -fused))[:k]
        return self._hits(
            rows[order], fused[order], {lv: s[order] for lv, s in levels.items()},
            concept[order], query, match[order],
        )

    def _encode(self, text: str) -> dict[str, np.ndarray]:
        assert self.retriever is not None
        encoded = self.retriever.encode_captions([text])
        missing = [lv for lv in self.index.levels if lv not in encoded]
        if missing:
            raise SearchError(f"the encoder returned no {missing} embeddings; the index needs them")
        return {lv: encoded[lv] for lv in self.index.levels}

    def _hits(
        self, rows: np.ndarray, scores: np.ndarray, level_scores: dict[str, np.ndarray],
        concept_scores: np.ndarray | None, query: ConceptQuery | None,
        match_scores: np.ndarray | None = None,
    ) -> list[Hit]:
        hits = []
        for pos, row in enumerate(rows.tolist()):
            explain = (
                self.index.concepts.explain(query, row)
                if query is not None and self.index.concepts is not None else []
            )
            hits.append(Hit(
                rank=pos + 1, video_id=self.index.ids[row], path=self.index.paths[row],
                score=float(scores[pos]),
                level_scores={lv: float(v[pos]) for lv, v in level_scores.items()},
                concept_score=None if concept_scores is None else float(concept_scores[pos]),
                concepts=explain,
                match_score=(None if match_scores is None or np.isnan(match_scores[pos])
                             else float(match_scores[pos])),
            ))
        return hits


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the milliseconds the block takes to ``timings[stage]``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = 1000 * (time.perf_counter() - started)
        timings[stage] = round(timings.get(stage, 0.0) + spent, 3)


def _scaled(values: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1] (all zeros when constant)."""
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)
