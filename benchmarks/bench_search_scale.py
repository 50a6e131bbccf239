"""Search at scale: a collection of N clips with both stages, then an add and a remove.

The clips are random, in the demo's shapes (say so when quoting): per-level embeddings 4 x
``--dim`` float32 drawn like ``bench_search.py`` (clustered topics, correlated levels,
L2-normalised) and matcher store rows (frames x cells x key + change, float16, random unit
keys) in the layout of ``--checkpoint``'s matcher. Everything is generated in chunks and
streamed into memory-mapped segment files; nothing of size N x d sits in memory but FAISS.

Measured: build time (FAISS training + adding + saving; generating the random data apart) and
peak RSS; index size on disk and the resident size of a loaded index; p50 / p95 of a
model-mode query with the second stage over the top ``rerank_top_k`` (``Searcher.answer``:
parse + encode the caption, FAISS, contributions, store rows, matcher), with its stages;
recall@k of the first stage against exact search on ``--recall-queries`` synthetic queries;
then adding ``--add`` clips (segment + FAISS + save; their encoding is priced apart, from
the encoder's measured clips/s) and removing ``--remove`` clips.

    PYTHONPATH=src nice -n 5 .venv/bin/python benchmarks/bench_search_scale.py --rows 1000000 \
        --checkpoint runs/demo/runs/mcsan/best.pt --captions runs/demo/world --out /tmp/scale
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_search import percentile_ms, recall_at, synthetic, topic_centres  # noqa: E402

CHUNK = 50_000


def rss_gb() -> float:
    """Resident set size of this process now (GB)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def rss_parts() -> str:
    """Anonymous and file-backed (memory-mapped, reclaimable) resident memory now."""
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle if line.startswith("Rss"))
    return ", ".join(f"{k} {int(v.split()[0]) / 1e6:.2f} GB" for k, v in fields.items())


def peak_gb() -> float:
    """Peak resident set size of this process so far (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def npy_file(path: Path, shape: tuple[int, ...], dtype: type) -> int:
    """Create an .npy of ``shape`` (sparse, not mapped); return where its data starts."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    offset = int(array.offset)
    del array
    return offset


def write_rows(folder: Path, rows: int, first: int, centres: dict,
               layout: dict | None) -> None:  # fmt: skip
    """Random embeddings (and matcher rows) of ``rows`` clips into .npy files in ``folder``,
    written chunk by chunk through plain file writes (no mapping: the process's resident
    memory stays one chunk, not the files' size)."""
    from mcsan import LEVELS

    dim = centres[LEVELS[0]].shape[1]
    targets = {lv: (folder / f"emb_{lv}.npy", npy_file(folder / f"emb_{lv}.npy", (rows, dim),
                                                        np.float32)) for lv in LEVELS}  # fmt: skip
    rng = np.random.default_rng(first)
    if layout is not None:
        shape = (rows, layout["frames"], layout["cells"], layout["key_dim"] + layout["change_dim"])
        targets["matcher"] = (folder / "matcher.npy",
                              npy_file(folder / "matcher.npy", shape, np.float16))  # fmt: skip
        keys = rng.standard_normal((65_536, layout["key_dim"]), dtype=np.float32)
        keys /= np.linalg.norm(keys, axis=-1, keepdims=True)
        change = 0.1 * rng.standard_normal((65_536, layout["change_dim"]), dtype=np.float32)
        pool = np.concatenate([keys, change], axis=1).astype(np.float16)
    handles = {name: open(path, "r+b") for name, (path, _) in targets.items()}  # noqa: SIM115
    try:
        for start in range(0, rows, CHUNK):
            stop = min(rows, start + CHUNK)
            block = synthetic(centres, stop - start, seed=first + start)
            for lv in LEVELS:
                handles[lv].seek(targets[lv][1] + start * dim * 4)
                handles[lv].write(block[lv].tobytes())
            if layout is not None:  # cells drawn from a pool of random unit keys + changes
                row_bytes = int(np.prod(shape[1:])) * 2
                for part in range(start, stop, CHUNK // 5):
                    end = min(stop, part + CHUNK // 5)
                    cells = pool[rng.integers(0, len(pool), (end - part, *shape[1:3]))]
                    handles["matcher"].seek(targets["matcher"][1] + part * row_bytes)
                    handles["matcher"].write(cells.tobytes())
    finally:
        for handle in handles.values():
            handle.close()


def exact_top(folder: Path, levels: list[str], weights: dict, queries: dict,
              k: int) -> list[list[int]]:  # fmt: skip
    """Exact top-k rows of the fused score over the index's first segment, in chunks (each
    read through a mapping dropped after the chunk)."""
    count = len(np.load(folder / f"emb_{levels[0]}.npy", mmap_mode="r"))
    best_scores = np.full((len(queries[levels[0]]), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries[levels[0]]), 0), np.int64)
    for start in range(0, count, CHUNK * 4):
        stop = min(count, start + CHUNK * 4)
        scores = 0
        for lv in levels:
            mapped = np.load(folder / f"emb_{lv}.npy", mmap_mode="r")
            scores = scores + weights[lv] * (queries[lv] @ np.array(mapped[start:stop]).T)
            del mapped
        rows = np.broadcast_to(np.arange(start, stop), scores.shape)
        both_s = np.concatenate([best_scores, scores], axis=1)
        both_r = np.concatenate([best_rows, rows], axis=1)
        keep = np.argsort(-both_s, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(both_s, keep, 1)
        best_rows = np.take_along_axis(both_r, keep, 1)
    return best_rows.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256, help="dims per level (demo: 256)")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--captions", required=True, help="native dataset: test captions query")
    parser.add_argument("--out", required=True, help="folder for the index (removed after)")
    parser.add_argument("--index-type", default="auto")
    parser.add_argument("--no-rerank", action="store_true", help="first stage only, no store")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--recall-k", type=int, default=10)
    parser.add_argument("--add", type=int, default=10_000)
    parser.add_argument("--remove", type=int, default=1_000)
    parser.add_argument("--keep", action="store_true", help="keep the index folder")
    parser.add_argument("--late-weight", type=float, default=None,
                        help="the first stage's late interaction weight (default: the "
                        "checkpoint's rerank.late_weight)")
    parser.add_argument("--pq-pool", type=int, default=None,
                        help="IVF-PQ: candidates re-scored exactly per hit asked (default 4)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse OUT.staging's random data (same --rows, seed) if there")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from mcsan import LEVELS
    from mcsan.data.native import read_captions
    from mcsan.inference.retriever import Retriever
    from mcsan.search.grow import append_segment, drop_clips
    from mcsan.search.index import VideoIndex
    from mcsan.search.matcher_store import store_layout
    from mcsan.search.searcher import Searcher

    retriever = Retriever.from_checkpoint(args.checkpoint)
    retriever = retriever.with_shortlist(retriever.shortlist.replaced(late_weight=args.late_weight))
    if args.pq_pool:
        import mcsan.search.index as index_module

        index_module.PQ_POOL = args.pq_pool
    layout = None if args.no_rerank else store_layout(retriever)
    weights = retriever.level_weights
    out = Path(args.out)
    staging = out.parent / f"{out.name}.staging"
    shutil.rmtree(out, ignore_errors=True)
    centres = topic_centres(max(100, args.rows // 100), args.dim, seed=1)
    report = {}
    tick = time.perf_counter()
    if not (args.reuse and staging.is_dir()):  # --reuse: the data of an earlier, killed run
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write_rows(staging, args.rows, 0, centres, layout)
    report["generate_s"] = time.perf_counter() - tick
    embeddings = {lv: np.load(staging / f"emb_{lv}.npy", mmap_mode="r") for lv in LEVELS}
    matcher = np.load(staging / "matcher.npy", mmap_mode="r") if layout else None
    ids = [f"c{row}" for row in range(args.rows)]
    tick = time.perf_counter()
    index = VideoIndex.build(embeddings, ids, None, weights, retriever.checkpoint_sha256,
                             index_type=args.index_type, matcher=matcher,
                             matcher_info=layout)  # fmt: skip
    for role, name in [*((f"emb_{lv}", f"emb_{lv}.npy") for lv in embeddings),
                       *((("matcher", "matcher.npy"),) if layout else ())]:  # fmt: skip
        index.sources[(0, role)] = staging / name
    index.extra["checkpoint"] = str(Path(args.checkpoint).resolve())
    index.save(out)
    report["build_s"] = time.perf_counter() - tick
    report["build_peak_gb"] = peak_gb()
    report["after_build"] = rss_parts()
    report["kind"], report["nprobe"] = index.kind, index.nprobe
    del index, embeddings, matcher
    shutil.rmtree(staging)
    report["disk_gb"] = sum(p.stat().st_size for p in out.iterdir()) / 1e9

    before = rss_gb()
    index = VideoIndex.load(out)
    report["index_ram_gb"] = rss_gb() - before
    searcher = Searcher(index, retriever)
    if searcher.late is not None:  # slots of every clip, computed once and cached on disk
        tick = time.perf_counter()
        searcher.late.slots()
        report["late_slots_s"] = time.perf_counter() - tick
        report["late_exact"] = searcher.late.exact
        report["late_slots_mb"] = sum(p.stat().st_size for p in out.glob("late_slots*")) / 1e6
    captions = [r.caption for r in read_captions(args.captions) if r.split == "test"]
    for query in captions[:3]:
        searcher.answer(query, args.k, "model")
    latencies, stages = [], {"encode": [], "first_stage": [], "late": [], "second_stage": []}
    for query in captions[3 : 3 + args.queries]:
        tick = time.perf_counter()
        answer = searcher.answer(query, args.k, "model")
        latencies.append(time.perf_counter() - tick)
        for stage, values in stages.items():
            values.append(answer.timings.get(stage, 0.0))
    report["p50_ms"], report["p95_ms"] = percentile_ms(latencies, 50), percentile_ms(latencies, 95)
    report["stages_ms"] = {s: float(np.median(v)) for s, v in stages.items()}
    report["reranked"] = answer.reranked
    report["query_rss_gb"] = rss_gb()
    report["after_queries"] = rss_parts()

    queries = synthetic(centres, args.recall_queries, seed=10**9)
    found = [r.rows.tolist() for r in index.search_vectors(
        {lv: queries[lv] * 1.0 for lv in index.levels}, args.recall_k)]  # fmt: skip
    truth = exact_top(out, list(index.levels), weights, queries, args.recall_k)
    report[f"recall@{args.recall_k}"] = recall_at(found, truth, args.recall_k)

    if args.add:
        extra_dir = out.parent / f"{out.name}.new"
        shutil.rmtree(extra_dir, ignore_errors=True)
        extra_dir.mkdir()
        write_rows(extra_dir, args.add, args.rows, centres, layout)
        new_emb = {lv: np.load(extra_dir / f"emb_{lv}.npy") for lv in LEVELS}
        new_matcher = np.load(extra_dir / "matcher.npy", mmap_mode="r") if layout else None
        tick = time.perf_counter()
        new_ids = [f"c{row}" for row in range(args.rows, args.rows + args.add)]
        grown = append_segment(index, new_ids, [None] * args.add,
                               new_emb,
                               matcher=new_matcher,
                               matcher_file=extra_dir / "matcher.npy" if layout else None)  # fmt: skip
        grown.save(out)
        report["add_s"] = time.perf_counter() - tick
        shutil.rmtree(extra_dir)
        del index, grown, searcher  # one FAISS index in memory at a time
        gc.collect()
        index = VideoIndex.load(out)
    if args.remove:
        rng = np.random.default_rng(7)
        gone = [index.ids[row] for row in rng.choice(args.rows, args.remove, replace=False)]
        tick = time.perf_counter()
        drop_clips(index, gone).save(out)
        report["remove_s"] = time.perf_counter() - tick
    report["peak_gb"] = peak_gb()
    if not args.keep:
        shutil.rmtree(out)
    print(f"`benchmarks/bench_search_scale.py --rows {args.rows} --dim {args.dim} "
          f"--index-type {args.index_type}{' --no-rerank' if args.no_rerank else ''} "
          f"--late-weight {retriever.shortlist.late_weight:g}`, "
          f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{date.today()}, one torch thread")
    for key, value in report.items():
        print(f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}")


if __name__ == "__main__":
    main()
