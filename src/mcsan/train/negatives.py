"""Binding negatives: captions made from a caption's own parse that differ only in roles.

With random in-batch negatives a caption whose subject and object are exchanged almost
never competes, so nothing rewards telling "a red ball left of a cube" from "a cube left of
a red ball". These negatives are built from the parse of any dataset (NegCLIP / ARO word
order perturbations, VideoCon, VITATECS do the like), on the token ids of a ``TextBatch``:

- ``roles``: the subject and object noun phrases of a relation trade places (the relation
  triple of the new sentence then names the old object as its subject);
- ``attributes``: the modifiers (colour, size, ... words before the noun) of two entities
  are exchanged ("a red ball and a blue cube" -> "a blue ball and a red cube");
- ``actions``: the action spans of two different actions are exchanged;
- ``predicates``: the predicate of the first relation is replaced by another caption's
  predicate from the same batch ("a cube left of a ball" -> "a cube above a ball"), so the
  geometry, not only who takes part, must match.

A noun phrase is the entity span extended to the left over words that are not function
words (articles, prepositions, auxiliaries, conjunctions) and not part of another span.
A caption that offers no such change gives no negative of that kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mcsan.core.batch import TextBatch
from mcsan.data.loading.collate import EncodedCaption, collate_text
from mcsan.train.distributed import DistContext, rank_offset

NEGATIVE_KINDS = ("roles", "attributes", "actions", "predicates")
SpanPair = tuple[int, int]


@dataclass(frozen=True)
class SpanCaption:
    """A caption as token ids and (start, end) spans per level: what negatives edit."""

    tokens: tuple[int, ...]
    entities: tuple[SpanPair, ...]
    actions: tuple[SpanPair, ...]
    relations: tuple[tuple[SpanPair, SpanPair, SpanPair], ...]

    def encoded(self) -> EncodedCaption:
        """The caption as collation takes it."""
        items = {"entity": [[s] for s in self.entities], "action": [[s] for s in self.actions],
                 "relation": [list(r) for r in self.relations]}  # fmt: skip
        return EncodedCaption(np.array(self.tokens, dtype=np.int64), {
            level: np.array(found, dtype=np.int64).reshape(len(found), len(found[0]) if found
                                                           else (3 if level == "relation" else 1), 2)
            for level, found in items.items()
        })  # fmt: skip
FUNCTION_WORDS = frozenset(
    "a an the this that these those some any each every another other one two three its his "
    "her their our my your of in on at to from with by over under into onto off up down near "
    "next left right above below behind beside around across through toward towards "
    "is are was were be been being am has have had do does while and or but as then when "
    "who which what where there here it he she they them him we you i not no".split()
)


def _blocks_exchanged(
    length: int, first: SpanPair, second: SpanPair
) -> tuple[list[int], list[int]] | None:
    """Old token order after exchanging two disjoint blocks, and old -> new positions."""
    (a0, a1), (b0, b1) = sorted((first, second))
    if a1 > b0:
        return None
    order = [*range(a0), *range(b0, b1), *range(a1, b0), *range(a0, a1), *range(b1, length)]
    new_of = [0] * length
    for new, old in enumerate(order):
        new_of[old] = new
    return order, new_of


def _moved(span: SpanPair, new_of: Sequence[int]) -> SpanPair | None:
    """Where a span lands, or None when the exchange split it."""
    places = [new_of[p] for p in range(*span)]
    if places != list(range(places[0], places[0] + len(places))):
        return None
    return (places[0], places[-1] + 1)


class NegativeMaker:
    """Build binding negatives of the kinds asked for, from vocabulary ids.

    ``function_ids`` are the ids of function words (see :data:`FUNCTION_WORDS`); build it
    with :meth:`for_vocabulary`.
    """

    def __init__(self, kinds: Iterable[str], function_ids: Iterable[int]) -> None:
        self.kinds = tuple(kinds)
        unknown = [k for k in self.kinds if k not in NEGATIVE_KINDS]
        if unknown:
            raise ValueError(f"unknown negative kind(s) {unknown}; use {NEGATIVE_KINDS}")
        self.function_ids = frozenset(int(i) for i in function_ids) | {0}

    @classmethod
    def for_vocabulary(cls, kinds: Iterable[str], vocab: object) -> NegativeMaker:
        """A maker whose function words are looked up in ``vocab`` (a Vocabulary)."""
        words = [w for w in sorted(FUNCTION_WORDS) if w in vocab]  # type: ignore[operator]
        return cls(kinds, vocab.encode(words))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ one caption
    def phrase(self, caption: SpanCaption, noun: SpanPair) -> SpanPair:
        """The noun phrase of entity span ``noun``: extended left over content words."""
        taken = {p for s in (*caption.entities, *caption.actions) for p in range(*s)}
        taken |= {p for rel in caption.relations for s in rel[1:2] for p in range(*s)}
        start = noun[0]
        while start > 0 and start - 1 not in taken and (
            caption.tokens[start - 1] not in self.function_ids
        ):
            start -= 1
        return (start, noun[1])

    def _exchange(
        self, caption: SpanCaption, first: SpanPair, second: SpanPair, flip_roles: bool
    ) -> SpanCaption | None:
        exchanged = _blocks_exchanged(len(caption.tokens), first, second)
        if exchanged is None:
            return None
        order, new_of = exchanged
        tokens = tuple(caption.tokens[p] for p in order)
        if tokens == caption.tokens:
            return None
        entities = [_moved(s, new_of) for s in caption.entities]
        actions = [_moved(s, new_of) for s in caption.actions]
        relations = []
        for subject, predicate, obj in caption.relations:
            parts = [_moved(s, new_of) for s in (subject, predicate, obj)]
            if flip_roles:
                parts = parts[::-1]
            relations.append(tuple(parts))
        if any(s is None for s in (*entities, *actions, *(p for r in relations for p in r))):
            return None
        return SpanCaption(tokens, tuple(entities), tuple(actions), tuple(relations))  # type: ignore[arg-type]

    def roles(self, caption: SpanCaption) -> SpanCaption | None:
        """Subject and object noun phrases of the first relation trade places."""
        for subject, _, obj in caption.relations[:1]:
            return self._exchange(
                caption, self.phrase(caption, subject), self.phrase(caption, obj), True
            )
        return None

    def attributes(self, caption: SpanCaption) -> SpanCaption | None:
        """Two entities with different, non-empty modifiers exchange them."""
        mods = []
        for noun in caption.entities:
            start = self.phrase(caption, noun)[0]
            if start < noun[0]:
                mods.append((start, noun[0]))
        for i in range(len(mods)):
            for j in range(i + 1, len(mods)):
                m_i, m_j = mods[i], mods[j]
                if caption.tokens[slice(*m_i)] != caption.tokens[slice(*m_j)]:
                    return self._exchange(caption, m_i, m_j, False)
        return None

    def actions(self, caption: SpanCaption) -> SpanCaption | None:
        """Two different action spans exchange places."""
        acts = caption.actions
        for i in range(len(acts)):
            for j in range(i + 1, len(acts)):
                if caption.tokens[slice(*acts[i])] != caption.tokens[slice(*acts[j])]:
                    return self._exchange(caption, acts[i], acts[j], False)
        return None

    def predicates(
        self, caption: SpanCaption, others: Sequence[tuple[int, ...]] = ()
    ) -> SpanCaption | None:
        """The first relation's predicate replaced by the first of ``others`` (predicate
        token sequences) that differs from it; spans after it shift with the new length."""
        for _, (p0, p1), _ in caption.relations[:1]:
            old = caption.tokens[p0:p1]
            new = next((tuple(o) for o in others if len(o) and tuple(o) != old), None)
            if new is None:
                return None
            shift = len(new) - (p1 - p0)

            def moved(span: SpanPair, p0: int = p0, p1: int = p1, shift: int = shift
                      ) -> SpanPair | None:  # fmt: skip
                if span[1] <= p0:
                    return span
                if span[0] >= p1:
                    return (span[0] + shift, span[1] + shift)
                return None  # overlaps the predicate

            tokens = caption.tokens[:p0] + tuple(new) + caption.tokens[p1:]
            entities = [moved(e) for e in caption.entities]
            actions = [moved(a) for a in caption.actions]
            relations = []
            for k, (subject, predicate, obj) in enumerate(caption.relations):
                if k == 0:
                    relations.append((moved(subject), (p0, p0 + len(new)), moved(obj)))
                else:
                    relations.append((moved(subject), moved(predicate), moved(obj)))
            if any(x is None for x in (*entities, *actions, *(q for r in relations for q in r))):
                return None
            return SpanCaption(tokens, tuple(entities), tuple(actions), tuple(relations))  # type: ignore[arg-type]
        return None

    # ------------------------------------------------------------------ batches
    def __call__(self, batch: TextBatch) -> tuple[TextBatch, torch.Tensor] | None:
        """Negatives of a batch and the row of the caption each was made from (None when
        no caption of the batch offers any)."""
        out: list[SpanCaption] = []
        rows: list[int] = []
        captions = encoded_rows(batch)
        # each caption's first predicate; a caption takes the next different one in the batch
        firsts = [c.tokens[slice(*c.relations[0][1])] if c.relations else () for c in captions]
        for row, caption in enumerate(captions):
            for kind in self.kinds:
                if kind == "predicates":
                    negative = self.predicates(caption, firsts[row + 1:] + firsts[:row])
                else:
                    negative = getattr(self, kind)(caption)
                if negative is not None:
                    out.append(negative)
                    rows.append(row)
        if not out:
            return None
        return collate_text([c.encoded() for c in out]).to(batch.tokens.device), torch.tensor(
            rows, dtype=torch.long, device=batch.tokens.device
        )


def encoded_rows(batch: TextBatch) -> list[SpanCaption]:
    """The captions of a TextBatch back as token ids and spans (padding dropped)."""
    cpu = batch.to("cpu")
    out = []
    for row in range(len(cpu)):
        tokens = tuple(int(t) for t in cpu.tokens[row][cpu.mask[row]])

        def spans(values: torch.Tensor, mask: torch.Tensor) -> tuple[SpanPair, ...]:
            return tuple((int(s), int(e)) for (s, e), keep in zip(values.tolist(), mask, strict=False) if keep)

        relations = tuple(
            (tuple(r[0]), tuple(r[1]), tuple(r[2]))
            for r, keep in zip(cpu.spans["relation"][row].tolist(), cpu.span_masks["relation"][row],
                               strict=False)
            if keep
        )
        out.append(SpanCaption(
            tokens, spans(cpu.spans["entity"][row], cpu.span_masks["entity"][row]),
            spans(cpu.spans["action"][row], cpu.span_masks["action"][row]), relations,  # type: ignore[arg-type]
        ))  # fmt: skip
    return out


def negative_maker(kinds: Sequence[str], vocab: object) -> NegativeMaker | None:
    """A NegativeMaker for ``kinds`` over ``vocab``, or None when no kind is switched on."""
    return NegativeMaker.for_vocabulary(kinds, vocab) if kinds else None


def global_rows(
    negatives: tuple[TextBatch, torch.Tensor] | None, local_size: int, ctx: DistContext
) -> torch.Tensor | None:
    """Source rows of this rank's negatives as rows of the gathered global batch (ranks'
    shards are concatenated in rank order). Every rank must call it (it all-gathers)."""
    offset = rank_offset(local_size, ctx)
    return None if negatives is None else negatives[1] + offset
