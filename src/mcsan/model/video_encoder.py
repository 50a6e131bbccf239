"""Video encoder: named feature streams -> frame (and grid) tokens -> four level features."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from mcsan.core.batch import VideoBatch
from mcsan.core.errors import ConfigError, FeatureError
from mcsan.model.cells import CellActions, CellEntities, CellPairTensor, cell_coordinates
from mcsan.model.layers import AttentionPool, run_bigru
from mcsan.model.model_config import ModelConfig
from mcsan.model.relation import GeometricRelations, grid_coordinates, slot_trajectories


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) fixed sinusoidal position codes (any length, no table to outgrow)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    codes = torch.zeros(length, dim, device=device)
    codes[:, 0::2] = torch.sin(position * freq)
    codes[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return codes


class StreamFusion(nn.Module):
    """Project each named stream to ``hidden`` and fuse them into tokens.

    Per-frame streams (D,) are projected and summed into one frame token per time step.
    Grid streams (G, D) are projected, given learned position embeddings per grid cell, and
    (a) averaged into the frame token and (b) kept as region tokens for the entity slots.
    """

    def __init__(self, stream_shapes: Mapping[str, tuple[int, ...]], hidden: int, dropout: float):
        super().__init__()
        if not stream_shapes:
            raise ConfigError("the model needs at least one feature stream (stream_shapes empty)")
        self.shapes = {name: tuple(int(s) for s in shape) for name, shape in stream_shapes.items()}
        self.names = sorted(self.shapes)
        self._keys = {name: f"s{i}" for i, name in enumerate(self.names)}
        self.proj = nn.ModuleDict()
        self.grid_pos = nn.ParameterDict()
        for name, shape in self.shapes.items():
            if len(shape) not in (1, 2):
                raise ConfigError(
                    f"feature stream {name!r} has per-frame shape {shape}; use (D,) or (G, D)"
                )
            self.proj[self._keys[name]] = nn.Linear(shape[-1], hidden)
            if len(shape) == 2:
                self.grid_pos[self._keys[name]] = nn.Parameter(0.02 * torch.randn(shape[0], hidden))
        self.grid_names = [n for n in self.names if len(self.shapes[n]) == 2]
        self.frame_norm = nn.LayerNorm(hidden)
        self.region_norm = nn.LayerNorm(hidden) if self.grid_names else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch: VideoBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Frame tokens (B, T, H) and region tokens (B, T, G_total, H) or None; padding zero."""
        missing = [n for n in self.names if n not in batch.streams]
        if missing:
            raise FeatureError(
                f"video batch lacks feature stream(s) {missing} (has {sorted(batch.streams)}); "
                "use the feature set the model was trained with"
            )
        frame_sum: torch.Tensor | None = None
        regions = []
        for name in self.names:
            x = batch.streams[name]
            if tuple(x.shape[2:]) != self.shapes[name]:
                raise FeatureError(
                    f"feature stream {name!r} has per-frame shape {tuple(x.shape[2:])}, the "
                    f"model expects {self.shapes[name]}: use the matching feature set"
                )
            key = self._keys[name]
            tokens = self.proj[key](x)
            if name in self.grid_names:
                tokens = tokens + self.grid_pos[key]
                regions.append(tokens)
                tokens = tokens.mean(dim=2)
            frame_sum = tokens if frame_sum is None else frame_sum + tokens
        assert frame_sum is not None
        keep = batch.mask[..., None].to(frame_sum.dtype)
        frames = self.dropout(self.frame_norm(frame_sum)) * keep
        if not regions:
            return frames, None
        assert self.region_norm is not None
        grid = self.dropout(self.region_norm(torch.cat(regions, dim=2))) * keep[..., None]
        return frames, grid


class EntitySlots(nn.Module):
    """K learned queries cross-attending over space-time tokens: (B, N, H) -> (B, K, H)."""

    def __init__(self, hidden: int, slots: int, heads: int, dropout: float):
        super().__init__()
        self.queries = nn.Parameter(0.02 * torch.randn(slots, hidden))
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm_attn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.norm_ffn = nn.LayerNorm(hidden)

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Slots (B, K, H) attending only where ``mask`` (B, N) is True, and (with
        ``need_weights``) where each slot looked: (B, K, N), averaged over heads."""
        queries = self.queries.expand(tokens.shape[0], -1, -1)
        attended, weights = self.attn(
            queries, tokens, tokens, key_padding_mask=~mask, need_weights=need_weights
        )
        slots = self.norm_attn(queries + attended)
        return self.norm_ffn(slots + self.ffn(slots)), weights


class ActionConvs(nn.Module):
    """Temporal 1-D convolutions over frames (and frame differences): (B, T, H) -> (B, T, C).

    Frames are first reduced to ``channels`` (a bottleneck: the convolutions then cost
    O(channels^2) per frame instead of O(hidden * channels)).
    """

    def __init__(self, hidden: int, kernel_sizes: tuple[int, ...], channels: int, diffs: bool):
        super().__init__()
        self.diffs = diffs
        self.reduce = nn.Linear(hidden, channels)
        in_channels = 2 * channels if diffs else channels
        self.convs = nn.ModuleList(
            nn.Conv1d(in_channels, channels, k, padding=k // 2) for k in kernel_sizes
        )
        self.out_dim = channels * len(kernel_sizes)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-frame motion features of the real frames (padding is zeroed first)."""
        keep = mask[..., None].to(frames.dtype)
        x = self.reduce(frames) * keep
        if self.diffs:
            previous = torch.cat([x[:, :1], x[:, :-1]], dim=1)
            x = torch.cat([x, (x - previous) * keep], -1)
        x = x.transpose(1, 2)
        out = torch.cat([torch.relu(conv(x)) for conv in self.convs], dim=1)
        return out.transpose(1, 2)


class SlotRelations(nn.Module):
    """Pairwise interaction of entity slots: (B, K, H) -> (B, M, H) relation tokens."""

    def __init__(self, hidden: int, heads: int, mode: str, dropout: float):
        super().__init__()
        self.mode = mode
        if mode == "self_attention":
            self.block = nn.TransformerEncoderLayer(
                hidden, heads, dim_feedforward=hidden, dropout=dropout, batch_first=True
            )
        else:
            self.pair_mlp = nn.Sequential(
                nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
            )

    def forward(self, slots: torch.Tensor) -> torch.Tensor:
        """Self-attended slots (K tokens) or one token per ordered slot pair (K*(K-1))."""
        if self.mode == "self_attention":
            return self.block(slots)
        k = slots.shape[1]
        if k == 1:
            return self.pair_mlp(torch.cat([slots, slots], dim=-1))
        first, second = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        off_diagonal = first != second
        pairs = torch.cat([slots[:, first[off_diagonal]], slots[:, second[off_diagonal]]], -1)
        return self.pair_mlp(pairs)


class VideoEncoder(nn.Module):
    """Encode a VideoBatch into one feature vector per enabled level.

    global: BiGRU over frame tokens + masked attention pooling over time; entity: K slots
    cross-attending over frame and grid tokens (with time codes, so a slot binds where and
    when); action: temporal convolutions + masked pooling; relation: slot interaction +
    pooling (``relation_mode: geometric``: every ordered slot pair with role-typed projections
    and the pair's trajectory geometry, see :mod:`mcsan.model.relation`). With
    ``entity_mode`` / ``relation_mode: cell_tensor`` those levels are read from the grid cells
    with outer-product binding instead, and ``action_mode: cell_tensor`` appends a cell
    branch to the action level (:mod:`mcsan.model.cells`). Padding frames change nothing.
    """

    def __init__(self, cfg: ModelConfig, stream_shapes: Mapping[str, tuple[int, ...]]):
        super().__init__()
        self.levels = cfg.levels
        self.geometric = "relation" in self.levels and cfg.relation_mode == "geometric"
        # levels read straight from the cells (mcsan.model.cells) instead of from slots
        self.cell_relations = "relation" in self.levels and cfg.relation_mode == "cell_tensor"
        self.cell_entities = "entity" in self.levels and cfg.entity_mode == "cell_tensor"
        self.use_slots = ("entity" in self.levels and not self.cell_entities) or (
            "relation" in self.levels and not self.cell_relations
        )
        hidden = cfg.video_hidden
        self.fusion = StreamFusion(stream_shapes, hidden, cfg.dropout)
        self.pools = nn.ModuleDict()
        self.out_dims: dict[str, int] = {}
        if "global" in self.levels:
            self.gru = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
            self.out_dims["global"] = hidden
        if self.use_slots:
            self.slots = EntitySlots(hidden, cfg.entity_slots, cfg.attention_heads, cfg.dropout)
        if self.cell_entities:
            self.entities = CellEntities(hidden)
            self.out_dims["entity"] = self.entities.out_dim
        elif "entity" in self.levels:
            self.out_dims["entity"] = hidden
        if "action" in self.levels:
            self.action = ActionConvs(
                hidden, cfg.action_kernel_sizes, cfg.action_channels, cfg.action_frame_differences
            )
            self.out_dims["action"] = self.action.out_dim
        self.cell_actions = "action" in self.levels and cfg.action_mode == "cell_tensor"
        if self.cell_actions:
            self.cell_action = CellActions(hidden)
            self.out_dims["action"] += self.cell_action.out_dim
        cells = [stream_shapes[n][0] for n in self.fusion.grid_names]
        if self.cell_relations:
            self.relations = CellPairTensor(hidden, cell_coordinates(cells))
        elif "relation" in self.levels and self.geometric:
            self.relations = GeometricRelations(hidden)
            self.register_buffer("cell_coords", grid_coordinates(cells), persistent=False)
        elif "relation" in self.levels:
            self.relations = SlotRelations(
                hidden, cfg.attention_heads, cfg.relation_mode, cfg.dropout
            )
        if "relation" in self.levels:
            self.out_dims["relation"] = self.relations.out_dim if self.cell_relations else hidden
        pooled_by_cells = {"entity": self.cell_entities, "relation": self.cell_relations}
        for lvl, dim in self.out_dims.items():
            if lvl == "action":
                dim = self.action.out_dim  # the cell part (if any) is appended after pooling
            if not pooled_by_cells.get(lvl, False):  # cell branches pool themselves
                self.pools[lvl] = AttentionPool(dim, cfg.attention_hidden)
        self.dropout = nn.Dropout(cfg.dropout)

    def _space_time_tokens(
        self, frames: torch.Tensor, grid: torch.Tensor | None, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame and grid tokens with time codes, flattened: (B, T*(1+G), H), mask."""
        tokens = frames[:, :, None] if grid is None else torch.cat([frames[:, :, None], grid], 2)
        batch, length, per_step, hidden = tokens.shape
        tokens = tokens + sinusoidal_positions(length, hidden, tokens.device)[None, :, None]
        token_mask = mask[:, :, None].expand(-1, -1, per_step)
        return tokens.reshape(batch, -1, hidden), token_mask.reshape(batch, -1)

    def _relations(
        self, slots: torch.Tensor, where: torch.Tensor | None, mask: torch.Tensor
    ) -> torch.Tensor:
        """Relation tokens: ordered slot pairs with their geometry, or the older modes."""
        if not self.geometric:
            return self.relations(slots)
        assert where is not None
        frames = mask.shape[1]
        if self.cell_coords.shape[0]:
            centre, spread = slot_trajectories(
                where, self.cell_coords, frames, where.shape[-1] // frames
            )
        else:  # no grid stream (frame-level features only): nothing says where
            centre = where.new_zeros(*slots.shape[:2], frames, 2)
            spread = where.new_zeros(*slots.shape[:2], frames)
        return self.relations(slots, centre, spread, mask)

    def forward(self, batch: VideoBatch) -> dict[str, torch.Tensor]:
        """level -> (B, out_dim) features of the clips in ``batch``."""
        mask = batch.mask
        frames, grid = self.fusion(batch)
        out: dict[str, torch.Tensor] = {}
        if "global" in self.levels:
            out["global"] = self.pools["global"](run_bigru(self.gru, frames, mask), mask)
        if self.use_slots:
            slots, where = self.slots(
                *self._space_time_tokens(frames, grid, mask), need_weights=self.geometric
            )
            if "entity" in self.levels and not self.cell_entities:
                out["entity"] = self.pools["entity"](slots)
            if "relation" in self.levels and not self.cell_relations:
                out["relation"] = self.pools["relation"](self._relations(slots, where, mask))
        cells = frames[:, :, None] if grid is None else grid
        if self.cell_entities:
            out["entity"] = self.entities(cells, mask)
        if self.cell_relations:
            out["relation"] = self.relations(cells, mask)
        if "action" in self.levels:
            out["action"] = self.pools["action"](self.action(frames, mask), mask)
        if self.cell_actions:
            out["action"] = torch.cat([out["action"], self.cell_action(cells, mask)], dim=-1)
        return {lvl: self.dropout(out[lvl]) for lvl in self.levels}
