"""Tensor batches: the only thing the model sees (it never sees files).

The collate layer (:mod:`mcsan.data.loading.collate`) builds these from features and encoded
captions; the model (:mod:`mcsan.model`) consumes them. Levels are data here, not fields:
:data:`SPAN_PARTS` lists the caption levels that come as token spans and how many spans
make one item, and :class:`TextBatch` holds one span tensor and one mask per such level.
Spans are token index pairs ``[start, end)`` into ``TextBatch.tokens``; padded entries have
their mask False and span (0, 1) so that indexing them is always safe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SPAN_PARTS: dict[str, int] = {"entity": 1, "action": 1, "relation": 3}
"""Caption levels read from token spans -> spans per item (a relation: subject, predicate,
object). Adding a span level = one entry here and in ``mcsan.LEVELS`` /
``captions.records.LEVEL_FIELDS``, plus its parse rule and its video branch."""


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

    def pin_memory(self) -> VideoBatch:
        """The batch in page-locked memory (DataLoader calls this with pin_memory=True)."""
        return VideoBatch({k: v.pin_memory() for k, v in self.streams.items()},
                          self.mask.pin_memory())  # fmt: skip

    def __len__(self) -> int:
        return int(self.mask.shape[0])


@dataclass
class TextBatch:
    """Parsed captions of B sentences.

    tokens:     long (B, L), vocabulary ids, 0 = padding.
    mask:       bool (B, L), True for real tokens.
    spans:      level -> long (B, N, 2) ``[start, end)`` token spans, or (B, N, P, 2) for a
                level of P spans per item (relation: subject / predicate / object), for every
                level of :data:`SPAN_PARTS`.
    span_masks: level -> bool (B, N), True for real items.
    N >= 1 always (a caption with an empty level has an all-False mask row).
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    spans: dict[str, torch.Tensor]
    span_masks: dict[str, torch.Tensor]

    def to(self, device: torch.device | str) -> TextBatch:
        """The batch on ``device``."""
        return TextBatch(
            self.tokens.to(device, non_blocking=True),
            self.mask.to(device, non_blocking=True),
            {k: v.to(device, non_blocking=True) for k, v in self.spans.items()},
            {k: v.to(device, non_blocking=True) for k, v in self.span_masks.items()},
        )

    def pin_memory(self) -> TextBatch:
        """The batch in page-locked memory."""
        return TextBatch(
            self.tokens.pin_memory(), self.mask.pin_memory(),
            {k: v.pin_memory() for k, v in self.spans.items()},
            {k: v.pin_memory() for k, v in self.span_masks.items()},
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.tokens.shape[0])
