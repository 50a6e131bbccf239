"""Text encoder: word embeddings -> BiGRU -> global / entity / action / relation features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mcsan.core.batch import TextBatch
from mcsan.core.errors import ConfigError
from mcsan.model.cells import PhraseActions, PhraseEntities, TripletTensor
from mcsan.model.layers import AttentionPool, run_bigru
from mcsan.model.model_config import ModelConfig


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


def action_agents(batch: TextBatch) -> torch.Tensor:
    """(B, Na, 2) the agent span of each action span: the nearest entity before it, else the
    caption's first entity, else the action itself."""
    ent = batch.spans["entity"].reshape(*batch.span_masks["entity"].shape, 2)
    act = batch.spans["action"].reshape(*batch.span_masks["action"].shape, 2)
    ent_mask = batch.span_masks["entity"]
    starts = ent[..., 0]
    before = ent_mask[:, None, :] & (starts[:, None, :] < act[..., 0][:, :, None])
    nearest = torch.where(before, starts[:, None, :], -1).argmax(dim=-1)
    first = ent_mask.float().argmax(dim=-1, keepdim=True).expand_as(nearest)
    index = torch.where(before.any(-1), nearest, first)
    agent = ent.gather(1, index[..., None].expand(-1, -1, 2))
    return torch.where(ent_mask.any(-1)[:, None, None], agent, act)


def unary_relation_spans(batch: TextBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Facts about one object as relation triplets of spans: ``(B, N, 3, 2)`` and mask.

    Each entity e gives (e, -, e) with an empty predicate span (its mean is zero, so the
    predicate is a learned constant: "is"); each action a gives (agent, a, agent)
    (:func:`action_agents`).
    """
    ent = batch.spans["entity"].reshape(*batch.span_masks["entity"].shape, 2)
    act = batch.spans["action"].reshape(*batch.span_masks["action"].shape, 2)
    entity_facts = torch.stack([ent, torch.zeros_like(ent), ent], dim=2)
    agent = action_agents(batch)
    action_facts = torch.stack([agent, act, agent], dim=2)
    masks = batch.span_masks
    return torch.cat([entity_facts, action_facts], 1), torch.cat(
        [masks["entity"], masks["action"]], 1
    )


def phrase_ends(windows: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """(B, ..., H): the phrase window (B, L, H) at the last word of each span (B, ..., 2)."""
    last = (spans[..., 1] - 1).clamp_min(0)
    return span_means(windows, torch.stack([last, last + 1], dim=-1))


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
        self.unary = cfg.relation_unary
        self.bind_triplets = cfg.relation_mode == "cell_tensor" and "relation" in self.levels
        self.cell_entities = cfg.entity_mode == "cell_tensor" and "entity" in self.levels
        self.role_phrases = self.bind_triplets and cfg.relation_phrases
        self.cell_actions = cfg.action_mode == "cell_tensor" and "action" in self.levels
        self.reads_phrases = self.role_phrases or self.cell_entities or self.cell_actions
        if self.reads_phrases:
            # a noun phrase ("a pink diamond"): a causal window of 3 words ending at the
            # noun, so a noun's own modifiers reach its feature (BiGRU states mix in others)
            self.phrase = nn.Conv1d(word_dim, hidden, kernel_size=3)
        if self.bind_triplets:
            self.triplet_binding = TripletTensor(hidden)
        elif "relation" in self.levels:
            self.triplet_mlp = nn.Sequential(
                nn.Linear(3 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
            )
        if self.cell_entities:
            self.entity_phrases = PhraseEntities(hidden)
        if self.cell_actions:
            self.action_phrases = PhraseActions(hidden)
        self.out_dims = {lvl: hidden for lvl in self.levels}
        if self.bind_triplets:
            self.out_dims["relation"] = self.triplet_binding.out_dim
        if self.cell_entities:
            self.out_dims["entity"] = self.entity_phrases.out_dim
        if self.cell_actions:  # the verb's span mean, then agent (x) verb
            self.out_dims["action"] = hidden + self.action_phrases.out_dim
        for lvl, dim in self.out_dims.items():
            if dim != hidden:  # a cell branch's own size
                self.pools[lvl] = AttentionPool(dim, cfg.attention_hidden)

    def _phrase_windows(self, words: torch.Tensor) -> torch.Tensor:
        """(B, L, H): per word, the causal window of 3 words ending there. Computed once
        per batch; read with :func:`phrase_ends`."""
        padded = nn.functional.pad(words.transpose(1, 2), (2, 0))
        return torch.relu(self.phrase(padded)).transpose(1, 2)

    def forward(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        """level -> (B, text_hidden) features of the captions in ``batch``."""
        words = self.dropout(self.embedding(batch.tokens))
        states = run_bigru(self.gru, words, batch.mask)
        windows = self._phrase_windows(words) if self.reads_phrases else None
        out: dict[str, torch.Tensor] = {}
        if "global" in self.levels:
            out["global"] = self.pools["global"](states, batch.mask)
        if self.cell_entities:
            nouns = batch.spans["entity"]
            phrases = span_means(states, nouns) + phrase_ends(windows, nouns)
            out["entity"] = self.pools["entity"](
                self.entity_phrases(phrases), batch.span_masks["entity"]
            )
        elif "entity" in self.levels:
            out["entity"] = self.pools["entity"](
                span_means(states, batch.spans["entity"]), batch.span_masks["entity"]
            )
        if "action" in self.levels:
            verbs = span_means(states, batch.spans["action"])
            if self.cell_actions:
                spans = action_agents(batch)
                agents = span_means(states, spans) + phrase_ends(windows, spans)
                verbs = torch.cat([verbs, self.action_phrases(agents, verbs)], dim=-1)
            out["action"] = self.pools["action"](verbs, batch.span_masks["action"])
        if "relation" in self.levels:
            spans, masks = batch.spans["relation"], batch.span_masks["relation"]
            if self.unary:
                unary, unary_mask = unary_relation_spans(batch)
                spans, masks = torch.cat([spans, unary], 1), torch.cat([masks, unary_mask], 1)
            parts = span_means(states, spans)  # (B, Nr, 3, H)
            if self.role_phrases:  # subject and object only, not the predicate
                roles = torch.tensor([1.0, 0.0, 1.0], device=parts.device, dtype=parts.dtype)
                parts = parts + phrase_ends(windows, spans) * roles[:, None]
            if self.bind_triplets:
                triplets = self.triplet_binding(parts)
            else:
                triplets = self.triplet_mlp(parts.flatten(start_dim=2))
            out["relation"] = self.pools["relation"](triplets, masks)
        return {lvl: self.dropout(out[lvl]) for lvl in self.levels}
