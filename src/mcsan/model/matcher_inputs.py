"""What the binding matcher reads (:mod:`mcsan.model.matcher`): clips as unit cell keys, cell
changes and a frame mask; captions as unit phrase queries and targets per term. A search
index stores the clip side (:mod:`mcsan.search.matcher_store`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


def masked_mean(values: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``values`` over ``dim`` weighted by 0/1 ``weights`` (broadcastable)."""
    weights = weights.to(values.dtype)
    return (values * weights).sum(dim) / weights.expand_as(values).sum(dim).clamp_min(1e-6)


@dataclass
class MatcherVideo:
    """A clip as the matcher reads it: unit cell keys, cell changes, frame mask."""

    keys: torch.Tensor  # (B, T, G, d)
    change: torch.Tensor  # (B, T, G, d)
    mask: torch.Tensor  # (B, T) bool
    derived: dict = field(default_factory=dict, repr=False, compare=False)
    """Per-cell values a model derived from these clips at inference, kept while the clips
    are scored again (a server's clips held in memory): {name: (module, version, tensor)}."""

    def derive(self, name: str, module: torch.nn.Module, compute: Callable[[], torch.Tensor]
               ) -> torch.Tensor:  # fmt: skip
        """``compute()``, kept for the next call with the same ``module`` unchanged since."""
        version = tuple(p._version for p in module.parameters())
        kept = self.derived.get(name)
        if kept is not None and kept[0] is module and kept[1] == version:
            return kept[2]
        value = compute()
        self.derived[name] = (module, version, value)
        return value

    def rows(self, index: torch.Tensor) -> MatcherVideo:
        """The clips at ``index``."""
        return MatcherVideo(self.keys[index], self.change[index], self.mask[index])

    def to(self, device: torch.device | str) -> MatcherVideo:
        """The clips on ``device`` (these, with what was derived from them, when there)."""
        if self.keys.device == torch.device(device):
            return self
        return MatcherVideo(self.keys.to(device), self.change.to(device), self.mask.to(device))


@dataclass
class MatcherText:
    """A caption's parts as the matcher reads them (unit queries and unit targets).

    ``parts[term]`` holds the query tensors of each item and ``masks[term]`` (B, N) which
    items are real: entity (phrase,), action (agent, verb), relation (subject, object,
    predicate); each tensor (B, N, d)."""

    parts: dict[str, tuple[torch.Tensor, ...]]
    masks: dict[str, torch.Tensor]

    def rows(self, index: torch.Tensor) -> MatcherText:
        """The captions at ``index``."""
        return MatcherText({k: tuple(p[index] for p in v) for k, v in self.parts.items()},
                           {k: m[index] for k, m in self.masks.items()})  # fmt: skip

    def to(self, device: torch.device | str) -> MatcherText:
        """The captions on ``device``."""
        return MatcherText({k: tuple(p.to(device) for p in v) for k, v in self.parts.items()},
                           {k: m.to(device) for k, m in self.masks.items()})  # fmt: skip
