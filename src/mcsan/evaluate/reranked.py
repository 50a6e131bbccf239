"""The binding matcher as a re-ranking stage: pair scores and re-ranked retrieval metrics.

The fused score ranks the whole collection (an inner product: chunked evaluator, FAISS).
With ``model.rerank`` the binding matcher (:mod:`mcsan.model.matcher`) then re-orders a
shortlist, as the one shortlist policy says (:mod:`mcsan.evaluate.shortlist`): for a
caption, its top K clips by fused score are ordered by ``fused + weight * match`` and stay
ahead of every clip outside the shortlist; for a clip (video-to-text), its top-K captions
likewise. Ranks outside the shortlist are the fused ranks. The metrics are the protocol of
:mod:`mcsan.evaluate.protocol` on those two orders, with the first stage's recall at the
shortlist (``first_stage_recall``: t2v queries whose clip is in it) and its length
(``shortlist``: clips per caption).

Memory: the split's fused scores are held as dense (captions x clips) float64 matrices
(three of them), unlike the chunked evaluator: 24 MB for MSR-VTT 1k-A (1,000 x 1,000), but
about 4 GB for the full MSR-VTT test split (59,800 x 2,990): re-rank a subset there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mcsan.data.loading.collate import EncodedCaption, collate_text, collate_video
from mcsan.evaluate.protocol import RECALL_KS, retrieval_metrics
from mcsan.evaluate.shortlist import ShortlistPolicy, first_stage_recall, shortlist_orders
from mcsan.model.matcher_inputs import MatcherText, MatcherVideo

PAIR_CHUNK = 2048
"""Pairs scored at once (each holds a clip's cells: ~T * G * d floats)."""


def _pad(tensor: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """``tensor`` zero-padded along ``dim`` to ``size``."""
    missing = size - tensor.shape[dim]
    if missing <= 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - dim - 1) + [0, missing]
    return F.pad(tensor, pad)


def _cat_text(parts: Sequence[MatcherText]) -> MatcherText:
    """Batches of matcher captions as one (items padded to the longest batch)."""
    out: dict[str, tuple[torch.Tensor, ...]] = {}
    masks = {}
    for term in parts[0].masks:
        items = max(p.masks[term].shape[1] for p in parts)
        masks[term] = torch.cat([_pad(p.masks[term], 1, items) for p in parts])
        count = len(parts[0].parts[term])
        out[term] = tuple(torch.cat([_pad(p.parts[term][k], 1, items) for p in parts])
                          for k in range(count))  # fmt: skip
    return MatcherText(out, masks)


def _cat_video(parts: Sequence[MatcherVideo]) -> MatcherVideo:
    """Batches of matcher clips as one (frames padded to the longest batch)."""
    frames = max(p.mask.shape[1] for p in parts)
    return MatcherVideo(
        torch.cat([_pad(p.keys, 1, frames) for p in parts]),
        torch.cat([_pad(p.change, 1, frames) for p in parts]),
        torch.cat([_pad(p.mask, 1, frames) for p in parts]),
    )


@torch.no_grad()
def encode_match_text(model: Any, captions: Sequence[EncodedCaption], batch_size: int = 256,
                      device: torch.device | str = "cpu") -> MatcherText:  # fmt: skip
    """The matcher's reading of ``captions`` (model in eval mode), on the CPU."""
    parts = []
    for start in range(0, len(captions), batch_size):
        batch = collate_text(captions[start : start + batch_size]).to(device)
        parts.append(model.match_text(batch).to("cpu"))
    return _cat_text(parts)


@torch.no_grad()
def encode_match_video(model: Any, clips: Sequence[Mapping[str, np.ndarray]],
                       streams: Sequence[str], max_frames: int | None = None,
                       batch_size: int = 64, device: torch.device | str = "cpu") -> MatcherVideo:  # fmt: skip
    """The matcher's reading of ``clips`` (``{stream: (T, ...)}`` dicts), on the CPU."""
    parts = []
    for start in range(0, len(clips), batch_size):
        items = [dict(item) for item in clips[start : start + batch_size]]
        parts.append(model.match_video(collate_video(items, streams, max_frames).to(device))
                     .to("cpu"))  # fmt: skip
    return _cat_video(parts)


@torch.no_grad()
def pair_scores(model: Any, text: MatcherText, video: MatcherVideo, text_rows: np.ndarray,
                clip_rows: np.ndarray, device: torch.device | str = "cpu",
                terms: Sequence[str] | None = None) -> np.ndarray:  # fmt: skip
    """Match score of caption ``text_rows[p]`` against clip ``clip_rows[p]``, (P,) float32
    (``terms``: the mean of only these of the matcher's terms)."""
    rows = torch.as_tensor(np.asarray(text_rows, dtype=np.int64))
    cols = torch.as_tensor(np.asarray(clip_rows, dtype=np.int64))
    out = []
    in_order = len(cols) == len(video.mask) and bool(torch.equal(cols, torch.arange(len(cols))))
    for start in range(0, len(rows), PAIR_CHUNK):
        t = text.rows(rows[start : start + PAIR_CHUNK]).to(device)
        part = slice(start, start + PAIR_CHUNK)  # clip p for pair p: a view, not a copy
        v = (MatcherVideo(video.keys[part], video.change[part], video.mask[part]) if in_order
             else video.rows(cols[part])).to(device)  # fmt: skip
        out.append(model.matcher.score(t, v, pairs=True, terms=terms).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def fused_scores(text: Mapping[str, np.ndarray], video: Mapping[str, np.ndarray],
                 weights: Mapping[str, float]) -> np.ndarray:
    """The dense fused score ``sum_l w_l <t_l, v_l>`` (captions x clips) of retrieval
    embeddings (:func:`mcsan.model.scoring.retrieval_embeddings`)."""
    return sum(weight * (text[level] @ video[level].T) for level, weight in weights.items())


def reranked_metrics(fused: np.ndarray, caption_video: np.ndarray, match: Any,
                     policy: ShortlistPolicy, first: np.ndarray | None = None
                     ) -> dict[str, float]:  # fmt: skip
    """Retrieval metrics (:data:`mcsan.evaluate.protocol.METRIC_KEYS`) after re-ranking each
    query's shortlist (see the module docstring), with ``first_stage_recall`` and
    ``shortlist``. ``first``: the first stage's scores, which pick the shortlists (default
    ``fused``; with late interaction :func:`mcsan.evaluate.first_stage.first_stage_scores`)."""
    first = fused if first is None else first
    t2v, v2t = shortlist_orders(fused, match, policy, first)
    metrics = {k: v for k, v in retrieval_metrics(t2v, caption_video).items() if k[:3] == "t2v"}
    metrics.update({k: v for k, v in retrieval_metrics(v2t, caption_video).items()
                    if k[:3] == "v2t"})  # fmt: skip
    metrics["rsum"] = sum(metrics[f"{p}_r{k}"] for p in ("t2v", "v2t") for k in RECALL_KS)
    metrics["first_stage_recall"] = first_stage_recall(first, caption_video, policy)
    metrics["shortlist"] = float(policy.size(np.shape(fused)[1]))
    return metrics


def evaluate_reranked(model: Any, captions: Sequence[EncodedCaption],
                      clips: Sequence[Mapping[str, np.ndarray]], streams: Sequence[str],
                      max_frames: int | None, fused: np.ndarray, caption_video: np.ndarray,
                      batch_size: int, device: torch.device | str = "cpu",
                      policies: Sequence[ShortlistPolicy] = (ShortlistPolicy(),),
                      ) -> tuple[dict[str, float] | None, list[dict[str, float]]]:  # fmt: skip
    """The first stage's metrics when the first policy adds late interaction (else None),
    and the re-ranked metrics of ``model`` (with a matcher) for each of ``policies``, each
    shortlist drawn from its policy's first stage (:mod:`mcsan.evaluate.first_stage`); the
    matcher reads captions and clips once."""
    from mcsan.evaluate.first_stage import first_stage_scores, late_scores

    text = encode_match_text(model, captions, batch_size, device)
    video = encode_match_video(model, clips, streams, max_frames, batch_size, device)
    late = (late_scores(model, text, video, device, policies[0].late_terms)
            if any(p.late for p in policies) else None)  # fmt: skip

    # late terms that are all the matcher's give the same mean as its match score
    reuse = late is not None and set(policies[0].late_terms) >= set(model.matcher.terms)

    def match(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return late[rows, cols] if reuse else pair_scores(model, text, video, rows, cols, device)

    firsts = {p.late_weight: first_stage_scores(fused, late, p.late_weight) for p in policies}
    first_row = None
    if policies and policies[0].late:
        first_row = retrieval_metrics(firsts[policies[0].late_weight], caption_video)
    return first_row, [reranked_metrics(fused, caption_video, match, p, firsts[p.late_weight])
                       for p in policies]  # fmt: skip
