"""Is the late-interaction first stage calibrated across captions? (issue 25, v2t at scale)

The first stage scores ``first = fused + W x late`` (`mcsan.evaluate.first_stage`), ``late``
the mean of the binding matcher's terms. For text-to-video a caption's ranking only compares
clips, so any per-caption shift or positive scale of ``late`` leaves it (nearly) unchanged;
video-to-text compares captions, and there a caption whose terms score high against every
clip outranks the right one. This script scores one checkpoint's test split in full (every
caption against every clip, the evaluation protocol) and reports the fused score, the first
stage and its top-F re-ranked shortlist with ``late`` as it is, centred per caption over the
collection's clips, and standardised per caption (z-score, rescaled by the mean spread).

Both variants use only a caption's own scores against the evaluated clips (no other
caption's), but that collection is the test gallery: a deployment would take the statistics
over its own collection. ``--reference-split train`` takes them over another split's clips
instead (no test clip: nothing transductive). Centring is a per-caption constant (t2v and
search unchanged); the z-score also rescales, so t2v moves slightly.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_late_calibration.py CKPT --dataset WORLD \
        [--cache scores.npz] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

TERMS = ("entity", "action", "relation")
KEYS = ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10", "rsum")


def score_split(checkpoint: str, dataset: str, reference: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:  # fmt: skip
    """(fused, late over all three terms, caption -> clip) of the test split, dense, and the
    test captions' late scores against the ``reference`` split's clips (None without)."""
    from mcsan.data.loading.dataset import RetrievalData
    from mcsan.evaluate.embed import embed_captions, embed_videos
    from mcsan.evaluate.first_stage import late_scores
    from mcsan.evaluate.reranked import encode_match_text, encode_match_video, fused_scores
    from mcsan.inference.retriever import Retriever

    retriever = Retriever.from_checkpoint(checkpoint, "cpu")
    model = retriever.model
    cfg = dataclasses.replace(retriever.config.data, root=str(Path(dataset).resolve()),
                              parse_cache=None)  # fmt: skip
    splits = ("test",) if reference is None else ("test", reference)
    data = RetrievalData.load(cfg, splits, vocab=retriever.vocab,
                              attributes=retriever.attributes,
                              feature_set=retriever.feature_set, streams=retriever.streams)  # fmt: skip
    captions, videos, caption_video = data.split_view("test")
    clips = data.video_features(videos)
    text = embed_captions(model, captions, 256, "cpu", desc="captions")
    video = embed_videos(model, clips, data.streams, data.max_frames, 64, "cpu", desc="clips")
    weights = {level: float(w) for level, w in model.level_weights().items()}
    fused = fused_scores(text, video, weights)
    matcher_text = encode_match_text(model, captions, 256, "cpu")

    def late_against(items: list) -> np.ndarray:
        matcher_video = encode_match_video(model, items, data.streams, data.max_frames, 64, "cpu")
        return late_scores(model, matcher_text, matcher_video, "cpu", TERMS)

    reference_late = None
    if reference is not None:
        reference_late = late_against(data.video_features(data.split_view(reference)[1]))
    return fused, late_against(clips), np.asarray(caption_video), reference_late


def variants(late: np.ndarray, reference: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """``late`` as it is, centred per caption, standardised per caption (statistics over the
    evaluated clips, and with ``reference``, the caption's scores against other clips,
    over those instead)."""
    out = {"as is": late}
    for where, basis in (("", late), (" (reference clips)", reference)):
        if basis is None:
            continue
        mean = basis.mean(1, keepdims=True)
        spread = basis.std(1, keepdims=True) + 1e-6
        out[f"centred per caption{where}"] = late - mean
        out[f"z-scored per caption{where}"] = (late - mean) / spread * float(spread.mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", required=True, help="a world with a test split")
    parser.add_argument("--late-weight", type=float, default=4.0)
    parser.add_argument("--weight", type=float, default=2.0, help="re-ranking weight")
    parser.add_argument("--fraction", type=float, default=0.01, help="shortlist share")
    parser.add_argument("--top-k", type=int, default=None, help="shortlist size (replaces "
                        "--fraction; the demo's 100)")
    parser.add_argument("--reference-split", help="also take each caption's statistics over "
                        "this split's clips (e.g. train): no test clip in them")
    parser.add_argument("--cache", help="npz of the dense scores (written, or read if there)")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mcsan.evaluate.protocol import retrieval_metrics
    from mcsan.evaluate.reranked import reranked_metrics
    from mcsan.evaluate.shortlist import ShortlistPolicy

    started = time.perf_counter()
    reference = None
    if args.cache and Path(args.cache).is_file() and not args.reference_split:
        with np.load(args.cache) as cached:
            fused, late, caption_video = cached["fused"], cached["late"], cached["cv"]
    else:
        fused, late, caption_video, reference = score_split(args.checkpoint, args.dataset,
                                                            args.reference_split)  # fmt: skip
        if args.cache:
            np.savez(args.cache, fused=fused, late=late, cv=caption_video)
    shortlist = {"top_k": args.top_k, "fraction": None} if args.top_k else \
        {"fraction": args.fraction}
    policy = ShortlistPolicy(**shortlist, weight=args.weight, late_weight=args.late_weight,
                             late_terms=TERMS)  # fmt: skip
    rows = {"fused": retrieval_metrics(fused, caption_video)}
    for name, value in variants(late, reference).items():
        first = fused.astype(np.float64) + args.late_weight * value
        rows[f"first stage, late {name}"] = retrieval_metrics(first, caption_video)
        rows[f"first stage, late {name} -> re-ranked"] = reranked_metrics(
            fused, caption_video, lambda r, c, v=value: v[r, c], policy, first)
    seconds = time.perf_counter() - started
    print(f"{args.checkpoint} on {args.dataset}: {late.shape[0]} captions x {late.shape[1]} "
          f"clips, {seconds:.0f} s; re-ranked = top {policy.size(late.shape[1])} by the first "
          f"stage, re-ordered by fused + {args.weight:g} x match (match = late, same variant)")
    print("| row | " + " | ".join(KEYS) + " |")
    print("|---|" + "---:|" * len(KEYS))
    for name, metrics in rows.items():
        print(f"| {name} | " + " | ".join(f"{metrics[k]:.1f}" for k in KEYS) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"checkpoint": args.checkpoint, "seconds": seconds,
                                              "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
