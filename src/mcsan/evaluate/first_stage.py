"""The first stage that binds: the fused score plus the matcher's late interaction.

The fused score is one inner product per level of a clip vector built before the query is
known, so "a red circle and a blue square" and "a blue circle and a red square" embed the
same way (docs/RELATIONS_RESULTS.md). The binding matcher's entity and action terms
(:data:`mcsan.model.matcher.LATE_TERMS`) read the caption's phrase queries against a clip's
*stored* cell keys and changes, one phrase at a time, as ColBERT-style late interaction
does: colour and shape must meet in one cell, an agent's cells must move as the verb says.
Nothing in them needs the shortlist, so the first stage can score every clip with them:

    first = fused + late_weight * late,   late = mean of the caption's ``late_terms``

(``rerank.late_terms``: entity and action by default; the relation term, which grounds two
phrases and reads their geometry, may be added; a caption with none keeps its fused
score). The second stage re-orders the first
stage's shortlist by ``fused + weight * match`` (:mod:`mcsan.evaluate.shortlist`). Search
scores the same ``first`` on its candidates (:mod:`mcsan.search.late`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mcsan.model.matcher_inputs import MatcherText, MatcherVideo

LATE_PAIRS = 131_072
"""(caption, clip) pairs scored at once (64 captions against 2,048 clips): the matcher grounds
each distinct phrase of the block once (:mod:`mcsan.model.grounding`), so larger blocks
share more; each distinct phrase holds ``clips x T x G`` attention weights."""


@torch.no_grad()
def late_scores(model: Any, text: MatcherText, video: MatcherVideo,
                device: torch.device | str = "cpu", terms: Sequence[str] | None = None
                ) -> np.ndarray:  # fmt: skip
    """(captions, clips) float32: the mean of each caption's late-interaction terms
    (``terms`` of the matcher's, default :data:`~mcsan.model.matcher.LATE_TERMS`) against
    every clip (0 where a caption has none), in blocks of :data:`LATE_PAIRS` pairs."""
    matcher = model.matcher
    n_text, n_video = len(next(iter(text.masks.values()))), len(video.mask)
    out = np.zeros((n_text, n_video), dtype=np.float32)
    terms = matcher.late_terms if terms is None else tuple(t for t in terms if t in matcher.terms)
    if not terms or not n_text or not n_video:
        return out
    clips_at_once = min(n_video, LATE_PAIRS)
    rows_at_once = max(1, LATE_PAIRS // clips_at_once)
    for clip_start in range(0, n_video, clips_at_once):
        part = slice(clip_start, clip_start + clips_at_once)
        clips = (video if clips_at_once == n_video  # all at once: what was derived is kept
                 else MatcherVideo(video.keys[part], video.change[part], video.mask[part]))
        clips = clips.to(device)
        for start in range(0, n_text, rows_at_once):
            rows = torch.arange(start, min(start + rows_at_once, n_text))
            value = matcher.score(text.rows(rows).to(device), clips, terms=terms)
            out[start : start + len(rows), part] = value.cpu().numpy()
    return out


def first_stage_scores(fused: np.ndarray, late: np.ndarray | None, late_weight: float
                       ) -> np.ndarray:  # fmt: skip
    """``fused + late_weight * late`` (float64); ``fused`` itself without late scores."""
    fused = np.asarray(fused, dtype=np.float64)
    if late is None or late_weight == 0:
        return fused
    return fused + late_weight * np.asarray(late, dtype=np.float64)
