"""The retrieval evaluation protocol: the one set of numbers mcsan reports (dense path).

Protocol
--------
Input: a score matrix ``s`` of shape (n_captions, n_videos), higher = more similar, and
``caption_video[i]``, the column of caption ``i``'s video. Every video column needs at
least one caption (any number of captions per video is fine, including one).

* t2v: caption ``i`` is a query, its video ``v(i)`` the one correct answer:
  ``rank_i = 1 + #{j != v(i) : s[i, j] >= s[i, v(i)]}``. Ties count against the model.
* v2t: video ``j`` is a query, every one of its captions is correct; it is ranked among
  all captions by its best caption: ``best_j = max_{i: v(i) = j} s[i, j]`` and
  ``rank_j = 1 + #{i : v(i) != j, s[i, j] >= best_j}``.
* ``R@K`` (K = 1, 5, 10) = 100 * fraction of queries with rank <= K; ``MedR`` = median
  rank (mean of the two middle ranks for an even count); ``MnR`` = mean rank;
  ``rsum`` = the six recalls summed. A constant score matrix gives chance-level numbers
  (every t2v rank is n_videos), never 100%.
* NaN or inf scores, a ``caption_video`` value outside ``[0, n_videos)`` and a video
  column without a caption raise :class:`~mcsan.core.errors.EvaluationError`.

The chunked path that computes the same numbers from per-level embeddings is
:mod:`mcsan.evaluate.engine`; :mod:`mcsan.evaluate.split` is the entry point that uses both.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from mcsan.core.errors import EvaluationError

METRIC_KEYS: tuple[str, ...] = (
    "t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_mnr",
    "v2t_r1", "v2t_r5", "v2t_r10", "v2t_medr", "v2t_mnr", "rsum",
)  # fmt: skip
RECALL_KS: tuple[int, ...] = (1, 5, 10)
SCORE_BLOCK_BYTES = 96 * 2**20
"""Size of one block of scores (the dense path's blocks; the chunked path's default chunk)."""


def as_tensor(values: Any, name: str) -> torch.Tensor:
    """Return ``values`` (numpy, torch or nested lists) as a CPU tensor, sharing memory."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    array = np.asarray(values)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise EvaluationError(f"{name} must be a numeric array, got dtype {array.dtype}")
    with warnings.catch_warnings():  # read-only numpy arrays: we never write to them
        warnings.simplefilter("ignore", UserWarning)
        return torch.as_tensor(array)


def caption_video_index(caption_video: Any, n_captions: int, n_videos: int) -> torch.Tensor:
    """Validate ``caption_video`` and return it as int64."""
    index = as_tensor(caption_video, "caption_video")
    if index.ndim != 1 or index.shape[0] != n_captions:
        raise EvaluationError(
            f"caption_video has shape {tuple(index.shape)}, expected ({n_captions},): one video "
            "column index per caption row"
        )
    if index.dtype == torch.bool or (index.is_floating_point() and (index != index.round()).any()):
        raise EvaluationError("caption_video must hold integer video column indices")
    index = index.to(torch.int64)
    outside = ((index < 0) | (index >= n_videos)).nonzero().flatten()
    if outside.numel():
        first = int(outside[0])
        raise EvaluationError(
            f"caption_video[{first}] = {int(index[first])} is not a video column in "
            f"[0, {n_videos}) ({outside.numel()} such captions); fix the caption-to-video mapping"
        )
    empty = (torch.bincount(index, minlength=n_videos) == 0).nonzero().flatten()
    if empty.numel():
        raise EvaluationError(
            f"video column {int(empty[0])} has no caption ({empty.numel()} such videos); "
            "every video needs at least one caption: drop it from the scores or add its captions"
        )
    return index


def raise_non_finite(values: torch.Tensor, what: str, row_name: str, col_name: str) -> None:
    """Raise an EvaluationError if ``values`` holds NaN or inf, saying how many and where."""
    bad = ~torch.isfinite(values)
    n_bad = int(bad.sum())
    if n_bad:
        row, col = divmod(int(torch.argmax(bad.view(-1).to(torch.uint8))), values.shape[1])
        raise EvaluationError(
            f"{what} holds {n_bad} NaN or inf value(s); the first is at {row_name} {row}, "
            f"{col_name} {col} ({float(values[row, col])}); fix the model or features that "
            "produced them (e.g. a diverged checkpoint) before evaluating"
        )


def summarise(t2v_ranks: torch.Tensor, v2t_ranks: torch.Tensor) -> dict[str, float]:
    """Turn the two rank vectors into the 11 metrics."""
    metrics: dict[str, float] = {}
    for prefix, ranks in (("t2v", t2v_ranks), ("v2t", v2t_ranks)):
        ranks64 = ranks.to(torch.float64).numpy()
        for k in RECALL_KS:
            metrics[f"{prefix}_r{k}"] = 100.0 * float(np.mean(ranks64 <= k))
        metrics[f"{prefix}_medr"] = float(np.median(ranks64))
        metrics[f"{prefix}_mnr"] = float(np.mean(ranks64))
    metrics["rsum"] = sum(metrics[f"{p}_r{k}"] for p in ("t2v", "v2t") for k in RECALL_KS)
    return {key: metrics[key] for key in METRIC_KEYS}


def count_ge(block: torch.Tensor, threshold: torch.Tensor, dim: int) -> torch.Tensor:
    """Count entries of ``block`` >= the broadcast ``threshold`` along ``dim`` (int32)."""
    return torch.ge(block, threshold).view(torch.uint8).sum(dim, dtype=torch.int32)


def _score_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype scores are compared in: float32/float64 kept, others widened exactly."""
    if dtype in (torch.float32, torch.float64):
        return dtype
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else torch.float64


def retrieval_metrics(sim: Any, caption_video: Any) -> dict[str, float]:
    """Text-to-video and video-to-text metrics of a dense (n_captions, n_videos) score matrix.

    See the module docstring for the protocol. Keys: :data:`METRIC_KEYS`.
    """
    scores = as_tensor(sim, "sim")
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise EvaluationError(
            f"sim has shape {tuple(scores.shape)}; expected a non-empty (n_captions, n_videos) matrix"
        )
    scores = scores.to(_score_dtype(scores.dtype))
    n_captions, n_videos = scores.shape
    video_of = caption_video_index(caption_video, n_captions, n_videos)
    raise_non_finite(scores, "the score matrix", "caption row", "video column")
    own = scores[torch.arange(n_captions), video_of]
    best = torch.full((n_videos,), -math.inf, dtype=scores.dtype)
    best.scatter_reduce_(0, video_of, own, "amax")
    t2v_ranks = torch.empty(n_captions, dtype=torch.int64)
    v2t_beaten_by = torch.zeros(n_videos, dtype=torch.int64)
    step = max(1, SCORE_BLOCK_BYTES // (scores.element_size() * n_videos))
    for start in range(0, n_captions, step):
        block = scores[start : start + step].clone()
        rows = torch.arange(block.shape[0])
        block[rows, video_of[start : start + step]] = -math.inf  # own pairs compete with nobody
        t2v_ranks[start : start + step] = 1 + count_ge(block, own[start : start + step, None], 1)
        v2t_beaten_by += count_ge(block, best, 0)
    return summarise(t2v_ranks, 1 + v2t_beaten_by)
