"""Pieces shared by both encoders and the joint model: masked attention pooling, the
per-level output record, attribute heads and the (fused) level similarity."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn


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


class AttentionPool(nn.Module):
    """Additive attention pooling over a masked set: (B, N, D), (B, N) -> (B, D).

    A row whose mask is all False gets the learned ``empty`` vector (never NaN).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        # No output bias: softmax over positions is invariant to it.
        self.score = nn.Sequential(
            nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False)
        )
        self.empty = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.empty, std=0.02)

    def forward(self, items: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``items`` (B, N, D) over the positions where ``mask`` (B, N) is True."""
        scores = self.score(items).squeeze(-1)
        if mask is None:
            return torch.einsum("bn,bnd->bd", scores.softmax(-1), items)
        has_any = mask.any(dim=1, keepdim=True)
        # Rows with no valid item attend uniformly (finite) and are replaced below.
        usable = mask | ~has_any
        weights = scores.masked_fill(~usable, float("-inf")).softmax(-1)
        pooled = torch.einsum("bn,bnd->bd", weights, items.masked_fill(~usable[..., None], 0.0))
        return torch.where(has_any, pooled, self.empty.expand_as(pooled))


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rows of ``x`` scaled to unit L2 norm (zero rows stay finite)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


class LevelProjection(nn.Module):
    """Per level: Linear into the common space, then L2 normalisation."""

    def __init__(self, in_dims: Mapping[str, int], embed_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({lvl: nn.Linear(d, embed_dim) for lvl, d in in_dims.items()})

    def forward(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """level -> (B, in_dim) features to level -> (B, embed_dim) unit vectors."""
        return {lvl: l2_normalize(self.layers[lvl](x)) for lvl, x in features.items()}


class AttributeHeads(nn.Module):
    """ONE Linear per level from the common space to that level's attribute logits.

    The same instance serves the video and the text side when heads are shared, so both
    modalities literally use the same weight tensors.
    """

    def __init__(self, sizes: Mapping[str, int], embed_dim: int, prior: float = 0.01) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({lvl: nn.Linear(embed_dim, k) for lvl, k in sizes.items()})
        # Biases start at the rare-label prior (as in RetinaNet), so the many negative
        # attributes do not swamp the first steps of (focal) BCE.
        for layer in self.layers.values():
            nn.init.constant_(layer.bias, -math.log((1 - prior) / prior))

    @property
    def levels(self) -> tuple[str, ...]:
        """Levels that have a head."""
        return tuple(self.layers.keys())

    def forward(self, embeddings: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """level -> (B, embed_dim) to level -> (B, K_level) logits (levels with a head)."""
        return {lvl: self.layers[lvl](embeddings[lvl]) for lvl in self.levels if lvl in embeddings}


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


def run_bigru(gru: nn.GRU, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run a batch-first GRU over the masked prefix of each row; padded outputs are zero.

    ``mask`` (B, T) must be True on a prefix of each row (the batch convention); positions
    after it never influence the result, in either direction.
    """
    total = inputs.shape[1]
    lengths = mask.sum(dim=1).clamp_min(1).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(
        inputs, lengths, batch_first=True, enforce_sorted=False
    )
    out, _ = gru(packed)
    padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=total)
    return padded * mask[..., None].to(padded.dtype)
