"""Where a server's batch of concurrent re-ranked queries spends its time, stage by stage.

In-process, no HTTP: the work the server's model worker does for a batch of ``--batch``
queries (search/batching.py), against the same for one query, for ``--rounds`` rounds of
distinct test captions of the dataset (none parsed before). Each stage is timed in the
worker's own CPU time (``time.thread_time``: other processes on a shared machine do not
count; their cache and memory traffic still does) and in wall time:

- parse: spaCy over the captions; embed: the caption encoder; first stage: one FAISS
  search for all of them (top ``--top`` by the fused score);
- matcher text: the captions as the binding matcher reads them; read clips: their
  shortlists' rows of the matcher store made float32; matcher: the binding matcher itself
  (the rest of :func:`mcsan.search.matcher_store.match_rows`).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_serve_stages.py /tmp/demo_idx \\
        --captions runs/demo/world
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import torch

STAGES = ("parse", "embed", "first stage", "matcher text", "read clips", "matcher")


def timed(into: dict[str, list], stage: str, work: Callable[[], Any]) -> Any:
    """``work()``, its thread CPU and wall milliseconds appended to ``into[stage]``."""
    cpu, wall = time.thread_time(), time.perf_counter()
    out = work()
    into.setdefault(stage, []).append((1000 * (time.thread_time() - cpu),
                                       1000 * (time.perf_counter() - wall)))  # fmt: skip
    return out


def one_batch(searcher: Any, queries: list[str], top: int, into: dict[str, list]) -> None:
    """The worker's stages for ``queries`` (see the module docstring)."""
    from mcsan.search import matcher_store

    retriever, index = searcher.retriever, searcher.index
    parsed = timed(into, "parse", lambda: retriever._parse(queries))
    encoded = timed(into, "embed", lambda: retriever.encode_parsed(parsed))
    found = timed(into, "first stage", lambda: index.search_vectors(
        {lv: encoded[lv] for lv in index.levels}, top))  # fmt: skip
    requests = [(query, result.rows) for query, result in zip(queries, found, strict=True)]
    key_dim = index.matcher_info["key_dim"]
    timed(into, "matcher text", lambda: retriever.match_text(queries))
    rows = np.concatenate([r for _, r in requests])
    chunk = matcher_store.PAIRS_PER_CALL

    def read() -> None:
        for start in range(0, len(rows), chunk):
            matcher_store._read_clips(index.matcher, rows[start : start + chunk], key_dim)

    timed(into, "read clips", read)
    timed(into, "rows", lambda: matcher_store.match_rows(retriever, index.matcher, key_dim,
                                                          requests))  # fmt: skip
    text, clips, total = into["matcher text"][-1], into["read clips"][-1], into["rows"].pop()
    into.setdefault("matcher", []).append(tuple(t - a - b for t, a, b in
                                                zip(total, text, clips, strict=True)))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index")
    parser.add_argument("--top", type=int, default=100, help="shortlist re-ranked per query")
    parser.add_argument("--batch", type=int, default=30, help="queries at once")
    parser.add_argument("--rounds", type=int, default=5, help="batches (and as many x batch "
                        "single queries)")  # fmt: skip
    parser.add_argument("--captions", required=True, help="native dataset whose test captions query")
    args = parser.parse_args()
    from mcsan.data.native import read_captions
    from mcsan.search.library import open_searcher

    torch.set_num_threads(1)  # as `mcsan serve` (--threads 1)
    searcher = open_searcher(args.index)
    captions = [r.caption for r in read_captions(args.captions) if r.split == "test"]
    one_batch(searcher, captions[:5], args.top, {})  # warm: parser, page cache, scratch
    single: dict[str, list] = {}
    batch: dict[str, list] = {}
    start = 5
    for _ in range(args.rounds):
        for query in captions[start : start + args.batch]:
            one_batch(searcher, [query], args.top, single)
        start += args.batch
        one_batch(searcher, captions[start : start + args.batch], args.top, batch)
        start += args.batch
    print(f"`benchmarks/bench_serve_stages.py {args.index} --batch {args.batch} --rounds "
          f"{args.rounds}`, {platform.machine()}, {os.cpu_count()} cores, 1 torch thread, load "
          f"average {os.getloadavg()[0]:.1f} at the end, {date.today()}; medians, CPU ms "
          "(wall ms)\n")
    print(f"| stage | one query | {args.batch} queries at once | per query at once |\n"
          "|---|---:|---:|---:|")
    sums = [[0.0, 0.0], [0.0, 0.0]]
    for stage in STAGES:
        cells = []
        for number, runs in enumerate((single, batch)):
            cpu = statistics.median(c for c, _ in runs[stage])
            wall = statistics.median(w for _, w in runs[stage])
            sums[number][0] += cpu
            sums[number][1] += wall
            cells.append(f"{cpu:.1f} ({wall:.1f})")
        per = statistics.median(c for c, _ in batch[stage]) / args.batch
        print(f"| {stage} | {cells[0]} | {cells[1]} | {per:.2f} |")
    print(f"| **all** | {sums[0][0]:.1f} ({sums[0][1]:.1f}) | {sums[1][0]:.1f} ({sums[1][1]:.1f}) "
          f"| {sums[1][0] / args.batch:.2f} |")
    print(f"\nCPU of {args.batch} at once / one: {sums[1][0] / sums[0][0]:.2f}x")


if __name__ == "__main__":
    main()
