"""MCSAN losses: bidirectional triplet ranking (VSE++), focal BCE on attributes, and KL
between the video's and the text's attribute distributions.

They take embeddings and logits (``LevelOutput``), never the model, so a distributed trainer
can gather both modalities across ranks first.

Batch convention: ``Nt`` captions and ``Nv`` videos; ``video_keys`` (Nv,) are the videos' ids
(any integers; duplicates allowed) and ``caption_keys`` (Nt,) the id of each caption's video
(defaults to ``video_keys``, i.e. caption i belongs to video row i, Nt == Nv == B). Every
(caption, video) pair with equal ids is a positive and is never used as a negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from mcsan.core.errors import ConfigError
from mcsan.core.validate import check_section
from mcsan.model.negative_loss import Pairs, hard_negative_terms, negative_terms
from mcsan.model.scoring import LevelOutput, level_similarities

KLDirection = Literal["video_to_text", "text_to_video", "symmetric"]
KL_DIRECTIONS: tuple[str, ...] = get_args(KLDirection)


@dataclass
class LossConfig:
    """Weights and switches of the training objective (our defaults where the paper is silent)."""

    # Triplet margin and hardest-negative mining (VSE++), as in HGR.
    margin: float = 0.2
    hardest_negative: bool = True
    """Hinge on the hardest negative of the batch (VSE++) instead of the sum over negatives."""
    # One triplet term per enabled level, and one on the fused similarity. With a single
    # level both would be the same term, so the fused one is then skipped.
    per_level_triplet: bool = True
    fused_triplet: bool = True
    """A triplet term on the fused similarity (see per_level_triplet)."""
    # "mean" over positive pairs (batch-size independent) or "sum" (VSE++'s own reduction).
    triplet_reduction: Literal["mean", "sum"] = "mean"
    # Focal BCE on attribute logits (False = plain BCE ablation). alpha weighs positives,
    # gamma down-weighs easy examples; 0.25 / 2.0 are RetinaNet's defaults.
    use_focal: bool = True
    fbce_alpha: float = 0.25
    """Focal BCE weight of positive labels (RetinaNet: 0.25)."""
    fbce_gamma: float = 2.0
    """Focal BCE focusing exponent: easy examples down-weighted (RetinaNet: 2)."""
    # Weight of the attribute loss (summed over levels and both modalities; each term is the
    # per-sample sum over the level's classes, averaged over samples).
    lambda_fbce: float = 0.02
    # KL between attribute distributions (softmax of logits / temperature) of matched pairs.
    # "video_to_text": KL(p_text || p_video), the video distribution is pulled to the text's
    # (PyTorch KLDivLoss(video log-probs, text probs)); "text_to_video" the reverse;
    # "symmetric" the mean of both. Gradients reach both modalities (no stop-gradient).
    use_kl: bool = True
    lambda_kl: float = 0.1
    """Weight of the KL term between the two modalities' attribute distributions."""
    kl_direction: KLDirection = "video_to_text"
    """video_to_text = KL(p_text || p_video) (video pulled to text), text_to_video the reverse, symmetric the mean."""
    kl_temperature: float = 1.0
    """Temperature of the softmax over attribute logits inside the KL term."""
    # Binding negatives made from each caption's parse (mcsan.train.negatives):
    # subject and object swapped ("roles"), modifiers exchanged between two nouns
    # ("attributes"), two actions exchanged ("actions"), the predicate replaced by another
    # from the batch ("predicates"). Each negative must score below its
    # caption on the caption's own video by the margin: [m + s(neg, v) - s(cap, v)]+ on the
    # fused score and on every level both name; mean over negatives, times lambda_negatives.
    negative_roles: bool = False
    negative_attributes: bool = False
    """Binding negatives with modifiers exchanged between two nouns (see negative_roles)."""
    negative_actions: bool = False
    """Binding negatives with two actions exchanged (see negative_roles)."""
    negative_predicates: bool = False
    """Binding negatives with the predicate replaced by another caption's (see negative_roles)."""
    lambda_negatives: float = 1.0
    """Weight of the binding negatives' hinge (see negative_roles)."""
    # Weight of the binding matcher's own ranking loss (model.rerank; mcsan.model.matcher):
    # the triplet sum over the batch's clips on its scores, plus each binding negative's
    # hinge against its caption on the caption's clip.
    lambda_match: float = 1.0
    # The matcher's relation term also ranks every predicate of the batch for each
    # relation's grounded geometry (BindingMatcher.predicate_contrast). Measured on the demo
    # world (one seed, matcher alone): relation-changed twins 58 -> 85% after 3 epochs.
    match_predicates: bool = True
    # Weight of the predicate contrast inside the matcher's loss (with match_predicates).
    lambda_predicates: float = 1.0
    # Distillation of the matcher into the fused levels: each caption's entity / action /
    # relation level similarities over the batch's clips are pulled (KL) towards the
    # softmax of the matcher's term of the same name (teacher detached); 0 = off.
    lambda_distill: float = 0.0
    distill_temperature: float = 0.05
    """Temperature of the matcher's softmax in the distillation term (lambda_distill)."""
    # Hard negative clips (data.hard_negatives: clips that differ from a caption's own clip
    # in what the caption says, e.g. the world's training twins): [m + s(cap, neg) -
    # s(cap, own)]+ on the fused score and on every level the caption names, mean over the
    # batch's negative clips, times this weight. Off while data.hard_negatives is 0.
    lambda_hard_negatives: float = 1.0

    def negative_kinds(self) -> tuple[str, ...]:
        """The binding negative kinds switched on (empty: none are made)."""
        on = (self.negative_roles, self.negative_attributes, self.negative_actions,
              self.negative_predicates)  # fmt: skip
        kinds = ("roles", "attributes", "actions", "predicates")  # negatives.NEGATIVE_KINDS
        return tuple(k for k, flag in zip(kinds, on, strict=True) if flag)

    def __post_init__(self) -> None:
        check_section("loss", self)
        if not (self.per_level_triplet or self.fused_triplet):
            raise ConfigError("loss: enable per_level_triplet or fused_triplet (both are off)")


@dataclass
class MatchScores:
    """The binding matcher's scores on one (local, never gathered) training batch."""

    pairs: torch.Tensor
    """(B, B) caption row x clip row."""
    positive: torch.Tensor
    """(B, B) bool, caption and clip belong together."""
    negatives: torch.Tensor | None = None
    """(N,) each binding negative on the clip of the caption it was made from."""
    rows: torch.Tensor | None = None
    """(N,) that caption's row (its clip is the same row)."""
    predicates: torch.Tensor | None = None
    """The relation term's predicate contrast (scalar), when switched on."""
    terms: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None
    """Each term's (caption rows, (R, B) cosines) (:meth:`BindingMatcher.term_scores`)."""


def distill_terms(sims: Mapping[str, torch.Tensor], scores: MatchScores, temperature: float
                  ) -> dict[str, torch.Tensor]:  # fmt: skip
    """KL(softmax(matcher term / T) || softmax(level similarity / T)) over each caption's
    row of clips, for the levels named like a matcher term (this rank's batch only)."""
    out = {}
    for term, (rows, teacher) in (scores.terms or {}).items():
        student = sims.get(term)
        if student is None or student.shape != scores.pairs.shape:
            continue  # a gathered (DDP) similarity: its rows are not this rank's captions
        target = F.log_softmax(teacher.detach().float() / temperature, dim=-1)
        log_q = F.log_softmax(student[rows] / temperature, dim=-1)
        out[term] = (target.exp() * (target - log_q)).sum(-1).mean()
    return out


def match_terms(scores: MatchScores, margin: float, predicate_weight: float = 1.0
                ) -> dict[str, torch.Tensor]:  # fmt: skip
    """The matcher's loss terms: "pairs" (triplet, sum over negative clips and captions),
    "negatives" (mean hinge ``[m + s(neg, v) - s(cap, v)]+``) and "predicates" (the
    predicate contrast times ``predicate_weight``)."""
    terms = {"pairs": triplet_loss(scores.pairs, scores.positive, margin, hardest=False)}
    if scores.negatives is not None and scores.rows is not None and len(scores.rows):
        own = scores.pairs[scores.rows, scores.rows]
        terms["negatives"] = F.relu(margin + scores.negatives - own).mean()
    if scores.predicates is not None:
        terms["predicates"] = predicate_weight * scores.predicates
    return terms


def triplet_loss(
    sim: torch.Tensor,
    positive_mask: torch.Tensor,
    margin: float = 0.2,
    hardest: bool = True,
    reduction: str = "mean",
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bidirectional triplet ranking loss over a (Nt captions, Nv videos) similarity.

    ``rows`` (Nt,) bool restricts the term to those captions (as anchors and as negatives),
    e.g. the captions that name something at this level.

    For each positive pair (i, j): caption->video hinge ``[m + s(i, k) - s(i, j)]+`` over
    negative videos k of caption i, and video->caption ``[m + s(c, j) - s(i, j)]+`` over
    negative captions c of video j; the hardest negative only (VSE++) or the sum over all.
    Positives are never negatives. ``reduction``: mean over positive pairs, or sum.
    """
    positive = positive_mask.bool()
    negative = ~positive
    if rows is not None:
        positive = positive & rows[:, None]
        negative = negative & rows[:, None]
    if hardest:
        floor = torch.finfo(sim.dtype).min
        masked = sim.masked_fill(~negative, floor)
        hardest_video = masked.max(dim=1).values.masked_fill(~negative.any(dim=1), floor)
        hardest_caption = masked.max(dim=0).values.masked_fill(~negative.any(dim=0), floor)
        to_video = F.relu(margin + hardest_video[:, None] - sim)
        to_caption = F.relu(margin + hardest_caption[None, :] - sim)
    else:
        # cost[i, j, k] for positive (i, j) and video k / caption k.
        to_video = (F.relu(margin + sim[:, None, :] - sim[:, :, None]) * negative[:, None, :]).sum(
            -1
        )
        to_caption = (
            F.relu(margin + sim.t()[None, :, :] - sim[:, :, None]) * negative.t()[None, :, :]
        ).sum(-1)
    cost = ((to_video + to_caption) * positive).sum()
    if reduction == "sum":
        return cost
    return cost / positive.sum().clamp_min(1)


def focal_bce_with_logits(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Focal BCE ``-[a y (1-p)^g log p + (1-a)(1-y) p^g log(1-p)]``, p = sigmoid(logits).

    Computed from logits with log-sigmoids (finite for any logit). ``reduction``: "none",
    "mean" (over all elements) or "sum".
    """
    targets = targets.to(logits.dtype)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    positive = alpha * targets * torch.exp(gamma * log_not_p) * log_p
    negative = (1 - alpha) * (1 - targets) * torch.exp(gamma * log_p) * log_not_p
    loss = -(positive + negative)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def attribute_kl(
    video_logits: torch.Tensor,
    text_logits: torch.Tensor,
    temperature: float = 1.0,
    direction: str = "video_to_text",
) -> torch.Tensor:
    """KL between matched rows' attribute distributions, averaged over rows.

    Each row's distribution is softmax(logits / temperature) over the level's attributes.
    "video_to_text" = KL(p_text || p_video); "text_to_video" = KL(p_video || p_text);
    "symmetric" = their mean.
    """
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {KL_DIRECTIONS}, not {direction!r}")
    log_video = F.log_softmax(video_logits / temperature, dim=-1)
    log_text = F.log_softmax(text_logits / temperature, dim=-1)

    def kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        return (log_p.exp() * (log_p - log_q)).sum(-1).mean()

    if direction == "video_to_text":
        return kl(log_text, log_video)
    if direction == "text_to_video":
        return kl(log_video, log_text)
    return 0.5 * (kl(log_text, log_video) + kl(log_video, log_text))


class MCSANLoss(nn.Module):
    """total = triplet terms + lambda_fbce * attribute BCE terms + lambda_kl * KL terms."""

    def __init__(self, cfg: LossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LossConfig()

    def _attribute_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if cfg.use_focal:
            per_element = focal_bce_with_logits(logits, targets, cfg.fbce_alpha, cfg.fbce_gamma)
        else:
            per_element = F.binary_cross_entropy_with_logits(
                logits, targets.to(logits.dtype), reduction="none"
            )
        return per_element.sum(-1).mean()

    def forward(
        self,
        video_out: LevelOutput,
        text_out: LevelOutput,
        level_weights: Mapping[str, torch.Tensor | float],
        video_keys: torch.Tensor,
        text_targets: Mapping[str, torch.Tensor],
        video_targets: Mapping[str, torch.Tensor],
        caption_keys: torch.Tensor | None = None,
        negatives: tuple[LevelOutput, torch.Tensor] | None = None,
        match: MatchScores | None = None,
        match_scale: float = 1.0,
        hard_negatives: tuple[LevelOutput, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its named parts (detached scalars), see the module docstring.

        ``negatives``: encoded binding negatives and the caption row each was made from;
        ``hard_negatives``: encoded hard negative clips and the caption row each is false
        for; ``match``: the binding matcher's scores (model.rerank), on this rank's batch
        only; ``match_scale`` multiplies their weight (1 / world size under DDP, so that the
        averaged gradient is the mean over ranks, like the gathered terms')."""
        caption_keys = video_keys if caption_keys is None else caption_keys
        positive = caption_keys[:, None] == video_keys[None, :]
        levels = list(level_weights)
        sims = level_similarities(
            text_out.embeddings, video_out.embeddings, level_weights, levels, text_out.present
        )
        pair = Pairs(video_out, text_out, level_weights, levels, sims, positive,
                      positive.to(torch.uint8).argmax(dim=1))  # first video of each caption
        terms = self._first_stage_terms(pair, text_targets, video_targets, negatives,
                                        hard_negatives)  # fmt: skip
        terms.update(self._second_stage_terms(sims, match))
        return self._total(terms, match_scale, sims["fused"])

    def _first_stage_terms(self, pair: Pairs, text_targets: Mapping[str, torch.Tensor],
                           video_targets: Mapping[str, torch.Tensor],
                           negatives: tuple[LevelOutput, torch.Tensor] | None,
                           hard_negatives: tuple[LevelOutput, torch.Tensor] | None,
                           ) -> dict[str, dict[str, torch.Tensor]]:  # fmt: skip
        """Triplet, attribute (focal BCE, KL) and negative terms of the fused levels."""
        cfg = self.cfg
        terms: dict[str, dict[str, torch.Tensor]] = {
            "triplet": {}, "fbce": {}, "kl": {}, "negatives": {}
        }  # fmt: skip
        if negatives is not None:
            terms["negatives"] = negative_terms(
                pair.sims, negatives, pair.video, pair.matched, pair.weights, pair.levels,
                cfg.margin, pair.text.present,
            )  # fmt: skip
        if hard_negatives is not None:
            terms["hard_negatives"] = hard_negative_terms(pair, hard_negatives, cfg.margin)
        triplet_on = list(pair.levels) if cfg.per_level_triplet else []
        if cfg.fused_triplet and not (cfg.per_level_triplet and len(pair.levels) == 1):
            triplet_on.append("fused")
        for name in triplet_on:
            terms["triplet"][name] = triplet_loss(
                pair.sims[name], pair.positive, cfg.margin, cfg.hardest_negative,
                cfg.triplet_reduction, rows=pair.text.present.get(name),
            )  # fmt: skip
        terms["fbce"], terms["kl"] = self._attribute_terms(pair, text_targets, video_targets)
        return terms

    def _attribute_terms(self, pair: Pairs, text_targets: Mapping[str, torch.Tensor],
                         video_targets: Mapping[str, torch.Tensor],
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:  # fmt: skip
        """Focal BCE per modality and level, and the KL of matched pairs' distributions."""
        cfg = self.cfg
        fbce, kl = {}, {}
        for modality, out, targets in (("video", pair.video, video_targets),
                                       ("text", pair.text, text_targets)):  # fmt: skip
            for lvl, logits in out.attribute_logits.items():
                if lvl not in targets:
                    raise KeyError(f"no {modality} attribute targets for level {lvl!r}")
                fbce[f"{modality}/{lvl}"] = self._attribute_loss(logits, targets[lvl])
        if not cfg.use_kl:
            return fbce, kl
        for lvl, text_logits in pair.text.attribute_logits.items():
            if lvl in pair.video.attribute_logits:
                keep = pair.text.present.get(lvl, torch.ones_like(pair.matched, dtype=torch.bool))
                if bool(keep.any()):
                    kl[lvl] = attribute_kl(pair.video.attribute_logits[lvl][pair.matched][keep],
                                           text_logits[keep], cfg.kl_temperature,
                                           cfg.kl_direction)  # fmt: skip
        return fbce, kl

    def _second_stage_terms(self, sims: Mapping[str, torch.Tensor], match: MatchScores | None
                            ) -> dict[str, dict[str, torch.Tensor]]:  # fmt: skip
        """The binding matcher's terms, and the distillation of it into the levels."""
        cfg = self.cfg
        if match is None:
            return {"match": {}}
        terms = {"match": match_terms(match, cfg.margin, cfg.lambda_predicates)}
        if cfg.lambda_distill > 0:
            terms["distill"] = distill_terms(sims, match, cfg.distill_temperature)
        return terms

    def _total(self, terms: dict[str, dict[str, torch.Tensor]], match_scale: float,
               like: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
        """The weighted sum of the terms and the report of every part."""
        cfg = self.cfg
        weights = {"triplet": 1.0, "fbce": cfg.lambda_fbce, "kl": cfg.lambda_kl,
                   "negatives": cfg.lambda_negatives,
                   "hard_negatives": cfg.lambda_hard_negatives,
                   "match": cfg.lambda_match * match_scale,
                   "distill": cfg.lambda_distill * match_scale}  # fmt: skip
        zero = like.new_zeros(())
        sums = {kind: sum(parts.values(), zero) for kind, parts in terms.items()}
        total = sum((weights[kind] * sums[kind] for kind in sums), zero)
        report = {f"{kind}/{name}": v.detach()
                  for kind, parts in terms.items() for name, v in parts.items()}  # fmt: skip
        report.update({kind: s.detach() for kind, s in sums.items()})
        report["total"] = total.detach()
        return total, report
