"""Choose the binding matcher's shortlist size and weight on the validation split.

For every checkpoint (trained with ``model.rerank``) the matcher scores every caption
against every clip of the split once; each (top_k, weight) of the grid then re-ranks from
those scores. Prints the mean rsum over the checkpoints per setting (the choice is the
best mean validation rsum) and, with ``--report test``, the test rsum at every setting.

    PYTHONPATH=src .venv/bin/python benchmarks/select_rerank.py runs/abl/mcsan/seed*/best.pt \
        --dataset data/world --report test --out /tmp/select.md
"""

from __future__ import annotations

import argparse
from datetime import date

import numpy as np
import torch
from bench_rerank import load_split, write_table


def split_grid(retriever, split: str, dataset: str | None, top_ks, weights) -> dict:
    """{(top_k, weight): rsum} of one checkpoint on ``split`` (matcher scored once)."""
    from mcsan.evaluate.embed import embed_captions, embed_videos
    from mcsan.evaluate.reranked import (
        encode_match_text,
        encode_match_video,
        fused_scores,
        pair_scores,
        reranked_metrics,
    )
    from mcsan.evaluate.shortlist import ShortlistPolicy

    model = retriever.model.eval()
    data, captions, caption_video, clips = load_split(retriever, split, dataset)
    text = embed_captions(model, captions, 256, "cpu")
    video = embed_videos(model, clips, data.streams, data.max_frames, 64, "cpu")
    weights_l = {level: float(w) for level, w in model.level_weights().items()}
    fused = fused_scores(text, video, weights_l)
    rows, cols = np.meshgrid(np.arange(len(captions)), np.arange(len(clips)), indexing="ij")
    full = pair_scores(model, encode_match_text(model, captions),
                       encode_match_video(model, clips, data.streams, data.max_frames),
                       rows.ravel(), cols.ravel()).reshape(rows.shape)  # fmt: skip

    def match(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return full[r, c]

    grid = {(k, w): reranked_metrics(fused, caption_video, match,
                                     ShortlistPolicy(top_k=k, weight=w))["rsum"]
            for k in top_ks for w in weights}  # fmt: skip
    return {"grid": grid, "captions": len(captions), "clips": len(clips)}


def table(title: str, grids: list[dict], top_ks, weights) -> list[str]:
    """Markdown: mean rsum (sd) per (top_k, weight) over the checkpoints."""
    lines = [f"{title}", "", "| top k \\ weight | " + " | ".join(f"{w:g}" for w in weights)
             + " |", "|---|" + "---:|" * len(weights)]  # fmt: skip
    for k in top_ks:
        cells = []
        for w in weights:
            values = np.array([g["grid"][(k, w)] for g in grids])
            spread = f" +/- {values.std(ddof=1):.1f}" if len(values) > 1 else ""
            cells.append(f"{values.mean():.1f}{spread}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--dataset", help="native dataset (default: each checkpoint's own)")
    parser.add_argument("--top-k", default="10,20,50,100,1000000")
    parser.add_argument("--weights", default="0.25,0.5,1,2,4")
    parser.add_argument("--report", help="also show this split's rsum per setting (e.g. test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the markdown here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from mcsan.inference.retriever import Retriever

    top_ks = [int(x) for x in args.top_k.split(",")]
    weights = [float(x) for x in args.weights.split(",")]
    val, report = [], []
    for path in args.checkpoints:
        retriever = Retriever.from_checkpoint(path)
        if not retriever.has_matcher:
            raise SystemExit(f"{path}: no binding matcher (trained without model.rerank)")
        val.append(split_grid(retriever, "val", args.dataset, top_ks, weights))
        if args.report:
            report.append(split_grid(retriever, args.report, args.dataset, top_ks, weights))
    means = {key: np.mean([g["grid"][key] for g in val]) for key in val[0]["grid"]}
    best = max(means, key=lambda key: (means[key], -key[0]))  # ties: the smaller shortlist
    lines = [f"`benchmarks/select_rerank.py` on {len(val)} checkpoint(s), {date.today()}; "
             f"val: {val[0]['captions']} captions, {val[0]['clips']} clips", ""]  # fmt: skip
    lines += table("Validation rsum (mean +/- sd over checkpoints):", val, top_ks, weights)
    lines += ["", f"Chosen on validation: top {best[0]}, weight {best[1]:g} "
              f"(mean val rsum {means[best]:.1f})."]  # fmt: skip
    if report:
        lines += [""] + table(f"{args.report} rsum ({report[0]['captions']} captions, "
                              f"{report[0]['clips']} clips):", report, top_ks, weights)  # fmt: skip
    write_table("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
