"""Serving many users: latency of `mcsan serve` for one query at a time and for N at once.

Starts `mcsan serve` on the index (a subprocess, a free port), then for re-ranked model-mode
queries (test captions of the dataset): ``--single`` queries one after another, and
``--rounds`` rounds of ``--concurrent`` queries released together (a barrier), each its own
HTTP request. Reports client-side p50 / p95 per setting, errors, and the server's own
per-stage times (the API's ``timings``: encode, first stage, second stage; median).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_search_serve.py /tmp/demo_idx \
        --captions runs/demo/world --concurrent 30 --rounds 5
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import date
from urllib.parse import urlencode

import httpx
import numpy as np


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ask(base: str, query: str, rerank: bool) -> tuple[float, int, dict]:
    """(seconds, status, body) of one search request (plain http.client: a client that
    builds an SSL context per request, like ``httpx.get``, costs the 2 cores ~30 ms each)."""
    host, port = base.rsplit("/", 1)[-1].split(":")
    path = "/api/search?" + urlencode({"q": query, "k": 10, "mode": "model",
                                       "rerank": int(rerank)})  # fmt: skip
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        body = json.loads(reply.read())
    finally:
        connection.close()
    return time.perf_counter() - started, reply.status, body


def together(base: str, queries: list[str], rerank: bool) -> list[tuple[float, int, dict]]:
    """Send ``queries`` at once (one thread each, released by a barrier)."""
    barrier = threading.Barrier(len(queries))
    out: list = [None] * len(queries)

    def run(slot: int) -> None:
        barrier.wait()
        try:
            out[slot] = ask(base, queries[slot], rerank)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            out[slot] = (float("nan"), 0, {"error": str(exc)})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def summary(label: str, replies: list[tuple[float, int, dict]]) -> str:
    """One markdown row: p50, p95, errors, median stage times."""
    seconds = np.array([r[0] for r in replies if r[1] == 200]) * 1000
    errors = sum(r[1] != 200 for r in replies)
    stages = {}
    for stage in ("encode", "first_stage", "second_stage", "total"):
        values = [r[2].get("timings", {}).get(stage) for r in replies if r[1] == 200]
        values = [v for v in values if v is not None]
        stages[stage] = statistics.median(values) if values else float("nan")
    return (f"| {label} | {len(replies)} | {np.percentile(seconds, 50):.0f} | "
            f"{np.percentile(seconds, 95):.0f} | {errors} | {stages['encode']:.1f} | "
            f"{stages['first_stage']:.1f} | {stages['second_stage']:.1f} | {stages['total']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("index")
    parser.add_argument("--captions", required=True, help="native dataset whose test captions query")
    parser.add_argument("--single", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    args = parser.parse_args()
    from mcsan.data.native import read_captions

    captions = [r.caption for r in read_captions(args.captions) if r.split == "test"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "mcsan", "serve", "--index", args.index,
                               "--port", str(port), "--threads", str(args.threads)],
                              env=dict(os.environ))  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        for query in captions[:5]:  # warm: parser, page cache
            ask(base, query, True)
        rows = []
        for rerank in (True, False):
            label = "re-ranked top 100" if rerank else "fused only"
            single = [ask(base, captions[5 + i], rerank) for i in range(args.single)]
            rows.append(summary(f"{label}, one at a time", single))
            many = []
            for number in range(args.rounds):
                start = 5 + number * args.concurrent
                many += together(base, captions[start : start + args.concurrent], rerank)
            rows.append(summary(f"{label}, {args.concurrent} at once", many))
            p50_single = np.percentile([r[0] for r in single], 50)
            p50_many = np.percentile([r[0] for r in many if r[1] == 200], 50)
            rows.append(f"| ratio {args.concurrent} at once / one | | "
                        f"{p50_many / p50_single:.2f}x | | | | | | |")
    finally:
        server.terminate()
        server.wait(30)
    load = os.getloadavg()[0]
    print(f"`benchmarks/bench_search_serve.py {args.index} --concurrent {args.concurrent} "
          f"--rounds {args.rounds} --threads {args.threads}`, {platform.machine()}, {os.cpu_count()} cores, load "
          f"average {load:.1f} at the end, {date.today()}\n")
    print("| setting | requests | p50 ms | p95 ms | errors | encode ms | first stage ms | "
          "second stage ms | server total ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
