"""The Searcher: one index, its model (optional) and the concept bank, answering a query in
the ``concepts``, ``model`` or ``auto`` mode (:mod:`mcsan.search.modes` says what each mode
does and holds the :class:`~mcsan.search.modes.Answer`); the model's ranking is re-ordered by
the checkpoint's binding matcher over its shortlist (:mod:`mcsan.search.rerank`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np

from mcsan.core.errors import SearchError
from mcsan.evaluate.first_stage import first_stage_scores
from mcsan.inference.encoder import Encoder
from mcsan.search.batching import BatchedEncoder
from mcsan.search.concepts import ConceptBank, ConceptQuery, default_bank
from mcsan.search.honesty import (
    concept_warning,
    model_info,
    model_warning,
    unknown_words,
)
from mcsan.search.index import SearchResult, VideoIndex
from mcsan.search.late import SLOT_CANDIDATES, LateFirstStage
from mcsan.search.modes import (
    CANDIDATES,
    EVIDENCE_FLOOR,
    HIT_FLOOR,
    WEAK_CONCEPT_SCORE,
    Answer,
    validate_mode,
)
from mcsan.search.query import Hit, validate_k, validate_query
from mcsan.search.rerank import ShortlistReranker, reorder_shortlist


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
        self.late = self._late_stage()

    def _late_stage(self) -> LateFirstStage | None:
        """The first stage's late interaction when the checkpoint's policy asks for it and
        the index stores the matcher's inputs (else None; a note says why)."""
        retriever, reranker = self.retriever, self.reranker
        if retriever is None or reranker is None or not retriever.shortlist.late:
            return None
        if not reranker.from_store:
            self.rerank_problem = self.rerank_problem or (
                "the first stage has no late interaction: the index has no matcher store for "
                "this checkpoint (rebuild it with `mcsan index`)")  # fmt: skip
            return None
        return LateFirstStage(self.index, retriever, retriever.shortlist.late_weight)

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
        result = Answer(query=text, mode=mode, hits=[], requested_mode=mode)
        known: list[str] = []
        if use_model:
            known, result.unknown_words = unknown_words(self.retriever, text)
        concept_query = self.bank.match(text) if use_concepts else None
        if mode == "auto" and use_model and concept_query is not None:
            concept_query = self._auto_concepts(known, concept_query, result)
            use_model = bool(known) or concept_query is None
        if concept_query is not None:
            result.matched_concepts = [m.to_json() for m in concept_query.matches]
            result.unmatched_words = list(concept_query.unmatched)
            result.notes = list(concept_query.notes)
            assert self.index.concepts is not None
            if len(self.index.concepts.usable(concept_query)[0]) < len(concept_query.concepts):
                result.warnings.append(
                    "This index was built before people detection: it cannot find person, "
                    "people or face; rebuild it with `mcsan index` to find people."
                )
        if use_model and concept_query is None:
            dataset = self.model["dataset"] if self.model else "unknown"
            warning = model_warning(known, result.unknown_words, dataset)
            if warning:
                result.warnings.append(warning)
        if use_model and rerank and self.rerank_problem:
            result.warnings.append(self.rerank_problem)
        if use_model and concept_query is not None:
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
        result.ranked_by = self._ranked_by(result)
        if mode == "auto" and result.mode_reason is None:
            result.mode_reason = (f"ranked by {result.mode}: the index has no "
                                  f"{'concept scores' if result.mode == 'model' else 'model'}")
        if result.mode == "concepts":
            self._weak_concepts(concept_query, result)
        result.timings["total"] = round(1000 * (time.perf_counter() - started), 3)
        return result

    def _auto_concepts(self, known: list[str], query: ConceptQuery,
                       result: Answer) -> ConceptQuery | None:  # fmt: skip
        """The concept part ``auto`` mixes with the model: the query's words the model does
        not know, when they match concepts that carry evidence; None when concepts stay out
        (``result.mode_reason`` says why). Sets the model's share ``a``."""
        dataset = self.model["dataset"] if self.model else "unknown"
        if query.empty:
            result.mode_reason = "ranked by the model: no query word names a concept"
            return None
        if not known:
            result.mode_reason = "ranked by concepts: the model knows none of the query's words"
            result.warnings.append(
                f"The model (trained on {dataset!r}) knows none of the query's words; "
                "ranked by concepts alone."
            )
            return query
        if not result.unknown_words:
            result.mode_reason = ("ranked by the model: it knows every word of the query, "
                                  "so concepts are not mixed in")  # fmt: skip
            return None
        part = self.bank.match(" ".join(result.unknown_words))
        if part.empty:
            result.mode_reason = ("ranked by the model: the words it does not know name no "
                                  "concept")  # fmt: skip
            return None
        assert self.index.concepts is not None
        _, best = self.index.concepts.top(part, 1)
        evidence = float(best[0]) if len(best) else 0.0
        words = ", ".join(repr(w) for w in part.matched_words)
        if evidence < EVIDENCE_FLOOR:
            result.mode_reason = (
                f"ranked by the model: concepts for {words} carry no evidence (best clip "
                f"{evidence:.3f} < {EVIDENCE_FLOOR})"
            )
            return None
        result.model_weight = round(len(known) / (len(known) + len(part.matched_words)), 4)
        result.mode_reason = (
            f"model and concepts: the model knows {len(known)} of the query's words, concepts "
            f"found {words} (best clip {evidence:.3f})"
        )
        return part

    def _ranked_by(self, result: Answer) -> str:
        """How the hits' ``score`` is made, in words a user can check."""
        reranked = result.reranked and self.reranker is not None
        model = (f"fused + {self.reranker.weight:g} x match" if reranked  # type: ignore[union-attr]
                 else "fused")  # fmt: skip
        if self.late is not None and any(h.late_score is not None for h in result.hits):
            first = f"fused + {self.late.weight:g} x late"
            model = (f"{model} over the top {self.reranker.top_k} by {first} (the rest by it)"  # type: ignore[union-attr]
                     if reranked else first)  # fmt: skip
        if result.mode == "concepts":
            return "concept score"
        if result.mode == "model":
            return model
        weight = result.model_weight or 0.0
        return (f"{weight:g} x model ({model}) + {1 - weight:g} x concept score, each "
                "min-max scaled over the candidates")

    def _weak_concepts(self, query: ConceptQuery | None, result: Answer) -> None:
        """Warn when no clip clearly shows what the query names."""
        best = max((h.concept_score for h in result.hits if h.concept_score is not None),
                   default=None)
        if query is not None and not query.empty and not result.hits:
            result.warnings.append(
                f"No clip shows the matched concepts (every concept score is below "
                f"{HIT_FLOOR}); nothing is listed."
            )
        elif best is not None and best < WEAK_CONCEPT_SCORE:
            result.warnings.append(
                f"Weak evidence: the best clip's concept score is {best:.3f} (below "
                f"{WEAK_CONCEPT_SCORE}); no clip clearly shows the matched concepts, so these "
                "results may be unrelated."
            )

    # ----------------------------------------------------------------- ranking
    def _model_hits(self, text: str, k: int, reranker: ShortlistReranker | None,
                    warnings: list[str], timings: dict[str, float]) -> list[Hit]:  # fmt: skip
        pool = k if reranker is None else max(k, reranker.top_k)
        encoded, found = self._first_stage(text, pool, timings)
        fused_part, late_part = found.scores, None
        if self.late is not None and reranker is not None:
            with _timed(timings, "late"):
                found, fused_part, late_part = self._late_first(text, encoded, found, pool)
        order = np.arange(len(found.rows))
        matched = np.full(len(found.rows), np.nan)
        ranked = np.asarray(found.scores, np.float64).copy()
        if reranker is not None:
            short = min(reranker.top_k, len(found.rows))
            ids = [self.index.ids[row] for row in found.rows[:short]]
            reuse = late_part is not None and self.late is not None and self.late.is_match
            with _timed(timings, "second_stage"):  # late of all the matcher's terms = match
                match, problem = ((late_part[:short], None) if reuse
                                  else reranker.try_match(text, ids))  # fmt: skip
            warnings.extend([problem] if problem else [])
            if match is not None:
                order[:short] = reorder_shortlist(found.rows[:short], fused_part[:short],
                                                  match, reranker.weight)  # fmt: skip
                matched[:short] = match
                if late_part is None:
                    ranked = ranked + reranker.weight * _with_floor(matched)
                else:  # the shortlist by fused + w x match; the rest by first stage, below it
                    inside = fused_part[:short] + reranker.weight * match
                    ranked[:short] = inside
                    ranked[short:] = np.minimum(ranked[short:], inside.min(initial=np.inf))
        order = order[:k]
        return self._hits(found.rows[order], ranked[order],
                          {lv: s[order] for lv, s in found.level_scores.items()}, None, None,
                          matched[order], fused_part[order],
                          None if late_part is None else late_part[order])  # fmt: skip

    def _late_first(self, text: str, encoded: dict[str, np.ndarray], found: SearchResult,
                    pool: int) -> tuple[SearchResult, np.ndarray, np.ndarray]:  # fmt: skip
        """The first stage with late interaction (:mod:`mcsan.search.late`): its top
        ``pool`` as a result scored ``fused + w * late``, with the fused and late parts."""
        late = self.late
        assert late is not None
        queries = np.zeros((0, 1), np.float32) if late.exact else late.phrase_queries(text)
        rows = late.candidates(queries, found.rows, SLOT_CANDIDATES)
        levels = self.index.contributions({lv: encoded[lv][0] for lv in self.index.levels}, rows)
        fused = np.sum([levels[lv] for lv in self.index.levels], axis=0, dtype=np.float32)
        scores = late.late(text, rows)
        first = first_stage_scores(fused, scores, late.weight).astype(np.float32)
        top = np.lexsort((rows, -first))[:pool]
        result = SearchResult(rows[top], first[top], {lv: s[top] for lv, s in levels.items()})
        return result, fused[top], scores[top]

    def _concept_hits(self, query: ConceptQuery, k: int) -> list[Hit]:
        assert self.index.concepts is not None
        rows, scores = self.index.concepts.top(query, k)
        kept = scores >= HIT_FLOOR
        return self._hits(rows[kept], scores[kept], {}, scores[kept], query)

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
        fused_part = np.sum([levels[lv] for lv in self.index.levels], axis=0, dtype=np.float32)
        model = fused_part
        match = np.full(len(rows), np.nan)
        if reranker is not None:
            short = np.lexsort((rows, -fused_part))[: reranker.top_k]
            with _timed(timings, "second_stage"):
                scored, problem = reranker.try_match(text, [self.index.ids[r] for r in rows[short]])
            warnings.extend([problem] if problem else [])
            if scored is not None:
                match[short] = scored
                bonus = _with_floor(match)
                model = fused_part + np.float32(reranker.weight) * bonus.astype(np.float32)
        concept = concepts.scores(query, rows)
        fused = weight * _scaled(model) + (1.0 - weight) * _scaled(concept)
        order = np.lexsort((rows, -fused))[:k]
        return self._hits(
            rows[order], fused[order], {lv: s[order] for lv, s in levels.items()},
            concept[order], query, match[order], fused_part[order],
        )

    def _first_stage(self, text: str, pool: int, timings: dict[str, float]
                     ) -> tuple[dict[str, np.ndarray], SearchResult]:  # fmt: skip
        """``text``'s embeddings and the index's top ``pool`` clips by the fused score. A
        batching encoder (a server's) encodes and searches it with other threads' queries:
        the batch's search time is the first stage, the rest (waiting included) the
        encoding."""
        if isinstance(self.retriever, BatchedEncoder):
            started = time.perf_counter()
            encoded, found, searching = self.retriever.encode_search(self.index, text, pool)
            timings["encode"] = round(1000 * (time.perf_counter() - started) - searching, 3)
            timings["first_stage"] = round(searching, 3)
            return encoded, found
        with _timed(timings, "encode"):
            encoded = self._encode(text)
        with _timed(timings, "first_stage"):
            return encoded, self.index.search_vectors(encoded, pool)[0]

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
        match_scores: np.ndarray | None = None, fused_scores: np.ndarray | None = None,
        late_scores: np.ndarray | None = None,
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
                fused_score=None if fused_scores is None else float(fused_scores[pos]),
                late_score=None if late_scores is None else float(late_scores[pos]),
            ))
        return hits


def _with_floor(match: np.ndarray) -> np.ndarray:
    """``match`` with the unmeasured (NaN) entries set to the lowest measured one (0 when
    none was measured): a clip outside the shortlist never gains on one inside it."""
    measured = match[~np.isnan(match)]
    floor = float(measured.min()) if measured.size else 0.0
    return np.where(np.isnan(match), floor, match)


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
