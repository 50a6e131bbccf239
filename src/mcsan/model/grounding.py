"""Groundings shared across a dense scoring pass (:mod:`mcsan.model.matcher`, inference).

Scoring captions against every clip (the first stage's late interaction) grounds each
phrase query in every clip's cells: a pass over all their keys per query. The same phrase
is often grounded by several terms (an entity phrase is usually also an action's agent or a
relation's subject) and several captions of a batch share phrases, so a pass grounds each
distinct query once, in one product over the keys, and keeps only the small results the
terms read: how well the phrase is found, a grounded agent's motion, and per frame a
relation role's attended match, position, step and role motion. What depends only on the
phrase and the clip is computed once per distinct phrase (an action's per-frame network
runs once per agent, not per caption naming it), then each term gets its rows of it. The
values are those of grounding each term's queries on its own (tests/model/test_grounding.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from mcsan.model.matcher_inputs import MatcherVideo
from mcsan.model.matcher_inputs import masked_mean as _masked_mean


@dataclass
class Grounded:
    """What the terms read of a grounding, per (caption, clip, item): ``seen`` (), the mean
    attended match over the clip's frames (entity); ``motion`` (dim,), the agent's motion
    (action); per frame ``match`` (T,), ``position`` and ``step`` (T, 2), ``roles`` (T, role
    motion) (relation). A product no term asked for is None."""

    seen: torch.Tensor | None = None
    motion: torch.Tensor | None = None
    match: torch.Tensor | None = None
    position: torch.Tensor | None = None
    step: torch.Tensor | None = None
    roles: torch.Tensor | None = None


NEEDS = {"entity": ("seen",), "action": ("motion",), "relation": ("match", "step", "roles")}
"""The products each term reads (``position`` comes with ``step``)."""


def grounded_parts(term: str, parts: tuple[torch.Tensor, ...], video: MatcherVideo
                   ) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """The query tensors of ``term``'s parts that are grounded in the cells (an action's
    agent only on a grid: one cell needs no grounding)."""
    if term == "action":
        return parts[:1] if video.keys.shape[-2] > 1 else ()
    return parts[:2] if term == "relation" else parts[:1]


def shared_groundings(matcher: torch.nn.Module, queries: Mapping[str, tuple[torch.Tensor, ...]],
                      video: MatcherVideo) -> dict[str, tuple[Grounded, ...]]:  # fmt: skip
    """For each term's query tensors (R, N, d) in ``queries``, their groundings in every clip
    of ``video`` as (R, Nv, N, T, ...) :class:`Grounded`; each distinct query row is grounded
    once."""
    tensors = [q.reshape(-1, q.shape[-1]) for parts in queries.values() for q in parts]
    if not tensors:  # nothing grounded (e.g. only the action term of one-cell clips)
        return {term: () for term in queries}
    flat = torch.cat(tensors)
    _, inverse = torch.unique(flat, dim=0, return_inverse=True)
    count = int(inverse.max()) + 1 if len(inverse) else 0
    first = torch.full((count,), len(flat), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(len(flat)), "amin")
    keys = video.keys  # one product over every cell: (U, d) x (Nv T G, d)^T
    cosine = flat[first] @ keys.reshape(-1, keys.shape[-1]).T
    weights, match = matcher.attend(cosine.reshape(count, *keys.shape[:-1]))  # (U, Nv, T, G)
    users: dict[str, list[torch.Tensor]] = {}  # product -> the unique rows that need it
    at = 0
    index: dict[str, list[torch.Tensor]] = {}
    for term, parts in queries.items():
        index[term] = []
        for q in parts:
            rows = inverse[at : at + q.shape[0] * q.shape[1]]
            at += len(rows)
            index[term].append(rows.reshape(q.shape[:2]))
            for product in NEEDS[term]:
                users.setdefault(product, []).append(rows)
    frames = video.mask[None]  # (1, Nv, T)
    products = {"match": match, "seen": _masked_mean(match, frames, -1)}

    def needing(*wanted: str) -> torch.Tensor | None:
        rows = [r for product in wanted for r in users.get(product, [])]
        return torch.unique(torch.cat(rows)) if rows else None

    if (needed := needing("step", "motion")) is not None:
        position, step = matcher._track(weights[needed])
        products["position"] = _scattered(position, needed, count)
        products["step"] = _scattered(step, needed, count)
    if (needed := needing("motion")) is not None:
        moved = torch.einsum("ujtg,jtgd->ujtd", weights[needed], video.change)
        motion = matcher.agent_motion(moved, products["step"][needed], frames)
        products["motion"] = _scattered(motion, needed, count)
    if (needed := needing("roles")) is not None:
        cells = video.derive("role_motion", matcher.role_motion,  # (Nv, T, G, ROLE_MOTION)
                             lambda: matcher.role_motion(video.change))  # fmt: skip
        roles = torch.einsum("ujtg,jtgr->ujtr", weights[needed], cells)
        products["roles"] = _scattered(roles, needed, count)
    return {term: tuple(_gathered(products, rows, NEEDS[term]) for rows in index[term])
            for term in queries}  # fmt: skip


def _scattered(value: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """(count, ...) with ``value`` at ``rows`` and zeros elsewhere (rows no term reads)."""
    full = value.new_zeros((count, *value.shape[1:]))
    full[rows] = value
    return full


def _gathered(products: Mapping[str, torch.Tensor], rows: torch.Tensor,
              needs: tuple[str, ...]) -> Grounded:  # fmt: skip
    """The products ``needs`` (with position beside step) of unique rows ``rows`` (R, N),
    as (R, Nv, N, T, ...)."""
    names = {*needs, *(("position",) if "step" in needs else ())}
    found = {name: products[name][rows].movedim(2, 1) for name in names}
    return Grounded(**found)
