"""Search quality by mode: R@1 / R@5 of each caption's own clip in `auto` against `model`.

Builds an index (model embeddings and concept scores) of the first ``--clips`` test clips of
a demo world with a trained checkpoint, then queries it with ``--per-clip`` test captions of
each clip in each mode. Counts the answers that warn of weak concept evidence and the mode
that ranked each. Runs with whatever `mcsan` is on PYTHONPATH (so an older checkout can be
measured on its own index):

    PYTHONPATH=src .venv/bin/python benchmarks/bench_search_modes.py runs/demo/world \
        runs/demo/runs/mcsan/best.pt /tmp/modes_index --clips 40 --per-clip 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("world", help="the demo's world folder (native dataset with videos/)")
    parser.add_argument("checkpoint", help="a checkpoint trained on it")
    parser.add_argument("out", help="work folder: the clips and the index go here")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--per-clip", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mcsan.data.native import read_captions
    from mcsan.inference.retriever import Retriever
    from mcsan.search.build import index_videos
    from mcsan.search.server import open_searcher

    captions: dict[str, list[str]] = defaultdict(list)
    for record in read_captions(args.world):
        if record.split == "test":
            captions[record.video_id].append(record.caption)
    chosen = sorted(v for v, texts in captions.items() if len(texts) >= args.per_clip)
    chosen = chosen[: args.clips]
    out = Path(args.out)
    clips = out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    for video_id in chosen:
        source = next((Path(args.world) / "videos").glob(f"{video_id}.*"))
        if not (clips / source.name).exists():
            shutil.copy(source, clips / source.name)
    index = out / "index"
    if not (index / "meta.json").is_file():
        retriever = Retriever.from_checkpoint(args.checkpoint)
        index_videos(retriever, clips, index, checkpoint=args.checkpoint)
    searcher = open_searcher(index)
    queries = [(video_id, text) for video_id in chosen for text in captions[video_id][: args.per_clip]]
    table = {}
    for mode in ("model", "auto"):
        ranks, weak, ranked_by = [], 0, Counter()
        for video_id, text in queries:
            answer = searcher.answer(text, args.k, mode)
            ids = [hit.video_id for hit in answer.hits]
            ranks.append(ids.index(video_id) + 1 if video_id in ids else None)
            weak += any(w.startswith("Weak evidence") for w in answer.warnings)
            ranked_by[answer.mode] += 1
        table[mode] = {
            "R@1": 100 * sum(r == 1 for r in ranks) / len(ranks),
            "R@5": 100 * sum(r is not None and r <= 5 for r in ranks) / len(ranks),
            "weak_evidence_answers": weak,
            "ranked_by": dict(ranked_by),
        }
    result = {
        "date": date.today().isoformat(), "machine": f"{platform.machine()}, torch {torch.__version__}",
        "clips": len(chosen), "queries": len(queries), "checkpoint": args.checkpoint,
        "modes": table,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
