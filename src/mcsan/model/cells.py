"""Cell branches: levels read from grid cells with their roles bound by outer products.

A pooled clip vector cannot say which colour goes with which shape, or who is left of whom:
sums of per-cell features forget which cell held what. An outer product keeps it. With
``a(x)`` and ``b(x)`` two small projections of a cell token x:

- entity (``entity_mode: cell_tensor``): the clip is ``mean_i a(x_i) (x) b(x_i)`` and a
  noun phrase ``p(n) (x) q(n)``; their inner product is ``sum_i <p, a(x_i)> <q, b(x_i)>``:
  both halves of a phrase (say its colour and its shape) must match *the same* cell;
- relation (``relation_mode: cell_tensor``): the clip is the mean over frames t and ordered
  cell pairs (i, j) of ``s(x_ti) (x) o(x_tj) (x) (g(c_i, c_j) * h(t))``, where g embeds the
  pair's geometry and h the frame's relative time, and a triplet is
  ``S(subject) (x) O(object) (x) R(predicate)``. The inner product is a sum over cell pairs
  of (cell i fits the subject) x (cell j fits the object) x (their geometry over time fits
  the predicate): soft grounding of both roles, still one vector per clip, so the fused score
  stays an inner product (chunked evaluator and FAISS index unchanged). Exchanging subject
  and object moves s and o to other cells, so (a, p, b) and (b, p, a) differ.

Cell tokens carry their change since the previous frame, so "who moves" is visible. Without
a grid stream the frame token is the one cell (centre 0.5, 0.5).

(An elementwise, rank-D version of the same products was measured first and bound roles
less well: docs/RELATIONS_RESULTS.md.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mcsan.model.relation import grid_coordinates


def cell_coordinates(cells: Sequence[int]) -> torch.Tensor:
    """Centres of the grid cells, or one centre (0.5, 0.5) when there is no grid stream."""
    coords = grid_coordinates(cells)
    return coords if coords.shape[0] else torch.full((1, 2), 0.5)


def _cell_pair_geometry(coords: torch.Tensor) -> torch.Tensor:
    """(G, G, 6) per ordered cell pair (i, j): offset c_j - c_i, its length, c_i, and a
    same-cell flag."""
    offset = coords[None, :, :] - coords[:, None, :]
    length = offset.norm(dim=-1, keepdim=True)
    subject = coords[:, None, :].expand_as(offset)
    same = torch.eye(coords.shape[0], dtype=coords.dtype)[..., None]
    return torch.cat([offset, length, subject, same], dim=-1)


def _with_change(cells: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Cell tokens (B, T, G, D) with their change since the previous real frame appended."""
    previous = torch.cat([cells[:, :1], cells[:, :-1]], dim=1)
    return torch.cat([cells, (cells - previous) * keep[..., None, None]], dim=-1)


def _outer(*factors: torch.Tensor) -> torch.Tensor:
    """Flattened outer product over the last dimension: (..., a), (..., b) -> (..., a * b)."""
    out = factors[0]
    for factor in factors[1:]:
        out = (out[..., :, None] * factor[..., None, :]).flatten(start_dim=-2)
    return out


def _mean_over_cells(per_cell: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(B, D): the mean of (B, T, G, D) over the real frames (``keep`` (B, T)) and cells."""
    total = (per_cell * keep[..., None, None]).sum(dim=(1, 2))
    return total / (keep.sum(1, keepdim=True) * per_cell.shape[2]).clamp_min(1)


class CellEntities(nn.Module):
    """Entity level from cells: the mean over cells and frames of a(x) (x) b(x)."""

    def __init__(self, hidden: int, role_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = role_dim * role_dim
        self.reduce = nn.Linear(hidden, hidden // 2)
        self.first = nn.Linear(hidden, role_dim)
        self.second = nn.Linear(hidden, role_dim)

    def forward(self, cells: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, out_dim) from cell tokens (B, T, G, H); ``mask`` (B, T) marks real frames."""
        keep = mask.to(cells.dtype)
        x = _with_change(self.reduce(cells), keep)
        return _mean_over_cells(_outer(self.first(x), self.second(x)), keep)


class PhraseEntities(nn.Module):
    """Text side of :class:`CellEntities`: a noun phrase as p(n) (x) q(n)."""

    def __init__(self, hidden: int, role_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = role_dim * role_dim
        self.first = nn.Linear(hidden, role_dim)
        self.second = nn.Linear(hidden, role_dim)

    def forward(self, phrases: torch.Tensor) -> torch.Tensor:
        """(B, N, H) phrase features -> (B, N, out_dim)."""
        return _outer(self.first(phrases), self.second(phrases))


class CellPairTensor(nn.Module):
    """Relation level from ordered cell pairs: subject (x) object (x) geometry-in-time."""

    def __init__(self, hidden: int, coords: torch.Tensor, role_dim: int = 8,
                 geometry_dim: int = 4, geometry_hidden: int = 64) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("pair_geometry", _cell_pair_geometry(coords), persistent=False)
        self.out_dim = role_dim * role_dim * geometry_dim
        self.reduce = nn.Linear(hidden, hidden // 2)
        self.subject = nn.Linear(hidden, role_dim)
        self.object = nn.Linear(hidden, role_dim)
        self.geometry = nn.Sequential(
            nn.Linear(self.pair_geometry.shape[-1], geometry_hidden), nn.ReLU(),
            nn.Linear(geometry_hidden, geometry_dim),
        )  # fmt: skip
        self.time = nn.Sequential(nn.Linear(1, geometry_hidden), nn.ReLU(),
                                  nn.Linear(geometry_hidden, geometry_dim))  # fmt: skip

    def forward(self, cells: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, out_dim) from cell tokens (B, T, G, H); ``mask`` (B, T) marks real frames."""
        keep = mask.to(cells.dtype)
        x = _with_change(self.reduce(cells), keep)
        subj, obj = self.subject(x), self.object(x)  # (B, T, G, a)
        geometry = self.geometry(self.pair_geometry.to(cells.dtype))  # (G, G, k)
        frames = keep.sum(1, keepdim=True)
        when = torch.arange(mask.shape[1], device=cells.device, dtype=cells.dtype)[None]
        when = when / (frames - 1).clamp_min(1)  # relative time in [0, 1] per clip
        weights = self.time(when[..., None]) * keep[..., None]  # (B, T, k)
        # sum_ij s_i (x) o_j (x) g_ij, contracted pair by pair (never a (B, T, G, G, ...) tensor)
        object_context = torch.einsum("btjc,ijk->btick", obj, geometry)
        per_frame = torch.einsum("btia,btick->btack", subj, object_context)
        total = torch.einsum("btack,btk->back", per_frame, weights)
        pairs = cells.shape[2] ** 2
        return (total / (frames[:, :, None, None] * pairs)).flatten(start_dim=1)


class TripletTensor(nn.Module):
    """Text side of :class:`CellPairTensor`: S(subject) (x) O(object) (x) R(predicate)."""

    def __init__(self, hidden: int, role_dim: int = 8, geometry_dim: int = 4) -> None:
        super().__init__()
        self.subject = nn.Linear(hidden, role_dim)
        self.object = nn.Linear(hidden, role_dim)
        self.predicate = nn.Linear(hidden, geometry_dim)
        self.out_dim = role_dim * role_dim * geometry_dim

    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        """``parts`` (B, N, 3, H): subject, predicate, object features -> (B, N, out_dim)."""
        subj, pred, obj = parts.unbind(dim=2)
        return _outer(self.subject(subj), self.object(obj), self.predicate(pred))


class CellActions(nn.Module):
    """Action level from cells: the mean over cells and frames of a(x) (x) m(x), where m reads
    the cell's change over three frames: which thing moves how, not only that something
    moves. (The frame-level convolutions stay beside it: :class:`VideoEncoder`.)"""

    def __init__(self, hidden: int, role_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = role_dim * role_dim
        reduced = hidden // 2
        self.reduce = nn.Linear(hidden, reduced)
        self.appearance = nn.Linear(reduced, role_dim)
        self.motion = nn.Conv1d(2 * reduced, role_dim, kernel_size=3, padding=1)

    def forward(self, cells: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, out_dim) from cell tokens (B, T, G, H); ``mask`` (B, T) marks real frames."""
        keep = mask.to(cells.dtype)
        x = self.reduce(cells) * keep[..., None, None]
        batch, frames, count, _ = x.shape
        series = _with_change(x, keep).permute(0, 2, 3, 1).reshape(batch * count, -1, frames)
        motion = self.motion(series).reshape(batch, count, -1, frames).permute(0, 3, 1, 2)
        return _mean_over_cells(_outer(self.appearance(x), motion), keep)


class PhraseActions(nn.Module):
    """Text side of :class:`CellActions`: agent phrase (x) verb."""

    def __init__(self, hidden: int, role_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = role_dim * role_dim
        self.agent = nn.Linear(hidden, role_dim)
        self.verb = nn.Linear(hidden, role_dim)

    def forward(self, agents: torch.Tensor, verbs: torch.Tensor) -> torch.Tensor:
        """(B, N, H) agent and verb features -> (B, N, out_dim)."""
        return _outer(self.agent(agents), self.verb(verbs))
