"""Cost and effect of the binding matcher's re-ranking stage on a split (CPU).

For a checkpoint trained with ``model.rerank`` (the ``world`` config): time to embed the
split and rank it by the fused score, then the extra time to re-rank each query's top-k
with the matcher (both directions), and the test metrics with each shortlist size.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_rerank.py runs/demo/runs/mcsan/best.pt \
        --out /tmp/rerank.md
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from datetime import date

import torch


def load_split(retriever, split: str, dataset: str | None = None):
    """The checkpoint's data for ``split`` (or another native ``dataset``'s): (data,
    captions, caption_video, clips)."""
    from mcsan.data.loading.dataset import RetrievalData

    cfg = dataclasses.replace(retriever.config.data)
    if dataset:
        cfg.root, cfg.parse_cache = dataset, None
    data = RetrievalData.load(cfg, (split,), vocab=retriever.vocab,
                              attributes=retriever.attributes, feature_set=retriever.feature_set,
                              streams=retriever.streams)  # fmt: skip
    captions, videos, caption_video = data.split_view(split)
    return data, captions, caption_video, data.video_features(videos)


def write_table(text: str, out: str | None) -> None:
    """Print the markdown and write it to ``out`` too."""
    print(text)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--split", default="test")
    parser.add_argument("--top-k", default="5,10,20,50,100", help="comma list of shortlist sizes")
    parser.add_argument("--weight", type=float, help="rerank weight (default: the checkpoint's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the markdown table here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mcsan.evaluate.embed import embed_captions, embed_videos
    from mcsan.evaluate.reranked import (
        encode_match_text,
        encode_match_video,
        fused_scores,
        pair_scores,
        reranked_metrics,
    )
    from mcsan.evaluate.shortlist import ShortlistPolicy
    from mcsan.evaluate.split import evaluate_levels
    from mcsan.inference.retriever import Retriever

    retriever = Retriever.from_checkpoint(args.checkpoint)
    model = retriever.model.eval()
    if model.matcher is None:
        raise SystemExit(f"{args.checkpoint}: no binding matcher (trained without model.rerank)")
    data, captions, caption_video, clips = load_split(retriever, args.split)
    started = time.perf_counter()
    text = embed_captions(model, captions, 256, "cpu")
    video = embed_videos(model, clips, data.streams, data.max_frames, 64, "cpu")
    weights = {level: float(w) for level, w in model.level_weights().items()}
    plain = evaluate_levels(text, video, weights, caption_video)["fused"]
    fused_s = time.perf_counter() - started
    fused = fused_scores(text, video, weights)

    started = time.perf_counter()
    match_text = encode_match_text(model, captions)
    match_video = encode_match_video(model, clips, data.streams, data.max_frames)
    encode_s = time.perf_counter() - started
    rows = [f"| fused only | - | {fused_s:.2f} | - | {plain['rsum']:.1f} | "
            f"{plain['t2v_r1']:.1f} | {plain['v2t_r1']:.1f} |"]
    queries = len(captions) + len(clips)
    weight = retriever.shortlist.weight if args.weight is None else args.weight
    for k in (int(x) for x in args.top_k.split(",")):
        pairs = [0]

        def match(r, c, pairs=pairs):
            pairs[0] += len(r)
            return pair_scores(model, match_text, match_video, r, c)

        started = time.perf_counter()
        metrics = reranked_metrics(fused, caption_video, match,
                                   ShortlistPolicy(top_k=k, weight=weight))
        seconds = time.perf_counter() - started + encode_s
        rows.append(f"| re-ranked top {k} | {pairs[0]:,} | {fused_s + seconds:.2f} | "
                    f"{1000 * seconds / queries:.2f} | {metrics['rsum']:.1f} | "
                    f"{metrics['t2v_r1']:.1f} | {metrics['v2t_r1']:.1f} |")  # fmt: skip
    lines = [
        f"`benchmarks/bench_rerank.py {args.checkpoint}`, split {args.split} "
        f"({len(captions)} captions, {len(clips)} clips), weight {weight:g}, "
        f"{args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, {date.today()}",
        "",
        "| ranking | pairs the matcher scored | seconds (embed + rank + re-rank) | "
        "re-rank ms per query | rsum | t2v R@1 | v2t R@1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    write_table("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
