"""The fused vectors an index searches: ``sqrt(|w_l|) * v_l`` per level, concatenated.

See :mod:`mcsan.search.index`: a video is stored as the concatenation of
``sqrt(|w_l|) * v_l`` and a query as ``sign(w_l) * sqrt(|w_l|) * t_l``, so an inner product
of the two is the model's fused score ``sum_l w_l <t_l, v_l>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def fuse_scales(levels: Sequence[str], weights: Mapping[str, float]) -> tuple[np.ndarray, ...]:
    """Per-level (video_scale, query_scale) such that their product is the level weight."""
    video_scale = np.array([math.sqrt(abs(float(weights[lv]))) for lv in levels], np.float32)
    query_scale = np.array(
        [math.copysign(math.sqrt(abs(float(weights[lv]))), float(weights[lv])) for lv in levels],
        np.float32,
    )
    return video_scale, query_scale


def fuse(
    embeddings: Mapping[str, np.ndarray],
    levels: Sequence[str],
    scales: np.ndarray,
    rows: slice | np.ndarray | None = None,
) -> np.ndarray:
    """Concatenate ``scales[l] * embeddings[l][rows]`` over levels into (N, sum d_l) float32."""
    parts = []
    for scale, level in zip(scales, levels, strict=True):
        block = embeddings[level] if rows is None else embeddings[level][rows]
        parts.append(np.asarray(block, dtype=np.float32) * scale)
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)
