"""Batched encoding with a model: captions and clips in, per-level numpy embeddings out.

Used by the evaluation of a split (:func:`mcsan.evaluate.split.evaluate_split`, the trainer's
validation included) and by :class:`mcsan.inference.retriever.Retriever`. Caption embeddings are the
retrieval embeddings of :mod:`mcsan.model.scoring` (their weighted inner products with the
clips' unit embeddings are the fused score).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from mcsan.core.progress import track
from mcsan.data.loading.collate import EncodedCaption, collate_text, collate_video

Item = TypeVar("Item")


def _batched(
    items: Sequence[Item],
    batch_size: int,
    desc: str,
    levels: Sequence[str],
    encode: Callable[[Sequence[Item]], Mapping[str, torch.Tensor]],
) -> dict[str, np.ndarray]:
    """``encode`` each batch of ``items``; the levels' rows stacked as float32 arrays."""
    chunks = []
    starts = range(0, len(items), batch_size)
    for start in track(starts, total=len(starts), desc=desc):
        chunks.append(encode(items[start : start + batch_size]))
    return {
        level: torch.cat([chunk[level] for chunk in chunks]).float().cpu().numpy()
        for level in levels
    }


@torch.no_grad()
def embed_captions(
    model: Any,
    captions: Sequence[EncodedCaption],
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    desc: str = "encode captions",
) -> dict[str, np.ndarray]:
    """Per-level retrieval embeddings (N, d) float32 of encoded captions (model in eval mode)."""

    def encode(part: Sequence[EncodedCaption]) -> Mapping[str, torch.Tensor]:
        batch = collate_text(part).to(device)
        return model.text_retrieval_embeddings(model.encode_text(batch))

    return _batched(captions, batch_size, desc, model.levels, encode)


@torch.no_grad()
def embed_videos(
    model: Any,
    features: Sequence[Mapping[str, np.ndarray]],
    streams: Sequence[str],
    max_frames: int | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    desc: str = "encode videos",
) -> dict[str, np.ndarray]:
    """Per-level unit embeddings (M, d) float32 of clips given as stream dicts."""

    def encode(part: Sequence[Mapping[str, np.ndarray]]) -> Mapping[str, torch.Tensor]:
        batch = collate_video([dict(item) for item in part], streams, max_frames).to(device)
        return model.encode_video(batch).embeddings

    return _batched(features, batch_size, desc, model.levels, encode)
