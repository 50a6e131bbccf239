"""The fused score: how a caption and a video are compared, defined once here.

Per level ``l`` the score is the cosine ``cos_l`` of the L2-normalised caption and video
embeddings. The fused score of a caption ``t`` and a video ``v`` is

    s(t, v) = sum_l w_l m_l(t) cos_l(t, v) / sum_l w_l m_l(t)

with ``w_l`` the model's level weights (:meth:`mcsan.model.MCSAN.level_weights`) and
``m_l(t)`` 1 when caption ``t`` names something at level ``l`` (0 otherwise; every level
counts as present when the model's ``absent_levels`` is ``empty``).
:func:`retrieval_embeddings` folds ``m_l / sum_l w_l m_l`` into the caption embeddings, so
``s`` is a plain weighted inner product ``sum_l w_l <t_l, v_l>``: that is what the chunked
evaluator (:mod:`mcsan.evaluate.engine`), the Retriever (:mod:`mcsan.inference.retriever`) and the search
index (:mod:`mcsan.search.index`) compute, and :func:`level_similarities` gives the same
numbers densely for training and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch


@dataclass
class LevelOutput:
    """What an encoder gives per level.

    embeddings:       level -> (B, embed_dim), L2-normalised.
    attribute_logits: level -> (B, K_level), only for levels with an attribute head.
    """

    embeddings: dict[str, torch.Tensor]
    attribute_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    present: dict[str, torch.Tensor] = field(default_factory=dict)
    """level -> (B,) bool, False where a caption names nothing at that level; empty dict =
    every level present (always so for video)."""


def level_similarities(
    text_emb: Mapping[str, torch.Tensor],
    video_emb: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor | float],
    levels: Iterable[str] | None = None,
    text_present: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Cosine similarity per level (Nt, Nv) and ``"fused"`` = sum_l w_l * cos_l.

    Embeddings must already be L2-normalised; ``levels`` defaults to the keys of ``weights``.
    With ``text_present`` (level -> (Nt,) bool), a caption's absent levels score 0 and its
    fused score is renormalised over the levels it has:
    ``sum_l w_l m_l cos_l / sum_l w_l m_l``.
    """
    names = list(levels if levels is not None else weights.keys())
    sims = {lvl: text_emb[lvl] @ video_emb[lvl].transpose(0, 1) for lvl in names}
    if not text_present:
        sims["fused"] = sum(weights[lvl] * sims[lvl] for lvl in names)  # type: ignore[assignment]
        return sims
    scale = fused_scale(text_present, weights, names)
    for lvl in names:
        if lvl in text_present:
            sims[lvl] = sims[lvl] * text_present[lvl].to(sims[lvl].dtype)[:, None]
    fused = sum(weights[lvl] * sims[lvl] for lvl in names)
    sims["fused"] = fused * scale[:, None]  # type: ignore[operator]
    return sims


def fused_scale(
    present: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor | float],
    levels: Iterable[str],
) -> torch.Tensor:
    """Per caption ``1 / sum_l w_l m_l`` over its present levels (levels not in ``present``
    count as present)."""
    names = list(levels)
    rows = next(iter(present.values())).shape[0]
    total = torch.zeros(rows, device=next(iter(present.values())).device)
    for lvl in names:
        mask = present.get(lvl)
        weight = torch.as_tensor(weights[lvl], dtype=total.dtype, device=total.device)
        total = total + weight * (mask.to(total.dtype) if mask is not None else 1.0)
    return 1.0 / total.clamp_min(1e-6)


def retrieval_embeddings(
    out: LevelOutput, weights: Mapping[str, torch.Tensor | float], levels: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Text embeddings whose weighted inner products with video embeddings give the fused
    score of :func:`level_similarities`: absent levels zeroed, rows scaled by
    :func:`fused_scale`. Unchanged when every level is present (video, or "empty" mode)."""
    if not out.present:
        return dict(out.embeddings)
    names = list(levels)
    scale = fused_scale(out.present, weights, names)
    result = {}
    for lvl in names:
        emb = out.embeddings[lvl]
        mask = out.present.get(lvl)
        factor = scale if mask is None else scale * mask.to(scale.dtype)
        result[lvl] = emb * factor.to(emb.dtype)[:, None]
    return result
