"""Text encoder: word embeddings -> BiGRU -> global / entity / action / relation features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mcsan.batch import TextBatch
from mcsan.errors import ConfigError
from mcsan.model.config import ModelConfig
from mcsan.model.layers import AttentionPool, run_bigru


def span_means(states: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Mean of ``states`` (B, L, H) over each ``[start, end)`` span of ``spans`` (B, ..., 2).

    Returns (B, ..., H). Uses a prefix sum, so it costs O(B * L * H) whatever the span count.
    """
    batch, length, hidden = states.shape
    lead = spans.shape[1:-1]
    flat = spans.reshape(batch, -1, 2).clamp(0, length)
    prefix = torch.cat([states.new_zeros(batch, 1, hidden), states.cumsum(dim=1)], dim=1)

    def at(index: torch.Tensor) -> torch.Tensor:
        return prefix.gather(1, index[..., None].expand(-1, -1, hidden))

    sums = at(flat[..., 1]) - at(flat[..., 0])
    counts = (flat[..., 1] - flat[..., 0]).clamp_min(1)[..., None].to(states.dtype)
    return (sums / counts).reshape(batch, *lead, hidden)


class TextEncoder(nn.Module):
    """Encode a TextBatch into one feature vector per enabled level.

    global: attention pooling over all word states; entity / action: mean of the word states
    inside each parsed span, then attention pooling over spans; relation: each triplet's
    subject / predicate / object span means concatenated through a small MLP, then pooled.
    A caption with no item at a level gets that level's learned "empty" vector.
    """

    def __init__(
        self, cfg: ModelConfig, vocab_size: int, word_vectors: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.levels = cfg.levels
        word_dim = cfg.word_dim
        if word_vectors is not None:
            if word_vectors.ndim != 2 or word_vectors.shape[0] != vocab_size:
                raise ConfigError(
                    f"word vectors have shape {tuple(word_vectors.shape)} but the vocabulary "
                    f"has {vocab_size} words: load vectors for this vocabulary"
                )
            word_dim = int(word_vectors.shape[1])
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        if word_vectors is not None:
            with torch.no_grad():
                self.embedding.weight.copy_(torch.as_tensor(word_vectors, dtype=torch.float32))
                self.embedding.weight[0].zero_()
        self.embedding.weight.requires_grad_(not cfg.freeze_words)
        hidden = cfg.text_hidden
        self.gru = nn.GRU(word_dim, hidden // 2, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.pools = nn.ModuleDict(
            {lvl: AttentionPool(hidden, cfg.attention_hidden) for lvl in self.levels}
        )
        if "relation" in self.levels:
            self.triplet_mlp = nn.Sequential(
                nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
            )
        self.out_dims = {lvl: hidden for lvl in self.levels}

    def forward(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        """level -> (B, text_hidden) features of the captions in ``batch``."""
        words = self.dropout(self.embedding(batch.tokens))
        states = run_bigru(self.gru, words, batch.mask)
        out: dict[str, torch.Tensor] = {}
        if "global" in self.levels:
            out["global"] = self.pools["global"](states, batch.mask)
        if "entity" in self.levels:
            out["entity"] = self.pools["entity"](
                span_means(states, batch.spans["entity"]), batch.span_masks["entity"]
            )
        if "action" in self.levels:
            out["action"] = self.pools["action"](
                span_means(states, batch.spans["action"]), batch.span_masks["action"]
            )
        if "relation" in self.levels:
            parts = span_means(states, batch.spans["relation"])  # (B, Nr, 3, H)
            triplets = self.triplet_mlp(parts.flatten(start_dim=2))
            out["relation"] = self.pools["relation"](triplets, batch.span_masks["relation"])
        return {lvl: self.dropout(out[lvl]) for lvl in self.levels}
