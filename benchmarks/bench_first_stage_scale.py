"""The first stage with late interaction at scale: t2v on a large world collection, per checkpoint.

For each checkpoint (with a binding matcher), on a fixed random sample of the collection's
test captions (every clip is a candidate): t2v R@1/5/10 and the share of the oracle's R@10
(the oracle over the same captions, :mod:`mcsan.world.oracle`) of

- the fused score (MCSAN's four levels);
- the first stage ``fused + w * late`` for each ``--late-weights``, with the matcher's entity
  and action terms over every clip, and with all three (relation too; then ``late`` is the
  whole matcher score) (:mod:`mcsan.evaluate.first_stage`);
- re-ranking the top ``--fraction`` of the fused score (today's two stages) and of the first
  stage, by ``fused + weight * match`` (the checkpoint's weight; the library's
  :func:`~mcsan.evaluate.shortlist.shortlist_orders`), with the first stage's recall there;
- the binding matcher over every clip (``fused + weight * match``, no shortlist): the ceiling
  of any shortlist.

Ties count against the model. Sampling the captions keeps the matcher over every clip
affordable; the sample's binomial error on R@10 is about 1.4 points at 1,200 captions.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_first_stage_scale.py \
        --dataset /tmp/scale25/world --captions 1200 seed0=runs/demo/runs/mcsan/best.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch


def t2v_recalls(scores: np.ndarray, own: np.ndarray) -> dict[str, float]:
    """t2v R@1/5/10 (percent) of each row's own clip; ties count against the model."""
    mine = scores[np.arange(len(own)), own][:, None]
    rank = (scores >= mine).sum(1)
    return {f"t2v_r{k}": float(100.0 * np.mean(rank <= k)) for k in (1, 5, 10)}


def evaluate(name: str, checkpoint: str, dataset: str, n_captions: int, fraction: float,
             late_weights: list[float]) -> dict:  # fmt: skip
    """Every row of the module docstring for one checkpoint."""
    from mcsan.data.loading.dataset import RetrievalData
    from mcsan.evaluate.embed import embed_captions, embed_videos
    from mcsan.evaluate.first_stage import late_scores
    from mcsan.evaluate.reranked import encode_match_text, encode_match_video, fused_scores
    from mcsan.evaluate.shortlist import ShortlistPolicy, shortlist_orders
    from mcsan.inference.retriever import Retriever
    from mcsan.world.oracle import world_oracle

    started = time.perf_counter()
    retriever = Retriever.from_checkpoint(checkpoint)
    cfg = dataclasses.replace(retriever.config.data, root=str(Path(dataset).resolve()),
                              parse_cache=None)  # fmt: skip
    data = RetrievalData.load(cfg, ("test",), vocab=retriever.vocab,
                              attributes=retriever.attributes,
                              feature_set=retriever.feature_set, streams=retriever.streams)
    captions, videos, caption_video = data.split_view("test")
    pick = np.sort(np.random.default_rng(0).choice(len(captions), min(n_captions, len(captions)),
                                                   replace=False))  # fmt: skip
    sample = [captions[i] for i in pick]
    own = np.asarray(caption_video)[pick]
    model = retriever.model
    clips = data.video_features(videos)
    text = embed_captions(model, sample, 256, "cpu", desc="captions")
    video = embed_videos(model, clips, data.streams, data.max_frames, 64, "cpu", desc="clips")
    fused = fused_scores(text, video, {lv: float(w) for lv, w in model.level_weights().items()})
    match_text = encode_match_text(model, sample)
    match_video = encode_match_video(model, clips, data.streams, data.max_frames)
    late = late_scores(model, match_text, match_video)
    with torch.no_grad():
        match = np.concatenate([model.matcher.score(match_text.rows(torch.arange(s, min(s + 4, len(pick)))),
                                                    match_video).numpy()
                                for s in range(0, len(pick), 4)])  # fmt: skip
    rows = data.captions_of("test")[pick]
    oracle = world_oracle(data.root, [(data.records[r].video_id, data.records[r].caption)
                                      for r in rows], [data.video_ids[v] for v in videos])  # fmt: skip
    weight = retriever.shortlist.weight
    size = max(1, int(np.ceil(fraction * len(videos) - 1e-9)))
    out: dict = {"name": name, "checkpoint": checkpoint, "captions": len(pick),
                 "clips": len(videos), "shortlist": size, "weight": weight, "oracle": oracle,
                 "rows": {}}  # fmt: skip
    out["rows"]["fused"] = t2v_recalls(fused, own)
    firsts = {"fused": fused,
              **{f"first stage (entity, action; late weight {w:g})": fused + w * late
                 for w in late_weights},
              **{f"first stage (entity, action, relation; late weight {w:g})": fused + w * match
                 for w in late_weights}}  # fmt: skip
    policy = ShortlistPolicy(top_k=size, weight=weight)
    for label, first in firsts.items():
        if label != "fused":
            out["rows"][label] = t2v_recalls(first, own)
        t2v, _ = shortlist_orders(fused, lambda r, c: match[r, c], policy, first)
        row = t2v_recalls(t2v, own)
        kth = -np.sort(-first, axis=1)[:, size - 1]
        row["first_stage_recall"] = float(100.0 * np.mean(first[np.arange(len(own)), own] >= kth))
        out["rows"][f"{label} -> re-ranked top {size}"] = row
    out["rows"]["matcher over every clip"] = t2v_recalls(fused + weight * match, own)
    for row in out["rows"].values():
        row["r10_of_oracle"] = 100.0 * row["t2v_r10"] / max(oracle["t2v_r10"], 1e-9)
    out["seconds"] = time.perf_counter() - started
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=CHECKPOINT")
    parser.add_argument("--dataset", required=True, help="a world (e.g. from synth --eval-for)")
    parser.add_argument("--captions", type=int, default=1200)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--late-weights", default="1,2,4")
    parser.add_argument("--out", help="write every result as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    weights = [float(w) for w in args.late_weights.split(",")]
    results = []
    for item in args.checkpoints:
        name, _, path = item.partition("=")
        result = evaluate(name, path, args.dataset, args.captions, args.fraction, weights)
        results.append(result)
        print(f"\n{name}: {result['captions']} captions x {result['clips']} clips, "
              f"{result['seconds']:.0f} s; oracle t2v R@10 {result['oracle']['t2v_r10']:.1f}")
        print("| row | R@1 | R@5 | R@10 | R@10 of oracle | first stage recall |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, row in result["rows"].items():
            recall = row.get("first_stage_recall")
            print(f"| {label} | {row['t2v_r1']:.1f} | {row['t2v_r5']:.1f} | {row['t2v_r10']:.1f} "
                  f"| {row['r10_of_oracle']:.0f}% | {'-' if recall is None else f'{recall:.1f}%'} |")
    print(f"\nmachine: {platform.platform()}, one torch thread, {date.today()}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
