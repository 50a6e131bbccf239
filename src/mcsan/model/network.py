"""MCSAN: the two encoders, per-level projections, shared attribute heads, fused similarity."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from mcsan.core.batch import TextBatch, VideoBatch
from mcsan.model.attribute_heads import AttributeHeads
from mcsan.model.layers import LevelProjection
from mcsan.model.matcher import MATCH_TERMS, BindingMatcher
from mcsan.model.matcher_inputs import MatcherText, MatcherVideo
from mcsan.model.model_config import ModelConfig
from mcsan.model.scoring import LevelOutput, level_similarities, retrieval_embeddings
from mcsan.model.text_encoder import TextEncoder
from mcsan.model.video_encoder import VideoEncoder


class MCSAN(nn.Module):
    """Multi-Level Cross-Modal Semantic Alignment Network.

    ``stream_shapes`` are per-frame shapes of the named feature streams ((D,) or (G, D));
    ``attribute_sizes`` the attribute vocabulary size per level (levels missing or of size 0
    get no head); ``word_vectors`` (vocab_size, d) initialise the word embeddings.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        vocab_size: int,
        stream_shapes: Mapping[str, tuple[int, ...]],
        attribute_sizes: Mapping[str, int],
        word_vectors: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.levels = cfg.levels
        self.text_encoder = TextEncoder(cfg, vocab_size, word_vectors)
        self.video_encoder = VideoEncoder(cfg, stream_shapes)
        self.text_projection = LevelProjection(self.text_encoder.out_dims, cfg.embed_dim)
        self.video_projection = LevelProjection(self.video_encoder.out_dims, cfg.embed_dim)
        head_sizes = {
            lvl: int(attribute_sizes[lvl])
            for lvl in self.levels
            if lvl in cfg.attribute_levels and int(attribute_sizes.get(lvl, 0)) > 0
        }
        self.attribute_sizes = head_sizes
        if cfg.shared_attribute_heads:
            self.attribute_heads = AttributeHeads(head_sizes, cfg.embed_dim)
        else:
            self.video_attribute_heads = AttributeHeads(head_sizes, cfg.embed_dim)
            self.text_attribute_heads = AttributeHeads(head_sizes, cfg.embed_dim)
        # a matcher only where it has a term to check (global-only has none)
        self.matcher = (
            BindingMatcher(stream_shapes, self.text_encoder.embedding.embedding_dim,
                           self.levels, cfg.rerank_dim, presence=cfg.rerank_presence)
            if cfg.rerank and set(self.levels) & set(MATCH_TERMS) else None
        )  # fmt: skip
        initial = cfg.initial_level_weights()
        values = torch.tensor([initial[lvl] for lvl in self.levels])
        if cfg.learn_level_weights:
            self.level_weight_logits = nn.Parameter(values.clamp_min(1e-6).log())
        else:
            self.register_buffer("fixed_level_weights", values)

    def heads_for(self, modality: str) -> AttributeHeads:
        """The attribute heads used by ``modality`` ("video" or "text")."""
        if modality not in ("video", "text"):
            raise ValueError(f"modality must be 'video' or 'text', not {modality!r}")
        if self.cfg.shared_attribute_heads:
            return self.attribute_heads
        return self.video_attribute_heads if modality == "video" else self.text_attribute_heads

    def encode_video(self, batch: VideoBatch) -> LevelOutput:
        """Per-level unit embeddings and attribute logits of the clips in ``batch``."""
        embeddings = self.video_projection(self.video_encoder(batch))
        return LevelOutput(embeddings, self.heads_for("video")(embeddings))

    def encode_text(self, batch: TextBatch) -> LevelOutput:
        """Per-level unit embeddings and attribute logits of the captions in ``batch``."""
        embeddings = self.text_projection(self.text_encoder(batch))
        return LevelOutput(embeddings, self.heads_for("text")(embeddings), self.presence(batch))

    def presence(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        """level -> (B,) bool, whether each caption names something at that level
        (empty dict when ``absent_levels == "empty"``: every level then counts)."""
        if self.cfg.absent_levels == "empty":
            return {}
        masks = batch.span_masks
        present = {lvl: masks[lvl].any(dim=1) for lvl in self.levels if lvl in masks}
        if self.cfg.relation_unary and "relation" in present:  # facts about one object count
            present["relation"] = present["relation"] | masks["entity"].any(1) | masks[
                "action"
            ].any(1)
        return present

    def match_video(self, batch: VideoBatch) -> MatcherVideo:
        """The clips as the binding matcher reads them (``model.rerank`` must be on)."""
        if self.matcher is None:
            raise RuntimeError("this model has no binding matcher (model.rerank is off)")
        return self.matcher.encode_video(batch)

    def match_text(self, batch: TextBatch) -> MatcherText:
        """The captions as the binding matcher reads them (shares the word embeddings)."""
        if self.matcher is None:
            raise RuntimeError("this model has no binding matcher (model.rerank is off)")
        return self.matcher.encode_text(batch, self.text_encoder.embedding)

    def text_retrieval_embeddings(self, out: LevelOutput) -> dict[str, torch.Tensor]:
        """Caption embeddings for retrieval: ``sum_l w_l <t_l, v_l>`` equals the fused score
        (absent levels zeroed, rows renormalised), so indexes and the chunked evaluator
        need nothing else."""
        return retrieval_embeddings(out, self.level_weights(), self.levels)

    def forward(self, video: VideoBatch, text: TextBatch) -> tuple[LevelOutput, LevelOutput]:
        """The joint path: (video output, text output)."""
        return self.encode_video(video), self.encode_text(text)

    def level_weights(self) -> dict[str, torch.Tensor]:
        """Non-negative fused weights per enabled level (sum 1; softmax when learned)."""
        if self.cfg.learn_level_weights:
            values = self.level_weight_logits.softmax(dim=0)
        else:
            values = self.fixed_level_weights
        return {lvl: values[i] for i, lvl in enumerate(self.levels)}

    def similarities(
        self,
        text_emb: Mapping[str, torch.Tensor],
        video_emb: Mapping[str, torch.Tensor],
        text_present: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """level | "fused" -> (Nt, Nv) similarity; fused = sum_l w_l * cos_l (renormalised
        over each caption's present levels when ``text_present`` is given)."""
        return level_similarities(
            text_emb, video_emb, self.level_weights(), self.levels, text_present
        )

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameter count per branch (and "total")."""
        groups: dict[str, int] = {}
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            key = _branch_of(name)
            groups[key] = groups.get(key, 0) + param.numel()
        groups["total"] = sum(groups.values())
        return groups


_VIDEO_BRANCHES = {
    "fusion": "video.streams",
    "gru": "video.global",
    "slots": "video.entity_slots",
    "action": "video.action",
    "relations": "video.relation",
}


def _branch_of(name: str) -> str:
    """Group a parameter name into a branch label for parameter_counts()."""
    parts = name.split(".")
    if parts[0] == "video_encoder":
        if parts[1] == "pools":
            return f"video.{parts[2]}"
        return _VIDEO_BRANCHES.get(parts[1], f"video.{parts[1]}")
    if parts[0] == "text_encoder":
        if parts[1] == "pools":
            return f"text.{parts[2]}"
        return {"embedding": "text.words", "gru": "text.gru", "triplet_mlp": "text.relation",
                "triplet_binding": "text.relation"}.get(
            parts[1], f"text.{parts[1]}"
        )
    if parts[0].endswith("projection"):
        return f"{parts[0].split('_')[0]}.projection.{parts[2]}"
    if parts[0].endswith("attribute_heads"):
        return f"attribute_head.{parts[2]}"
    return parts[0]
