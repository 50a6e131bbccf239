"""Latency of `mcsan search` in model mode with and without the binding matcher's re-ranking.

Queries are test captions of the index's dataset; each is answered with ``rerank`` off and
on (the checkpoint's ``rerank_top_k`` clips re-scored: their features read from the index's
feature file, then the matcher). One torch thread.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_search_rerank.py /tmp/demo_idx \
        --captions runs/demo/world --queries 60
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index", help="an index built with a checkpoint that has a matcher")
    parser.add_argument("--captions", required=True, help="native dataset whose test captions query")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mcsan.data.native import read_captions
    from mcsan.search.library import open_searcher

    searcher = open_searcher(args.index)
    if searcher.reranker is None:
        raise SystemExit(f"{args.index}: cannot re-rank ({searcher.rerank_problem or 'no matcher'})")
    captions = [r.caption for r in read_captions(args.captions) if r.split == "test"]
    captions = captions[: args.queries + 1]
    searcher.answer(captions[0], args.k, "model")  # load the parser and warm up
    rows = []
    for rerank in (False, True):
        times = []
        for query in captions[1:]:
            started = time.perf_counter()
            searcher.answer(query, args.k, "model", rerank=rerank)
            times.append(1000 * (time.perf_counter() - started))
        times.sort()
        p95 = times[max(0, int(0.95 * len(times)) - 1)]
        label = f"re-ranked top {searcher.reranker.top_k}" if rerank else "fused only"
        rows.append(f"| {label} | {statistics.median(times):.1f} | {p95:.1f} |")
    print(f"`benchmarks/bench_search_rerank.py`, {len(searcher.index)} clips, "
          f"{len(captions) - 1} queries, k {args.k}, one thread, "
          f"{platform.processor() or platform.machine()}, {date.today()}\n")
    print("| ranking | p50 ms | p95 ms |\n|---|---:|---:|\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
