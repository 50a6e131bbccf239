"""The parameter-shared attribute projection: one linear head per attribute level, used
by both modalities."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn


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
