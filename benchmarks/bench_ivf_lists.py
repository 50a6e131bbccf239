"""What sets IVF-PQ recall on a large collection: the lists' training, the lists probed, the codes.

Builds FAISS indexes directly (no mcsan index around them) on ``--rows`` random clustered
clips of the demo's shapes (``bench_search.py``'s generator: 4 levels x 256, ``rows / 100``
topics), all in memory (``rows x 4 KB``), and prints recall@100 against exact search of 100
queries with the candidates re-scored exactly (as ``VideoIndex.search_vectors`` does), per
training sample, code and nprobe.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ivf_lists.py --rows 2000000 \\
        --train-per-list 64,256 --codes PQ64x4fs,PQ64x8 --nprobe 32,64,128,256
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import synthetic, topic_centres  # noqa: E402

from mcsan import LEVELS  # noqa: E402


def fused(block: dict) -> np.ndarray:
    """The levels side by side (equal weights)."""
    return np.concatenate([block[lv] for lv in LEVELS], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--nlist", type=int, default=None, help="default: sqrt(rows)")
    parser.add_argument("--train-per-list", default="64,256")
    parser.add_argument("--codes", default="PQ64x4fs")
    parser.add_argument("--nprobe", default="32,64,128,256")
    parser.add_argument("--pool", type=int, default=4, help="candidates re-scored per hit")
    args = parser.parse_args()
    rows, nlist = args.rows, args.nlist or int(round(math.sqrt(args.rows)))
    centres = topic_centres(max(100, rows // 100), 256, seed=1)
    data = np.empty((rows, 4 * 256), np.float32)
    for start in range(0, rows, 50_000):
        data[start : start + 50_000] = fused(synthetic(centres, min(rows - start, 50_000),
                                                       seed=start))  # fmt: skip
    queries = fused(synthetic(centres, 100, seed=10**9))
    scores = queries @ data.T
    truth = np.argsort(-scores, axis=1)[:, :100]
    own = np.minimum((scores > 1.0).sum(1), 100).mean() / 100  # same topic: ~2, other: ~0
    del scores
    print(f"{rows:,} clips, {nlist} lists; share of the exact top 100 in the query's own "
          f"topic {own:.3f}")
    rng = np.random.default_rng(0)
    for per_list in (int(v) for v in args.train_per_list.split(",")):
        train = data[np.sort(rng.choice(rows, min(rows, nlist * per_list), replace=False))]
        for code in args.codes.split(","):
            index = faiss.index_factory(data.shape[1], f"IVF{nlist},{code}",
                                        faiss.METRIC_INNER_PRODUCT)  # fmt: skip
            tick = time.perf_counter()
            index.train(train)
            index.add(data)
            built = time.perf_counter() - tick
            for nprobe in (int(v) for v in args.nprobe.split(",")):
                index.nprobe = nprobe
                found, tick = [], time.perf_counter()
                for query in queries:
                    _, rows_found = index.search(query[None], 100 * args.pool)
                    pool = np.sort(rows_found[0][rows_found[0] >= 0])
                    found.append(pool[np.argsort(-(data[pool] @ query))[:100]])
                took = (time.perf_counter() - tick) * 10  # ms per query (100 queries)
                recall = np.mean([len(set(f) & set(t)) / 100 for f, t in zip(found, truth,
                                                                               strict=True)])  # fmt: skip
                print(f"train {per_list}/list, {code}, nprobe {nprobe}: recall@100 "
                      f"{recall:.3f}, {took:.1f} ms/query (build {built:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
