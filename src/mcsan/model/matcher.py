"""The binding matcher: a text-conditioned re-ranking stage (off unless ``model.rerank``).

The fused score is one inner product per level, so a clip is embedded before the query is
known. A grounding probe showed the grid features locate an object well once a query picks
the cells (docs/RELATIONS_RESULTS.md); a clip vector built without the query keeps that
only loosely. This matcher reads a caption's parse and a clip's grid cells *together*:

- every noun phrase ("a green heart") attends over the cells of each frame (softmax of the
  cosine of a phrase query and a cell key): where is it, and how well does the best place
  match? The **entity** term is that match, so a colour and a shape must meet in one cell;
- the agent of each action is grounded the same way; what the attended cells do (their
  change since the previous frame) and how the grounded position moves is compared with
  the verb: the **action** term;
- a triplet's subject and object are grounded separately; the geometry of the two tracks
  over time (offset, distance and its change, each one's own motion) is compared with the
  predicate: the **relation** term. "a approaches b" and "b approaches a" ground the moving
  object in different roles, so they differ.

The score of a (caption, clip) pair is the mean of the terms the caption has (each a cosine,
in [-1, 1]); a term exists only for a level the model has, so the ``no-relation`` ablation
has no relation term. It costs one cross-attention per pair: as the second stage it ranks a
shortlist (:mod:`mcsan.evaluate.reranked`); the first stage's late interaction scores every
clip with its terms (:mod:`mcsan.evaluate.first_stage`). Its inputs: :mod:`.matcher_inputs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mcsan.core.batch import TextBatch, VideoBatch
from mcsan.model.cells import cell_coordinates
from mcsan.model.grounding import Grounded, grounded_parts, shared_groundings
from mcsan.model.matcher_inputs import MatcherText, MatcherVideo
from mcsan.model.matcher_inputs import masked_mean as _masked_mean
from mcsan.model.text_encoder import action_agents, phrase_ends, span_means

MATCH_TERMS = ("entity", "action", "relation")
"""The matcher's terms, one per level it checks (global has none: the fused score has it)."""

LATE_TERMS = ("entity", "action")
"""The terms a first stage can score over a whole collection (late interaction): each reads
only a clip's stored cell keys and changes and one phrase query at a time (the relation
term grounds two phrases and runs a per-frame network over their geometry: second stage)."""


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def _previous(x: torch.Tensor, time_dim: int) -> torch.Tensor:
    """``x`` shifted one step later along ``time_dim`` (the first step repeats itself)."""
    first = x.narrow(time_dim, 0, 1)
    rest = x.narrow(time_dim, 0, x.shape[time_dim] - 1)
    return torch.cat([first, rest], dim=time_dim)


def _same_words(tokens: torch.Tensor, spans: torch.Tensor, mask: torch.Tensor,
                longest: int = 8) -> torch.Tensor:  # fmt: skip
    """(M, M) bool: whether the spans (B, N, 2) kept by ``mask`` (M of them) hold the same
    token ids (compared over their first ``longest`` tokens)."""
    rows = torch.nonzero(mask)[:, 0]
    spans = spans[mask]
    index = spans[:, :1] + torch.arange(longest, device=spans.device)[None]
    words = tokens[rows[:, None], index.clamp(max=tokens.shape[1] - 1)]
    words = torch.where(index < spans[:, 1:], words, torch.zeros_like(words))
    return (words[:, None, :] == words[None, :, :]).all(-1)


def _pairs_by_runs(match: Callable[..., torch.Tensor], parts: tuple[torch.Tensor, ...],
                   video: MatcherVideo, frames: torch.Tensor, rows: torch.Tensor,
                   most: int = 8) -> torch.Tensor:  # fmt: skip
    """``match(parts, clips, frames, True)`` of the pairs ``rows`` (ascending; ``parts``
    already theirs): on views of the clips, one call per run of consecutive rows, when
    there are at most ``most`` runs (a server's batch: each query's shortlist is a run);
    else on a copy of those clips."""
    starts = [0, *(torch.nonzero(rows[1:] != rows[:-1] + 1)[:, 0] + 1).tolist()]
    if len(starts) > most:
        return match(parts, video.rows(rows), frames[rows], True)
    values = []
    for first, end in zip(starts, [*starts[1:], len(rows)], strict=True):
        at, size = int(rows[first]), end - first
        clips = MatcherVideo(video.keys.narrow(0, at, size), video.change.narrow(0, at, size),
                             video.mask.narrow(0, at, size))  # fmt: skip
        values.append(match(tuple(part[first:end] for part in parts), clips,
                            frames.narrow(0, at, size), True))  # fmt: skip
    return torch.cat(values)


class BindingMatcher(nn.Module):
    """Scores (caption, clip) pairs by grounding the caption's phrases in the clip's cells.

    ``stream_shapes``: the model's feature streams; the finest grid stream (G, D) gives the
    cells (no grid: the frame-level streams make one cell at the centre, nothing is located).
    ``word_dim``: size of the word vectors the caption side reads; ``levels``: the model's
    levels (a term per level of :data:`MATCH_TERMS` it has).
    """

    GEOMETRY_FEATURES = 15
    ROLE_MOTION = 4

    def __init__(self, stream_shapes: Mapping[str, tuple[int, ...]], word_dim: int,
                 levels: Sequence[str], dim: int = 64, hidden: int = 64,
                 per_frame: int = 32, motion: int = 16, presence: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.presence = presence
        shapes = {name: tuple(shape) for name, shape in stream_shapes.items()}
        grids = sorted((n for n, s in shapes.items() if len(s) == 2), key=lambda n: -shapes[n][0])
        # the finest grid only: with a coarse grid beside it, attention settled on the coarse
        # cells (their features are richer) and the positions blurred (RELATIONS_RESULTS.md)
        self.cell_streams = grids[:1] or sorted(shapes)
        self.on_grid = bool(grids)
        self.project = nn.ModuleDict({n: nn.Linear(shapes[n][-1], dim) for n in self.cell_streams})
        coords = cell_coordinates([shapes[n][0] for n in grids[:1]])
        self.register_buffer("coords", coords, persistent=False)
        self.cell_position = nn.Parameter(0.02 * torch.randn(coords.shape[0], dim))
        self.norm = nn.LayerNorm(dim)
        self.key = nn.Linear(dim, dim)
        # small per-frame sizes: these layers run on every (caption, clip, item, frame)
        self.change = nn.Linear(dim, motion)
        self.phrase = nn.Conv1d(word_dim, dim, kernel_size=3)
        self.query = nn.Linear(dim, dim)
        # inverse temperature of the attention over cells (log scale, learned)
        self.sharpness = nn.Parameter(torch.tensor(math.log(10.0)))
        self.terms = tuple(t for t in MATCH_TERMS if t in levels)
        if "action" in self.terms:
            self.verb = _mlp(word_dim, hidden, dim)
            self.motion = _mlp(motion + 3, per_frame, per_frame)
            self.motion_out = nn.Linear(per_frame, dim)
        if "relation" in self.terms:
            self.predicate = _mlp(word_dim, hidden, dim)
            self.role_motion = nn.Linear(motion, self.ROLE_MOTION)
            self.geometry = _mlp(self.GEOMETRY_FEATURES + 2 * self.ROLE_MOTION, per_frame,
                                 per_frame)  # fmt: skip
            self.early_late = nn.Linear(2 * per_frame, dim)

    @property
    def late_terms(self) -> tuple[str, ...]:
        """This matcher's terms of :data:`LATE_TERMS` (the first stage's late interaction)."""
        return tuple(t for t in self.terms if t in LATE_TERMS)

    # ------------------------------------------------------------------ encoding
    def encode_video(self, batch: VideoBatch) -> MatcherVideo:
        """Cell keys and changes of the clips in ``batch`` (padding frames zeroed)."""
        keep = batch.mask.to(torch.float32)[..., None, None]
        tokens = []
        for name in self.cell_streams:
            x = batch.streams[name].float()
            tokens.append(self.project[name](x if x.dim() == 4 else x[:, :, None]))
        cells = torch.cat(tokens, dim=2) if self.on_grid else sum(tokens)
        cells = self.norm(cells + self.cell_position) * keep
        change = self.change(cells - _previous(cells, 1)) * keep
        return MatcherVideo(F.normalize(self.key(cells), dim=-1), change, batch.mask)

    def encode_text(self, batch: TextBatch, embedding: nn.Embedding) -> MatcherText:
        """Phrase queries and verb / predicate targets of the captions in ``batch``."""
        words = embedding(batch.tokens)
        padded = F.pad(words.transpose(1, 2), (2, 0))
        windows = torch.relu(self.phrase(padded)).transpose(1, 2)  # 3 words ending here

        def query(spans: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.query(phrase_ends(windows, spans)), dim=-1)

        parts: dict[str, tuple[torch.Tensor, ...]] = {}
        masks: dict[str, torch.Tensor] = {}
        if "entity" in self.terms:
            parts["entity"] = (query(batch.spans["entity"]),)
            masks["entity"] = batch.span_masks["entity"]
        if "action" in self.terms:
            verbs = F.normalize(self.verb(span_means(words, batch.spans["action"])), dim=-1)
            parts["action"] = (query(action_agents(batch)), verbs)
            masks["action"] = batch.span_masks["action"]
        if "relation" in self.terms:
            spans = batch.spans["relation"]
            predicate = F.normalize(self.predicate(span_means(words, spans[:, :, 1])), dim=-1)
            parts["relation"] = (query(spans[:, :, 0]), query(spans[:, :, 2]), predicate)
            masks["relation"] = batch.span_masks["relation"]
        return MatcherText(parts, masks)

    def predicate_contrast(self, text: MatcherText, video: MatcherVideo, batch: TextBatch,
                           temperature: float = 0.1) -> torch.Tensor | None:  # fmt: skip
        """Contrastive loss of each relation's grounded geometry (on its own clip, caption row
        i against clip row i) against every predicate of the batch: softmax over the batch's
        predicates, the ones with the same words count as right. None without relations.

        Ranking whole captions barely asks the relation term about its predicate (another
        clip usually differs in its objects already); this asks it directly, and it works
        on any parsed captions."""
        if "relation" not in text.parts:
            return None
        mask = text.masks["relation"]
        if not bool(mask.any()):
            return None
        frames = video.mask[..., None, :]
        geometry = self.relation_geometry(text.parts["relation"], video, frames, True)[mask]
        predicates = text.parts["relation"][2][mask]
        same = _same_words(batch.tokens, batch.spans["relation"][:, :, 1], mask)
        log_p = (geometry @ predicates.T / temperature).log_softmax(dim=-1)
        return -torch.logsumexp(log_p.masked_fill(~same, float("-inf")), dim=-1).mean()

    # ------------------------------------------------------------------ matching
    def _ground(self, queries: torch.Tensor, video: MatcherVideo, pairs: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Attention over cells and the attended match per frame.

        Dense (``pairs`` False): queries (Nt, N, d) x clips (Nv, ...) -> (Nt, Nv, N, T, G)
        weights and (Nt, Nv, N, T) match; paired: row p of each -> (P, N, T, G), (P, N, T).
        """
        spec = "pnd,ptgd->pntg" if pairs else "ind,jtgd->ijntg"
        return self.attend(torch.einsum(spec, queries, video.keys))

    def attend(self, cosine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention over the cells (the last dim) of phrase-cell ``cosine`` and the match
        it attends."""
        weights = (cosine * self.sharpness.exp()).softmax(dim=-1)
        return weights, (weights * cosine).sum(-1)

    def _track(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grounded position per frame (..., T, 2) and its step since the last frame."""
        position = weights @ self.coords.to(weights.dtype)
        return position, position - _previous(position, -2)

    @staticmethod
    def _moved(weights: torch.Tensor, video: MatcherVideo, pairs: bool) -> torch.Tensor:
        """The change of the attended cells per frame: (..., N, T, d)."""
        spec = "pntg,ptgd->pntd" if pairs else "ijntg,jtgd->ijntd"
        return torch.einsum(spec, weights, video.change)

    def score(self, text: MatcherText, video: MatcherVideo, pairs: bool = False,
              terms: Sequence[str] | None = None) -> torch.Tensor:  # fmt: skip
        """Match scores: (Nt, Nv) for every caption against every clip, or with ``pairs``
        (P,) for caption row p against clip row p. Each term is a cosine; the score is the
        mean of the terms a caption has (0 for a caption with none); ``terms`` restricts it
        to some of :attr:`terms`."""
        found = self.term_scores(text, video, pairs, terms)
        rows_total = len(video.mask) if pairs else len(next(iter(text.masks.values())))
        return self.combine(found, rows_total, None if pairs else len(video.mask), video.keys)

    @staticmethod
    def combine(found: Mapping[str, tuple[torch.Tensor, torch.Tensor]], rows_total: int,
                clips: int | None, like: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """The mean of each caption's terms (:meth:`term_scores`): (rows_total,) for pairs
        (``clips`` None) or (rows_total, clips); on ``like``'s device."""
        shape = (rows_total,) if clips is None else (rows_total, clips)
        total = like.new_zeros(shape, dtype=torch.float32)
        count = total.new_zeros(rows_total)
        for rows, value in found.values():
            total = total.index_add(0, rows, value.float())
            count = count.index_add(0, rows, torch.ones_like(rows, dtype=count.dtype))
        count = count.clamp_min(1.0)
        return total / (count if clips is None else count[:, None])

    def term_scores(self, text: MatcherText, video: MatcherVideo, pairs: bool = False,
                    terms: Sequence[str] | None = None
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
        """Each term's cosines for the captions that name something at it: ``{term: (rows
        (R,), values (R, Nv) or with pairs (R,))}``."""
        frames = video.mask if pairs else video.mask[None]  # (P, T) or (1, Nv, T)
        frames = frames[..., None, :]  # broadcast over a caption's items
        named = self._named(text, terms)
        grounded: dict[str, tuple[Grounded, ...]] = {}
        if not pairs and not torch.is_grad_enabled():  # inference: each phrase grounded once
            grounded = shared_groundings(self, {t: grounded_parts(t, tuple(
                p[rows] for p in text.parts[t]), video) for t, rows in named}, video)  # fmt: skip
        found = {}
        for term, rows in named:  # training: as before, each term grounds its own phrases
            parts = tuple(part[rows] for part in text.parts[term])
            items = text.masks[term][rows]
            match = getattr(self, f"_{term}_match")
            if not pairs or len(rows) == len(video.mask):  # all pairs: no copy of the clips
                value = match(parts, video, frames, pairs, grounded.get(term) or None)
            else:
                value = _pairs_by_runs(match, parts, video, frames, rows)
            found[term] = (rows, _masked_mean(value, items if pairs else items[:, None], -1))
        return found

    def _named(self, text: MatcherText, terms: Sequence[str] | None
               ) -> list[tuple[str, torch.Tensor]]:  # fmt: skip
        """(term, rows of the captions naming something at it: often a quarter) per term."""
        named = []
        for term in self.terms if terms is None else terms:
            if term in text.parts:
                rows = torch.nonzero(text.masks[term].any(-1))[:, 0]
                if len(rows):
                    named.append((term, rows))
        return named

    def _entity_match(self, parts: tuple[torch.Tensor, ...], video: MatcherVideo,
                      frames: torch.Tensor, pairs: bool,
                      found: tuple[Grounded, ...] | None = None) -> torch.Tensor:  # fmt: skip
        if found:
            return found[0].seen
        return _masked_mean(self._ground(parts[0], video, pairs)[1], frames, -1)

    def _role_motions(self, weights: tuple[torch.Tensor, ...], video: MatcherVideo,
                      pairs: bool) -> list[torch.Tensor]:  # fmt: skip
        """``role_motion`` of the change of the cells each of ``weights`` attends, (..., N, T,
        ROLE_MOTION). Dense: the linear map commutes with the attention's weighted sum (the
        weights sum to 1), so it maps each clip's cells once and the attention mixes
        ROLE_MOTION numbers per cell instead of the change's; paired (a cell per pair, not
        per clip) it maps the attended change."""
        if pairs:
            return [self.role_motion(self._moved(w, video, True)) for w in weights]
        roles = self.role_motion(video.change)  # (Nv, T, G, ROLE_MOTION)
        return [torch.einsum("ijntg,jtgr->ijntr", w, roles) for w in weights]

    def _action_match(self, parts: tuple[torch.Tensor, ...], video: MatcherVideo,
                      frames: torch.Tensor, pairs: bool,
                      found: tuple[Grounded, ...] | None = None) -> torch.Tensor:  # fmt: skip
        if video.keys.shape[-2] == 1:  # frame-level features: one cell, the same for any agent
            motion = self._clip_motion(video)  # (Nv or P, dim)
            verbs = parts[1]
            if pairs:
                return (motion[:, None] * verbs).sum(-1)
            return torch.einsum("ind,jd->ijn", verbs, motion)
        return self._grounded_action_match(parts, video, frames, pairs, found)

    def _clip_motion(self, video: MatcherVideo) -> torch.Tensor:
        """The action term's motion of clips with one cell: attention over one cell is 1, so
        whatever a caption names is grounded there, its change is the cell's and its step 0;
        the per-frame network runs once per clip instead of once per (caption, item, clip):
        the same values as :meth:`_grounded_action_match`, (Nv, dim)."""
        moved = video.change[:, :, 0]  # (Nv, T, motion)
        still = moved.new_zeros(*moved.shape[:-1], 3)  # step (2) and its norm (1): 0
        motion = self.motion(torch.cat([moved, still], -1))
        motion = _masked_mean(motion, video.mask[..., None], -2)
        return F.normalize(self.motion_out(motion), dim=-1)

    def _grounded_action_match(self, parts: tuple[torch.Tensor, ...], video: MatcherVideo,
                               frames: torch.Tensor, pairs: bool,
                               found: tuple[Grounded, ...] | None = None) -> torch.Tensor:  # fmt: skip
        """The action term: the agent grounded in the cells per frame, the motion of the
        attended cells through a per-frame network, its mean against the verb."""
        agents, verbs = parts
        if found:
            motion = found[0].motion
        else:
            weights, _ = self._ground(agents, video, pairs)
            motion = self.agent_motion(self._moved(weights, video, pairs),
                                       self._track(weights)[1], frames)  # fmt: skip
        return (motion * (verbs if pairs else verbs[:, None])).sum(-1)

    def agent_motion(self, moved: torch.Tensor, step: torch.Tensor, frames: torch.Tensor
                     ) -> torch.Tensor:  # fmt: skip
        """A grounded agent's unit motion (..., dim): the attended cells' change and the step
        per frame (..., T, ·) through the per-frame network, averaged over ``frames``."""
        motion = self.motion(torch.cat([moved, step, step.norm(dim=-1, keepdim=True)], -1))
        return F.normalize(self.motion_out(_masked_mean(motion, frames[..., None], -2)), dim=-1)

    def _relation_match(self, parts: tuple[torch.Tensor, ...], video: MatcherVideo,
                        frames: torch.Tensor, pairs: bool,
                        found: tuple[Grounded, ...] | None = None) -> torch.Tensor:  # fmt: skip
        geometry, present = self.relation_geometry(parts, video, frames, pairs, True, found)
        predicates = parts[2]
        value = (geometry * (predicates if pairs else predicates[:, None])).sum(-1)
        return 0.5 * (value + present) if self.presence else value

    def relation_geometry(self, parts: tuple[torch.Tensor, ...], video: MatcherVideo,
                          frames: torch.Tensor, pairs: bool, with_presence: bool = False,
                          found: tuple[Grounded, ...] | None = None
                          ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Unit vector of what the grounded subject and object do over time: (..., N, d);
        ``with_presence``: also how well both are found, the mean of their attended cosines
        over the clip's frames (..., N). ``found``: the subjects' and objects' groundings
        (:func:`~mcsan.model.grounding.shared_groundings`), else grounded here."""
        if found:
            subject_match, object_match = found[0].match, found[1].match
            subject_at, subject_step = found[0].position, found[0].step
            object_at, object_step = found[1].position, found[1].step
        else:
            subject_weights, subject_match = self._ground(parts[0], video, pairs)
            object_weights, object_match = self._ground(parts[1], video, pairs)
            subject_at, subject_step = self._track(subject_weights)
            object_at, object_step = self._track(object_weights)
        offset = object_at - subject_at
        distance = offset.norm(dim=-1, keepdim=True)
        closing = distance - _previous(distance, -2)
        steps = frames.sum(-1, keepdim=True).clamp_min(2) - 1
        when = torch.cumsum(frames.to(offset.dtype), -1) - 1
        when = (when / steps)[..., None].expand_as(distance)
        features = torch.cat([
            offset, distance, closing, subject_step, object_step,
            subject_step.norm(dim=-1, keepdim=True), object_step.norm(dim=-1, keepdim=True),
            subject_match[..., None], object_match[..., None], subject_at, when,
            *((found[0].roles, found[1].roles) if found else
              self._role_motions((subject_weights, object_weights), video, pairs)),
        ], dim=-1)  # fmt: skip
        per_frame = self.geometry(features)
        late = (when[..., :1] >= 0.5) & frames[..., None]
        early = ~late & frames[..., None]
        halves = torch.cat([_masked_mean(per_frame, early, -2), _masked_mean(per_frame, late, -2)], -1)
        geometry = F.normalize(self.early_late(halves), dim=-1)
        if not with_presence:
            return geometry
        both = 0.5 * (subject_match + object_match)
        return geometry, _masked_mean(both, frames.expand_as(both).to(both.dtype), -1)
