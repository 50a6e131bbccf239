"""The chunked rank engine: the protocol of :mod:`mcsan.evaluate.protocol` from per-level embeddings.

The fused score ``sum_l w_l <t_l[i], v_l[j]>`` is built per caption chunk by one
``addmm`` per level (``alpha = w_l``, so any weight sign works; zero-weight levels are
skipped). Captions are visited sorted by video in chunks of a fixed row count; every
product has one padded shape (rows to 8, dims to 16, videos to 8) and the same buffers.
Each score is computed exactly once, and ranks are counted from those very numbers:

* t2v is complete inside a chunk (the correct score and its competitors share a row).
* v2t needs ``best_j`` before counting. After a chunk, every video whose captions have all
  been seen has its exact ``best_j`` and is counted exactly from then on. For the other
  videos a cheap pre-pass gives an estimate of ``best_j`` (own-pair dot products) and a
  rigorous float error bound ``eps_j = 4 gamma_n |b_j| max_own |a_i|`` (``gamma_n = n u /
  (1 - n u)``, n = padded width + levels + 2, u = unit roundoff: valid for any summation
  order of IEEE products, hence matmul precision "highest" while it runs). A score above
  ``estimate + eps`` surely beats ``best_j``, one below ``estimate - eps`` surely does not,
  and the few inside the band are kept and compared with the exact ``best_j`` at the end.
* If the band outgrows ``band_budget`` (near-constant scores), a second pass repeats the
  identical chunk products and counts v2t exactly against the exact ``best_j``.

Residual assumptions, both about BLAS (MKL here) rather than about the protocol: a repeated
identical product is bit-identical (fallback pass only), and within one padded shape a
score does not depend on the position of its row or column (checked on thousands of
random shapes; without padding, MKL broke it for odd sizes). The second one only matters
for exact ties between duplicate float embeddings in different chunks. So the numbers are
the protocol applied to the scores the chunks computed: equal to
:func:`~mcsan.evaluate.protocol.retrieval_metrics` on the fused matrix whenever the products are exact
(e.g. small-integer embeddings, as the tests use), and otherwise different only where two
distinct scores agree to within float rounding.

The fused score itself is defined in :mod:`mcsan.model.scoring`; the caption embeddings it
takes already carry each caption's renormalisation, so here it is ``sum_l w_l <t_l, v_l>``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch

from mcsan.core.errors import EvaluationError
from mcsan.evaluate.protocol import (
    SCORE_BLOCK_BYTES,
    as_tensor,
    caption_video_index,
    count_ge,
    raise_non_finite,
    summarise,
)

MAX_BAND_ENTRIES = 8_000_000
"""How many uncertain v2t scores the one-pass path may keep before it falls back."""


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class _FusedScores:
    """Chunks of fused scores ``sum_l w_l * text_l[rows] @ video_l.T`` (one addmm per level).

    Every product has the same shape, zero-padded to multiples of 8 rows, 16 dims and 8
    videos, and writes into the same buffers: repeating a chunk repeats the identical
    computation, and (with MKL, checked on random shapes) a score does not depend on the
    position of its row or column in the chunk.
    """

    def __init__(
        self,
        text: list[torch.Tensor],
        video: list[torch.Tensor],
        weights: list[float],
        chunk_rows: int,
        dtype: torch.dtype,
    ) -> None:
        self.text = [t if t.is_floating_point() else t.to(dtype) for t in text]
        self.weights, self.dtype = weights, dtype
        self.n_videos = video[0].shape[0]
        rows, n_padded = _round_up(chunk_rows, 8), _round_up(self.n_videos, 8)
        self.video: list[torch.Tensor] = []  # (n_padded, width_padded) per level
        self.text_rows: list[torch.Tensor] = []  # (rows, width_padded) per level
        for level_video in video:
            width = _round_up(max(level_video.shape[1], 1), 16)
            padded = torch.zeros(n_padded, width, dtype=dtype)
            padded[: self.n_videos, : level_video.shape[1]] = level_video
            self.video.append(padded)
            self.text_rows.append(torch.zeros(rows, width, dtype=dtype))
        self.width = sum(v.shape[1] for v in self.video)
        self.scores = torch.empty(rows, n_padded, dtype=dtype)

    @property
    def chunk_rows(self) -> int:
        """Caption rows per chunk (the padded buffer size)."""
        return self.scores.shape[0]

    def _gather(self, level: int, rows: torch.Tensor) -> torch.Tensor:
        """Copy text rows ``rows`` of ``level`` into its buffer (zeros after them)."""
        text, target = self.text[level], self.text_rows[level]
        if text.dtype == self.dtype and text.shape[1] == target.shape[1]:
            torch.index_select(text, 0, rows, out=target[: rows.numel()])
        else:
            target[: rows.numel(), : text.shape[1]] = torch.index_select(text, 0, rows)
        target[rows.numel() :].zero_()
        return target

    def own_estimate(self, rows: torch.Tensor, videos: torch.Tensor) -> torch.Tensor:
        """sum_l w_l <text_l[r], video_l[v]> for pairs (rows, videos), by dot products."""
        total = torch.zeros(rows.numel(), dtype=torch.float64)
        for level, weight in enumerate(self.weights):
            text = self._gather(level, rows)[: rows.numel()]
            total += weight * torch.einsum("ij,ij->i", text, self.video[level][videos])
        return total

    def text_norm(self) -> torch.Tensor:
        """Norm of each caption's w-scaled concatenated text row (float64)."""
        squares = torch.zeros(self.text[0].shape[0], dtype=torch.float64)
        for text, weight in zip(self.text, self.weights, strict=True):
            squares += (weight * torch.linalg.vector_norm(text, dim=1).to(torch.float64)) ** 2
        return squares.sqrt()

    def video_norm(self) -> torch.Tensor:
        """Norm of each video's concatenated row (float64)."""
        squares = sum(torch.linalg.vector_norm(v, dim=1).to(torch.float64) ** 2 for v in self.video)
        return squares[: self.n_videos].sqrt()

    def score_chunk(self, rows: torch.Tensor) -> torch.Tensor:
        """Scores of caption rows ``rows`` against every video, shape (len(rows), n_videos)."""
        for level, weight in enumerate(self.weights):
            beta = 0.0 if level == 0 else 1.0
            text = self._gather(level, rows)
            torch.addmm(
                self.scores, text, self.video[level].T, beta=beta, alpha=weight, out=self.scores
            )
        return self.scores[: rows.numel(), : self.n_videos]


def _level_inputs(
    text_emb: Mapping[str, Any], video_emb: Mapping[str, Any], weights: Mapping[str, float]
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
    """Validate the per-level embeddings; return the levels with a non-zero weight."""
    if not weights:
        raise EvaluationError("weights is empty: give a weight for at least one level")
    texts, videos, kept_weights = [], [], []
    n_text = n_video = None
    for level, weight in weights.items():
        if level not in text_emb or level not in video_emb:
            side = "text_emb" if level not in text_emb else "video_emb"
            raise EvaluationError(f"level {level!r} has a weight but no {side} entry")
        if not math.isfinite(float(weight)):
            raise EvaluationError(f"weight of level {level!r} is {weight}; weights must be finite")
        text = as_tensor(text_emb[level], f"text_emb[{level!r}]")
        video = as_tensor(video_emb[level], f"video_emb[{level!r}]")
        if text.ndim != 2 or video.ndim != 2 or text.shape[1] != video.shape[1]:
            raise EvaluationError(
                f"level {level!r}: text {tuple(text.shape)} and video {tuple(video.shape)} "
                "embeddings must be 2-D with the same width"
            )
        if (n_text is not None and text.shape[0] != n_text) or (
            n_video is not None and video.shape[0] != n_video
        ):
            raise EvaluationError(f"level {level!r} has a different number of rows than others")
        n_text, n_video = text.shape[0], video.shape[0]
        if float(weight) != 0.0:
            texts.append(text)
            videos.append(video)
            kept_weights.append(float(weight))
    if not n_text or not n_video:
        raise EvaluationError("the embeddings are empty: need at least one caption and one video")
    if not texts:  # all weights zero: every score is 0, a constant matrix
        texts = [torch.zeros(n_text, 0)]
        videos = [torch.zeros(n_video, 0)]
        kept_weights = [1.0]
    return texts, videos, kept_weights


def _raise_non_finite_levels(levels: list[torch.Tensor], side: str, names: list[str]) -> None:
    """Raise for the first level of ``levels`` holding NaN or inf."""
    for level, name in zip(levels, names, strict=True):
        raise_non_finite(level, f"{side}[{name!r}] (so the scores)", "row", "dim")


def default_chunk_size(n_captions: int, n_videos: int, element_size: int = 4) -> int:
    """Caption rows per chunk: about :data:`SCORE_BLOCK_BYTES` of scores, a multiple of 64."""
    rows = SCORE_BLOCK_BYTES // (element_size * max(n_videos, 1))
    rows = min(max(64, rows // 64 * 64), 8192)
    return min(rows, -(-n_captions // 8) * 8)


def _chunked_ranks(
    scorer: _FusedScores,
    video_of: torch.Tensor,
    max_band_entries: int,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Ranks (t2v, v2t) from chunked scores; also whether the two-pass fallback ran."""
    n_captions, n_videos = video_of.numel(), scorer.n_videos
    chunk_rows, dtype = scorer.chunk_rows, scorer.dtype
    order = torch.argsort(video_of, stable=True)
    sorted_video = video_of[order]
    last_position = torch.cumsum(torch.bincount(video_of, minlength=n_videos), 0) - 1
    chunks = [(s, min(s + chunk_rows, n_captions)) for s in range(0, n_captions, chunk_rows)]

    # Pre-pass: estimated best own score per video and a rigorous bound on its error.
    video_norm, text_norm = scorer.video_norm(), scorer.text_norm()[order]
    largest = float(text_norm.max()) * float(video_norm.max())
    if not math.isfinite(largest) or largest > torch.finfo(dtype).max / 4:
        raise OverflowError  # non-finite text, or scores that could overflow
    estimate = torch.cat([scorer.own_estimate(order[a:b], sorted_video[a:b]) for a, b in chunks])
    own_norm = torch.zeros(n_videos, dtype=torch.float64)
    own_norm.scatter_reduce_(0, sorted_video, text_norm, "amax")
    best_estimate = torch.full((n_videos,), -math.inf, dtype=torch.float64)
    best_estimate.scatter_reduce_(0, sorted_video, estimate, "amax")
    # |estimate - score| <= 2 gamma_n |a| |b| for either side's summation order (n terms
    # per score incl. level sums); 4 gamma_n leaves room for the rounding of the norms.
    n_terms = scorer.width + len(scorer.weights) + 2
    unit = torch.finfo(dtype).eps / 2
    gamma = n_terms * unit / (1 - n_terms * unit) if n_terms * unit < 0.5 else math.inf
    tiny = torch.finfo(dtype).tiny * 8 * n_terms  # underflow / flushed subnormals
    eps = 4 * gamma * video_norm * own_norm + tiny * (1 + video_norm + own_norm)
    high = torch.nextafter((best_estimate + eps).to(dtype), torch.tensor(math.inf, dtype=dtype))
    low = torch.nextafter((best_estimate - eps).to(dtype), torch.tensor(-math.inf, dtype=dtype))

    best = torch.full((n_videos,), -math.inf, dtype=dtype)
    beaten_by = torch.zeros(n_videos, dtype=torch.int64)
    t2v_ranks = torch.empty(n_captions, dtype=torch.int64)
    band_values: list[torch.Tensor] = []
    band_videos: list[torch.Tensor] = []
    band_size, band_overflow = 0, False
    for start, stop in chunks:
        scores = scorer.score_chunk(order[start:stop])
        rows, videos = torch.arange(stop - start), sorted_video[start:stop]
        own = scores[rows, videos]
        best.scatter_reduce_(0, videos, own, "amax")
        scores[rows, videos] = -math.inf  # own pairs are nobody's competitor
        t2v_ranks[start:stop] = 1 + count_ge(scores, own[:, None], 1)
        n_known = int((last_position < stop).sum())  # a prefix: captions go sorted by video
        threshold = torch.cat([best[:n_known], high[n_known:]])
        beaten_by += count_ge(scores, threshold, 0)
        if n_known == n_videos or band_overflow:
            continue
        pending = scores[:, n_known:]
        in_band = torch.ge(pending, low[n_known:]) & torch.lt(pending, high[n_known:])
        where = in_band.nonzero()
        band_size += where.shape[0]
        if band_size > max_band_entries:
            band_overflow, band_values, band_videos = True, [], []
        elif where.numel():
            band_values.append(pending[where[:, 0], where[:, 1]])
            band_videos.append(where[:, 1] + n_known)
    if band_overflow:  # recount v2t with the exact best scores, repeating identical products
        beaten_by.zero_()
        for start, stop in chunks:
            scores = scorer.score_chunk(order[start:stop])
            scores[torch.arange(stop - start), sorted_video[start:stop]] = -math.inf
            beaten_by += count_ge(scores, best, 0)
    elif band_values:
        values, videos = torch.cat(band_values), torch.cat(band_videos)
        beaten_by += torch.bincount(videos[values >= best[videos]], minlength=n_videos)
    return t2v_ranks, 1 + beaten_by, band_overflow


def retrieval_metrics_from_embeddings(
    text_emb: Mapping[str, Any],
    video_emb: Mapping[str, Any],
    weights: Mapping[str, float],
    caption_video: Any,
    chunk_size: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    band_budget: int = MAX_BAND_ENTRIES,
) -> dict[str, float]:
    """Metrics of the fused score ``sum_l weights[l] * <text_emb[l][i], video_emb[l][j]>``.

    Same protocol and numbers as :func:`retrieval_metrics` on the fused matrix, computed in
    one pass over caption chunks of ``chunk_size`` rows (default: :func:`default_chunk_size`)
    without holding the (n_captions, n_videos) matrix. Levels with weight 0 are skipped;
    embedding levels without a weight are ignored. Arrays may be numpy or torch; scores are
    computed in ``dtype`` on CPU. ``band_budget`` bounds the uncertain v2t scores kept in
    memory; past it a second, identical pass counts v2t (see the module docstring).
    """
    if dtype not in (torch.float32, torch.float64):
        raise EvaluationError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    texts, videos, kept_weights = _level_inputs(text_emb, video_emb, weights)
    n_captions, n_videos = texts[0].shape[0], videos[0].shape[0]
    video_of = caption_video_index(caption_video, n_captions, n_videos)
    if chunk_size is None:
        chunk_size = default_chunk_size(n_captions, n_videos, torch.finfo(dtype).bits // 8)
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, numbers.Integral)
        or chunk_size < 1
    ):
        raise EvaluationError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    names = [name for name, weight in weights.items() if float(weight) != 0.0]
    scorer = _FusedScores(texts, videos, kept_weights, min(int(chunk_size), n_captions), dtype)
    previous_precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # the error bound assumes IEEE products
    try:
        t2v_ranks, v2t_ranks, _ = _chunked_ranks(scorer, video_of, band_budget)
    except OverflowError:
        _raise_non_finite_levels(videos, "video_emb", names or ["(none)"])
        _raise_non_finite_levels(texts, "text_emb", names or ["(none)"])
        raise EvaluationError(
            "the embeddings are too large to score in float (norms overflow); normalise them"
        ) from None
    finally:
        torch.set_float32_matmul_precision(previous_precision)
    return summarise(t2v_ranks, v2t_ranks)
