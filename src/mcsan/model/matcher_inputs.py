"""What the binding matcher reads (:mod:`mcsan.model.matcher`): clips as unit cell keys, cell
changes and a frame mask; captions as unit phrase queries and targets per term. A search
index stores the clip side (:mod:`mcsan.search.matcher_store`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MatcherVideo:
    """A clip as the matcher reads it: unit cell keys, cell changes, frame mask."""

    keys: torch.Tensor  # (B, T, G, d)
    change: torch.Tensor  # (B, T, G, d)
    mask: torch.Tensor  # (B, T) bool

    def rows(self, index: torch.Tensor) -> MatcherVideo:
        """The clips at ``index``."""
        return MatcherVideo(self.keys[index], self.change[index], self.mask[index])

    def to(self, device: torch.device | str) -> MatcherVideo:
        """The clips on ``device``."""
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
