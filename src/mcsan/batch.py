"""Tensor batches: the only thing the model sees (it never sees files).

The data loader (mcsan.data.loader) builds these from a FeatureStore and parsed
captions; the model (mcsan.model) consumes them. Spans are token index pairs
``[start, end)`` into ``TextBatch.tokens``; padded entries have their mask False and
span (0, 1) so that indexing them is always safe.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class VideoBatch:
    """Frame features of B clips.

    streams: name -> float tensor (B, T, D) or (B, T, G, D) for grid streams.
    mask:    bool tensor (B, T), True where the frame is real (not padding).
    """

    streams: dict[str, torch.Tensor]
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> VideoBatch:
        """The batch on ``device``."""
        return VideoBatch(
            {k: v.to(device, non_blocking=True) for k, v in self.streams.items()},
            self.mask.to(device, non_blocking=True),
        )

    def __len__(self) -> int:
        return int(self.mask.shape[0])


@dataclass
class TextBatch:
    """Parsed captions of B sentences.

    tokens:          long (B, L), vocabulary ids, 0 = padding.
    mask:            bool (B, L), True for real tokens.
    entity_spans:    long (B, Ne, 2) [start, end) token spans; entity_mask bool (B, Ne).
    action_spans:    long (B, Na, 2);                          action_mask bool (B, Na).
    relation_spans:  long (B, Nr, 3, 2) subject/predicate/object spans; relation_mask (B, Nr).
    Ne, Na, Nr >= 1 always (a caption with an empty level has an all-False mask row).
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    entity_spans: torch.Tensor
    entity_mask: torch.Tensor
    action_spans: torch.Tensor
    action_mask: torch.Tensor
    relation_spans: torch.Tensor
    relation_mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextBatch:
        """The batch on ``device``."""
        return TextBatch(
            **{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)}
        )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])
