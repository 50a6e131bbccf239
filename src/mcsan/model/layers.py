"""Layers both encoders share: masked attention pooling, the level projection and a
masked bidirectional GRU."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


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
