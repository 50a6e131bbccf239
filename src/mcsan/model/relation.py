"""The geometric relation branch: slots that know where and when, ordered slot pairs.

Each entity slot cross-attends over frame and grid tokens. Where it looked is kept: per
frame, the slot's attention over the grid cells (renormalised within the frame) gives an
attention-weighted centre (x, y) and spread, i.e. a trajectory over time (the "explicit
statistics" of Invariant Slot Attention, per frame). A relation token is built for every
*ordered* pair of slots (i, j), i != j, from role-typed projections (a subject projection of
slot i, an object projection of slot j, as in scene-graph models) plus the pair's geometry:
the offset p_j - p_i averaged over time, at the first and the last frame, the distance at
the start and the end and its change, and both slots' displacements (Santoro et al.'s
relation networks concatenate coordinates in the same spirit). Because the subject and
object projections differ and the offset changes sign, (a, p, b) and (b, p, a) give
different tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

GEOMETRY_DIM = 15
"""Per ordered pair: mean / first / last offset (6), distance first / last / change (3),
subject and object displacement (4), subject and object spread (2)."""


def grid_coordinates(cells: Sequence[int]) -> torch.Tensor:
    """(sum(cells), 2) centres (x, y) in [0, 1] of the cells of each grid stream.

    A stream of G = g * g cells is a row-major g x g grid; any other G is read as one row.
    """
    coords = []
    for count in cells:
        side = math.isqrt(count)
        cols, rows = (side, side) if side * side == count else (count, 1)
        index = torch.arange(count, dtype=torch.float32)
        coords.append(
            torch.stack([(index % cols + 0.5) / cols, (index // cols + 0.5) / rows], dim=-1)
        )
    return torch.cat(coords) if coords else torch.zeros(0, 2)


def slot_trajectories(
    weights: torch.Tensor, coords: torch.Tensor, frames: int, per_step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame centre (B, K, T, 2) and spread (B, K, T) of each slot's attention.

    ``weights`` (B, K, T * per_step) is the slot attention over the flattened space-time
    tokens (per step: one frame token, then the grid cells whose centres are ``coords``).
    """
    batch, slots, _ = weights.shape
    grid = weights.reshape(batch, slots, frames, per_step)[..., per_step - coords.shape[0]:]
    grid = grid / grid.sum(-1, keepdim=True).clamp_min(1e-8)
    centre = grid @ coords.to(grid.dtype)
    second = grid @ (coords**2).sum(-1, keepdim=True).to(grid.dtype)
    spread = _safe_sqrt(second.squeeze(-1) - (centre**2).sum(-1))
    return centre, spread


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite gradient at 0 (a slot on one cell has spread 0)."""
    return (x.clamp_min(0) + 1e-6).sqrt()


def _first_last(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, P, T, ...) at each row's first and last real frame (mask (B, T) a prefix)."""
    last = (mask.sum(1).clamp_min(1) - 1).long()
    index = last.view(-1, 1, 1, *([1] * (x.dim() - 3))).expand(
        x.shape[0], x.shape[1], 1, *x.shape[3:]
    )
    return x[:, :, 0], x.gather(2, index).squeeze(2)


def pair_geometry(
    centre: torch.Tensor, spread: torch.Tensor, mask: torch.Tensor,
    first: torch.Tensor, second: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """(B, P, GEOMETRY_DIM) features of the ordered pairs (first[p], second[p])."""
    keep = mask[:, None, :, None].to(centre.dtype)
    offset = centre[:, second] - centre[:, first]  # (B, P, T, 2): object minus subject
    mean_offset = (offset * keep).sum(2) / keep.sum(2).clamp_min(1)
    start, end = _first_last(offset, mask)
    dist_start = _safe_sqrt((start**2).sum(-1, keepdim=True))
    dist_end = _safe_sqrt((end**2).sum(-1, keepdim=True))
    begin_pos, end_pos = _first_last(centre, mask)
    moved = end_pos - begin_pos  # (B, K, 2)
    keep_t = mask[:, None].to(spread.dtype)
    mean_spread = (spread * keep_t).sum(-1) / keep_t.sum(-1).clamp_min(1)  # (B, K)
    return torch.cat(
        [mean_offset, start, end, dist_start, dist_end, dist_end - dist_start,
         moved[:, first], moved[:, second], mean_spread[:, first, None],
         mean_spread[:, second, None]], dim=-1,
    )  # fmt: skip


class GeometricRelations(nn.Module):
    """Ordered slot pairs with role-typed projections and pair geometry: (B, K(K-1), H)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.subject = nn.Linear(hidden, hidden)
        self.object = nn.Linear(hidden, hidden, bias=False)
        self.geometry = nn.Sequential(
            nn.Linear(GEOMETRY_DIM, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.LayerNorm(hidden))

    def forward(
        self, slots: torch.Tensor, centre: torch.Tensor, spread: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Relation tokens of every ordered pair (i, j), i != j (one pair (0, 0) if K == 1)."""
        k = slots.shape[1]
        rows, cols = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        pick = rows != cols if k > 1 else torch.ones_like(rows, dtype=torch.bool)
        first, second = rows[pick].to(slots.device), cols[pick].to(slots.device)
        geometry = pair_geometry(centre, spread, mask, first, second)
        tokens = (
            self.subject(slots[:, first]) + self.object(slots[:, second])
            + self.geometry(geometry.to(slots.dtype))
        )  # fmt: skip
        return self.out(tokens)
