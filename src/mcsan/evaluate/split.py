"""Evaluating retrieval: the protocol's entry points, and a model evaluated on a split.

The protocol (what a rank is, ties, R@K, MedR, MnR, rsum) is defined in
:mod:`mcsan.evaluate.protocol`; :func:`retrieval_metrics` applies it to a dense score matrix and
:func:`retrieval_metrics_from_embeddings` (:mod:`mcsan.evaluate.engine`) to per-level embeddings
in chunks, with the same numbers. :func:`evaluate_split` is the one way a model is evaluated
on a split of a loaded dataset: the trainer's validation and
:func:`mcsan.inference.retriever.evaluate_checkpoint` both call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mcsan.data.loading.dataset import RetrievalData
from mcsan.evaluate.embed import embed_captions, embed_videos
from mcsan.evaluate.engine import default_chunk_size, retrieval_metrics_from_embeddings
from mcsan.evaluate.protocol import METRIC_KEYS, retrieval_metrics
from mcsan.evaluate.shortlist import ShortlistPolicy

FIRST_STAGE_ROW = "first stage"
"""Metrics row of the first stage with late interaction (the fused score plus the matcher's
entity and action terms, :mod:`mcsan.evaluate.first_stage`): what the index ranks by."""

SMALL_SAMPLE_VIDEOS = 100
"""Below this many videos a recall is too coarse to compare models on."""

__all__ = [
    "FIRST_STAGE_ROW",
    "METRIC_KEYS",
    "SMALL_SAMPLE_VIDEOS",
    "default_chunk_size",
    "evaluate_levels",
    "evaluate_split",
    "format_metrics_table",
    "retrieval_metrics",
    "retrieval_metrics_from_embeddings",
    "small_sample_warning",
]


def evaluate_levels(
    text_emb: Mapping[str, Any],
    video_emb: Mapping[str, Any],
    weights: Mapping[str, float],
    caption_video: Any,
    chunk_size: int | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics of the fused score (key ``"fused"``) and of each weighted level alone."""
    results = {
        "fused": retrieval_metrics_from_embeddings(
            text_emb, video_emb, weights, caption_video, chunk_size
        )
    }
    for level in weights:
        results[level] = retrieval_metrics_from_embeddings(
            text_emb, video_emb, {level: 1.0}, caption_video, chunk_size
        )
    return results



def evaluate_split(
    model: Any,
    data: RetrievalData,
    split: str,
    batch_size: int,
    device: torch.device | str = "cpu",
    rerank: bool = True,
    shortlists: Sequence[ShortlistPolicy] = (),
) -> dict[str, dict[str, float]]:
    """Fused and per-level metrics of ``model`` (an MCSAN in eval mode) on ``split`` of ``data``.

    Every caption of the split queries the split's videos and every video its captions;
    the fused score uses the model's own level weights. A model with a binding matcher
    (``model.rerank``) also gets ``"reranked"``: its shortlists re-ordered
    (:mod:`mcsan.evaluate.reranked`) by the first of ``shortlists`` (default
    ``ShortlistPolicy()``), and ``"reranked <policy label>"`` for each further one, and
    :data:`FIRST_STAGE_ROW` when the first policy's first stage adds late interaction, unless
    ``rerank`` is False (validation: the best epoch is chosen on the fused rsum).
    """
    captions, videos, caption_video = data.split_view(split)
    text = embed_captions(model, captions, batch_size, device, desc=f"{split} captions")
    video = embed_videos(
        model, data.video_features(videos), data.streams, data.max_frames, batch_size, device,
        desc=f"{split} videos",
    )  # fmt: skip
    weights = {level: float(w) for level, w in model.level_weights().items()}
    results = evaluate_levels(text, video, weights, caption_video)
    if rerank and getattr(model, "matcher", None) is not None:
        from mcsan.evaluate.reranked import evaluate_reranked, fused_scores

        policies = list(shortlists) or [ShortlistPolicy()]
        first, reranked = evaluate_reranked(
            model, captions, data.video_features(videos), data.streams, data.max_frames,
            fused_scores(text, video, weights), caption_video, batch_size, device, policies,
        )  # fmt: skip
        if first is not None:
            results[FIRST_STAGE_ROW] = first
        for number, (policy, metrics) in enumerate(zip(policies, reranked, strict=True)):
            results["reranked" if number == 0 else f"reranked {policy.label()}"] = metrics
    return results


def format_metrics_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table: one row per model/level name, one column per metric ("-" where
    a row lacks it, e.g. the oracle's v2t columns)."""
    name_width = max([len("name"), *(len(name) for name in results)])
    widths = [max(7, len(key)) for key in METRIC_KEYS]
    header = "  ".join(
        ["name".ljust(name_width), *(k.rjust(w) for k, w in zip(METRIC_KEYS, widths, strict=True))]
    )
    lines = [header, "-" * len(header)]
    for name, metrics in results.items():
        cells = [(f"{metrics[k]:.1f}" if k in metrics else "-").rjust(w)
                 for k, w in zip(METRIC_KEYS, widths, strict=True)]  # fmt: skip
        lines.append("  ".join([name.ljust(name_width), *cells]))
    return "\n".join(lines)


def small_sample_warning(videos: int) -> str:
    """One line: few videos make every recall coarse."""
    return (f"warning: small sample: only {videos} videos, so one video is "
            f"{100 / max(videos, 1):.1f} points of v2t recall; differences of a few points are noise")  # fmt: skip
