"""Search benchmark: build time and single-query latency of VideoIndex, exact vs IVF.

Synthetic collections of N videos with 4 levels x D dims each (fused dim 4*D, float32).
Rows are clustered the way real embeddings are: every video belongs to one of C topics and
each level's vector is that topic's level centre plus noise (levels are correlated, as
they describe the same clip), L2-normalised. Queries are fresh draws from the same model.

Measured per size: build time (exact flat / IVF incl. training), p50/p95 latency of one
query through ``VideoIndex.search_vectors`` (FAISS search + the per-level contributions),
and the IVF index's recall@10 against exact search, at several nprobe values.

    .venv/bin/python benchmarks/bench_search.py --sizes 10000 100000 1000000 \
        --out /tmp/search.md  (copy the table into BENCHMARKS.md)

``--concepts`` measures concept (zero-example) search instead: N clips' pooled ImageNet
class probabilities (synthetic: each clip peaked on a few random classes) in the index's
dense (classes, clips) float32 matrix, memory-mapped from disk as ``mcsan serve`` reads it;
latency = one plain-English query through ``Searcher.answer(mode="concepts")`` end to end
(word matching, the product over the matched classes' rows, top-k, per-hit explanations).

    .venv/bin/python benchmarks/bench_search.py --concepts --sizes 100000
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
from datetime import date

import numpy as np

from mcsan import LEVELS
from mcsan.search import VideoIndex
from mcsan.search.index import default_nlist, default_nprobe

WEIGHTS = {"global": 0.4, "entity": 0.25, "action": 0.2, "relation": 0.15}
SHA = "0" * 64
DEFAULT_NOISE = 0.06
NOISE = DEFAULT_NOISE


def topic_centres(topics: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    """Unit-norm centre of every topic at every level."""
    rng = np.random.default_rng(seed)
    centres = {lv: rng.standard_normal((topics, dim)).astype(np.float32) for lv in LEVELS}
    return {lv: c / np.linalg.norm(c, axis=1, keepdims=True) for lv, c in centres.items()}


def synthetic(centres: dict, rows: int, seed: int, chunk: int = 100_000) -> dict:
    """Clustered, L2-normalised per-level embeddings {level: (rows, dim) float32}."""
    rng = np.random.default_rng(seed)
    topics, dim = centres[LEVELS[0]].shape
    data = {lv: np.empty((rows, dim), np.float32) for lv in LEVELS}
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        topic = rng.integers(0, topics, stop - start)
        for lv in LEVELS:
            noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
            block = centres[lv][topic] + NOISE * noise
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            data[lv][start:stop] = block
    return data


def percentile_ms(samples: list[float], q: float) -> float:
    """The q-th percentile of ``samples`` (seconds) in milliseconds."""
    return float(np.percentile(np.array(samples) * 1000.0, q))


def time_queries(index: VideoIndex, queries: dict, k: int) -> tuple[list[list[int]], list[float]]:
    """Top-k rows and the latency of each single query."""
    found, latencies = [], []
    count = next(iter(queries.values())).shape[0]
    for qi in range(count):
        one = {lv: q[qi : qi + 1] for lv, q in queries.items()}
        tick = time.perf_counter()
        result = index.search_vectors(one, k)[0]
        latencies.append(time.perf_counter() - tick)
        found.append(result.rows.tolist())
    return found, latencies


def recall_at(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    """Mean |found top-k & exact top-k| / k."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth,
                                                                              strict=True)]))


def bench_size(rows: int, dim: int, n_queries: int, nprobes: list[int], k: int) -> list[dict]:
    """Rows of the results table for one collection size."""
    topics = max(100, rows // 100)
    centres = topic_centres(topics, dim, seed=rows)
    data = synthetic(centres, rows, seed=rows + 1)
    queries = synthetic(centres, n_queries, seed=rows + 2)
    ids = np.arange(rows).astype(str).tolist()
    out = []

    tick = time.perf_counter()
    exact = VideoIndex.build(data, ids, None, WEIGHTS, SHA)
    build_s = time.perf_counter() - tick
    index_queries = dict(queries)
    truth, latencies = time_queries(exact, index_queries, k)
    out.append({"rows": rows, "kind": "exact (FlatIP)", "build_s": build_s, "nprobe": "-",
                "p50": percentile_ms(latencies, 50), "p95": percentile_ms(latencies, 95),
                "recall": 1.0})
    del exact
    gc.collect()

    nlist = default_nlist(rows)
    tick = time.perf_counter()
    approx = VideoIndex.build(data, ids, None, WEIGHTS, SHA, approx=True)
    build_s = time.perf_counter() - tick
    for nprobe in sorted(set(nprobes + [default_nprobe(nlist)])):
        if nprobe > nlist:
            continue
        approx.faiss_index.nprobe = nprobe
        found, latencies = time_queries(approx, index_queries, k)
        marker = " (default)" if nprobe == default_nprobe(nlist) else ""
        out.append({"rows": rows, "kind": f"IVF{nlist},Flat", "build_s": build_s,
                    "nprobe": f"{nprobe}{marker}", "p50": percentile_ms(latencies, 50),
                    "p95": percentile_ms(latencies, 95), "recall": recall_at(found, truth, k)})
    del approx, data
    gc.collect()
    return out


CONCEPT_QUERIES = (
    "a dog on a beach", "a cup of coffee", "a cat", "a red sports car", "a man on a motorcycle",
    "a bird", "a boat on the sea", "pizza", "someone playing the guitar", "a rocket",
    "a golden retriever", "a kayak on a lake",
)


def synthetic_concepts(rows: int, seed: int, chunk: int = 20_000) -> np.ndarray:
    """(1000, rows) float32 class probabilities, each clip peaked on 1-3 random classes."""
    rng = np.random.default_rng(seed)
    probs = np.empty((1000, rows), np.float32)
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        logits = rng.standard_normal((stop - start, 1000), dtype=np.float32)
        for _ in range(3):
            logits[np.arange(stop - start), rng.integers(0, 1000, stop - start)] += 8.0
        logits = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[:, start:stop] = (logits / logits.sum(axis=1, keepdims=True)).T
    return probs


def bench_concepts(rows: int, n_queries: int, k: int) -> dict:
    """Build, save and reload a concept-only index of ``rows`` clips; time plain queries."""
    import tempfile

    from mcsan.search.concept_index import ConceptScores
    from mcsan.search.concepts import default_bank
    from mcsan.search.searcher import Searcher

    bank = default_bank()
    scores = ConceptScores(synthetic_concepts(rows, seed=rows), {"classes": 1000})
    ids = np.arange(rows).astype(str).tolist()
    with tempfile.TemporaryDirectory() as folder:
        tick = time.perf_counter()
        VideoIndex.build({}, ids, None, {}, None, concepts=scores).save(folder)
        build_s = time.perf_counter() - tick
        searcher = Searcher(VideoIndex.load(folder), bank=bank)
        for query in CONCEPT_QUERIES:  # warm: page cache, GloVe neighbour table
            searcher.answer(query, k, "concepts")
        latencies = []
        for number in range(n_queries):
            query = CONCEPT_QUERIES[number % len(CONCEPT_QUERIES)]
            tick = time.perf_counter()
            searcher.answer(query, k, "concepts")
            latencies.append(time.perf_counter() - tick)
    return {"rows": rows, "kind": "concepts (dense 1000 x N float32, mmap)", "build_s": build_s,
            "nprobe": "-", "p50": percentile_ms(latencies, 50),
            "p95": percentile_ms(latencies, 95), "recall": 1.0}


def main() -> int:
    """Run the benchmark and write the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256, help="dims per level (fused = 4x)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE, help="per-dim noise around topics")
    parser.add_argument("--out", help="markdown file to write")
    parser.add_argument("--concepts", action="store_true",
                        help="benchmark concept (zero-example) search instead of FAISS")
    args = parser.parse_args()
    global NOISE
    NOISE = args.noise
    rows = []
    for size in args.sizes:
        print(f"size {size} ...", file=sys.stderr, flush=True)
        found = ([bench_concepts(size, args.queries, args.k)] if args.concepts
                 else bench_size(size, args.dim, args.queries, args.nprobe, args.k))
        for row in found:
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    lines = [
        "# Search benchmark (`benchmarks/bench_search.py`)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_search.py"
        f"{' --concepts' if args.concepts else ''} --sizes "
        f"{' '.join(map(str, args.sizes))} --dim {args.dim} --queries {args.queries} --noise {args.noise}`  ",
        f"Date: {date.today().isoformat()}; machine: {platform.machine()}, 2 cores (shared), "
        "no GPU, 24 GB RAM; faiss-cpu, float32.  ",
        (f"Concept search: synthetic pooled class probabilities (each clip peaked on 3 random "
         f"classes), {args.queries} single queries cycling over {len(CONCEPT_QUERIES)} plain "
         f"phrases, k = {args.k}. Latency = `Searcher.answer(mode='concepts')` end to end. "
         if args.concepts else
         f"Fused dim: 4 levels x {args.dim} = {4 * args.dim}. Synthetic clustered rows "
         f"(topics = rows/100, correlated levels, noise {NOISE} per dim, L2-normalised); "
         f"{args.queries} single queries per row, k = {args.k}. Latency = one query through "
         "`VideoIndex.search_vectors` (FAISS search + per-level contributions). ")
        + f"Peak RSS {peak_gb:.1f} GB.",
        "",
        "| rows | index | build (s) | nprobe | p50 (ms) | p95 (ms) | recall@10 vs exact |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['rows']:,} | {row['kind']} | {row['build_s']:.1f} | {row['nprobe']} | "
            f"{row['p50']:.2f} | {row['p95']:.2f} | {row['recall']:.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from mcsan.core.io import atomic_write_text

        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
