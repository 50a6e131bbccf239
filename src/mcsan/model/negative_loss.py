"""Negative terms of the fused levels: binding negatives (captions made false by editing
their words, :mod:`mcsan.train.negatives`) and hard negative clips (clips of which a
caption is false, ``data.hard_negatives``), each a hinge against the caption's own pair."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mcsan.model.scoring import LevelOutput, level_similarities


@dataclass
class Pairs:
    """One batch's encoder outputs and the similarities the loss terms read."""

    video: LevelOutput
    text: LevelOutput
    weights: Mapping[str, torch.Tensor | float]
    levels: list[str]
    sims: dict[str, torch.Tensor]
    positive: torch.Tensor
    """(Nt, Nv) bool: caption and video belong together."""
    matched: torch.Tensor
    """(Nt,) the first video of each caption."""


def _hinges(positive: Mapping[str, torch.Tensor], negative: Mapping[str, torch.Tensor],
            keep: Mapping[str, torch.Tensor], margin: float) -> dict[str, torch.Tensor]:
    """Mean ``[m + negative - positive]+`` per score name over the rows ``keep`` marks."""
    return {name: F.relu(margin + negative[name] - positive[name])[keep[name]].mean()
            for name in positive if bool(keep[name].any())}  # fmt: skip


def hard_negative_terms(pair: Pairs, clips: tuple[LevelOutput, torch.Tensor], margin: float
                        ) -> dict[str, torch.Tensor]:  # fmt: skip
    """Hinge of each hard negative clip against the own clip of the caption it is false
    for: ``[m + s(cap, neg) - s(cap, own)]+`` on the fused score and on every level the
    caption names; level or "fused" -> mean over the negative clips."""
    clip_out, rows = clips
    present = {lvl: mask[rows] for lvl, mask in pair.text.present.items()}
    text = {lvl: emb[rows] for lvl, emb in pair.text.embeddings.items()}
    neg = level_similarities(text, clip_out.embeddings, pair.weights, pair.levels, present)
    own = pair.matched[rows]
    names = ["fused", *pair.levels]
    everything = torch.ones_like(rows, dtype=torch.bool)
    return _hinges({n: pair.sims[n][rows, own] for n in names},
                   {n: neg[n].diagonal() for n in names},
                   {n: present.get(n, everything) for n in names}, margin)  # fmt: skip


def negative_terms(
    sims: Mapping[str, torch.Tensor],
    negatives: tuple[LevelOutput, torch.Tensor],
    video_out: LevelOutput,
    matched_video: torch.Tensor,
    level_weights: Mapping[str, torch.Tensor | float],
    levels: list[str],
    margin: float,
    present: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Hinge of each binding negative against its caption on the caption's own video:
    ``[m + s(neg, v) - s(cap, v)]+``, on the fused score and per level (where both name
    something at that level); level or "fused" -> mean over negatives."""
    neg_out, rows = negatives
    video = matched_video[rows]
    neg_sims = level_similarities(
        neg_out.embeddings, video_out.embeddings, level_weights, levels, neg_out.present
    )
    names = ["fused", *levels]
    keep = {}
    for name in names:
        keep[name] = torch.ones_like(rows, dtype=torch.bool)
        if name in neg_out.present:
            keep[name] = keep[name] & neg_out.present[name]
        if name in present:
            keep[name] = keep[name] & present[name][rows]
    each = torch.arange(len(rows), device=rows.device)
    return _hinges({n: sims[n][rows, video] for n in names},
                   {n: neg_sims[n][each, video] for n in names}, keep, margin)  # fmt: skip
