"""What the identity checks cost (issue 28): at 100k clips, and against a search and an epoch.

Part 1 (``--clips N``, default 100,000): a FeatureStore of N synthetic entries (one frame of
a (4,) stream each) and N small clip files, timing

- the store identity recomputed when a store is written (once per extraction/merge);
- a consumer's check: open the store, read its identity, compare (train, resume, evaluate,
  index, every re-ranked query);
- extraction's resume check: every entry's clip fingerprint read, every clip stat-ed (the
  unchanged-clip fast path), and the ends hash of clips whose mtime changed;
- an index's file check at load (size + ends hash of each file).

Part 2 (``--index IDX --dataset DS``, an index built with a matcher checkpoint from DS): the
same checks against one training epoch on DS (on-demand features: a stat per read) and
against ``Searcher.answer`` (model mode, re-ranked: the per-request check of the server
plus the re-ranker's store check). One torch thread.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_identity.py --clips 100000
    PYTHONPATH=src .venv/bin/python benchmarks/bench_identity.py --clips 0 \
        --index /tmp/w/index --dataset /tmp/w/world --config /tmp/w/run/config.yaml
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np


def timed(fn, repeat: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def at_scale(clips: int, folder: Path) -> list[str]:
    from mcsan.data.video.extract import _completed_ids
    from mcsan.data.video.identity import clip_fingerprint, ends_hash, stale_entries
    from mcsan.data.video.store import FeatureSpec, FeatureStore

    spec = FeatureSpec("bench", 32, 1, {"frame": (4,)})
    clip_dir = folder / "clips"
    clip_dir.mkdir()
    paths = {f"clip{i:06d}": clip_dir / f"clip{i:06d}.mp4" for i in range(clips)}
    for i, path in enumerate(paths.values()):
        path.write_bytes(i.to_bytes(8, "little") * 512)  # 4 KiB each
    store_path = folder / "features.h5"
    started = time.perf_counter()
    store = FeatureStore.create(store_path, spec)
    rng = np.random.default_rng(0)
    for video_id, path in paths.items():
        store.write(video_id, {"frame": rng.standard_normal((1, 4)).astype(np.float32)},
                    source=clip_fingerprint(path))  # fmt: skip
    build = time.perf_counter() - started
    record = timed(store._record_identity)  # noqa: SLF001 (what close() runs)
    store.close()

    def consumer_check() -> None:
        with FeatureStore.open(store_path) as opened:
            assert opened.identity is not None

    check = timed(consumer_check, 20)
    sources = {}
    read = timed(lambda: sources.update(_completed_ids(store_path, [], spec, set(paths))))
    stat_all = timed(lambda: stale_entries(sources, paths))
    touched = list(paths.values())[:1000]
    for path in touched:
        os.utime(path, ns=(1, 1))
    hash_touched = timed(lambda: stale_entries({p.stem: sources[p.stem] for p in touched},
                                               {p.stem: p for p in touched}))  # fmt: skip
    big = folder / "emb.npy"
    np.save(big, np.zeros((clips, 256), np.float32))
    index_file = timed(lambda: ends_hash(big), 5)
    return [
        f"| store identity recomputed on write ({clips:,} entries) | {record * 1000:.0f} ms "
        f"| once per extraction (building the store took {build:.0f} s) |",
        f"| consumer check: open + identity + compare | {check * 1000:.2f} ms | per train / "
        "evaluate / index / re-ranked query |",
        f"| resume: read {clips:,} clip fingerprints | {read:.1f} s | once per extraction run |",
        f"| resume: stat {clips:,} unchanged clips | {stat_all:.2f} s | once per extraction run |",
        f"| resume: ends hash of 1,000 touched clips (4 KiB each) | {hash_touched * 1000:.0f} ms "
        "| clips whose mtime changed |",
        f"| index load: size + ends hash of a {big.stat().st_size / 2**20:.0f} MiB file | "
        f"{index_file * 1000:.2f} ms | per index file at load |",
    ]


def against_use(index_dir: Path, dataset: Path, config: Path, queries: int) -> list[str]:
    import torch

    from mcsan.config.run import load_config
    from mcsan.data.native import read_captions
    from mcsan.search.index import VideoIndex
    from mcsan.search.index_files import changed_files, check_files
    from mcsan.search.server import open_searcher
    from mcsan.train.trainer import Trainer

    torch.set_num_threads(1)
    searcher = open_searcher(index_dir)
    captions = [r.caption for r in read_captions(dataset) if r.split == "test"][: queries + 1]
    searcher.answer(captions[0], 10, "model")
    answer = statistics.median(
        timed(lambda q=q: searcher.answer(q, 10, "model")) for q in captions[1:])  # fmt: skip
    index = searcher.index
    per_request = timed(lambda: changed_files(index.directory, index.on_disk), 200)
    rerank_check = 0.0
    if searcher.reranker is not None:
        from mcsan.data.video.store import FeatureStore
        from mcsan.search.rerank import _check_identity

        def store_check() -> None:
            with FeatureStore.open(searcher.reranker.feature_file) as store:
                _check_identity(index, store)

        rerank_check = timed(store_check, 50)
    meta = VideoIndex.load(index_dir).meta() | {"files": _recorded(index_dir)}
    load_check = timed(lambda: check_files(index_dir, meta), 20)
    load_all = timed(lambda: VideoIndex.load(index_dir), 5)
    cli = timed(lambda: subprocess.run(
        [sys.executable, "-m", "mcsan", "--quiet", "search", "--index", str(index_dir),
         "--mode", "model", captions[1]], check=True, capture_output=True), 3)  # fmt: skip
    cli_checks = load_check + rerank_check + per_request  # what one `mcsan search` checks

    cfg = load_config(config, [f"data.root={dataset}", "data.feature_memory=on_demand",
                               "train.epochs=1", "train.device=cpu"])  # fmt: skip
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(cfg, Path(run) / "run")
        features = trainer.data.features
        started = time.perf_counter()
        trainer.fit()
        epoch = time.perf_counter() - started
    reads = len(features)  # at least one disk read per clip per epoch (cache aside)
    from mcsan.data.loading.video_features import _file_stat

    stat = timed(lambda: [_file_stat(features.path) for _ in range(1000)], 5) / 1000
    epoch_checks = reads * stat + rerank_check  # + the load-time identity check (one open)
    return [
        f"| search: `Searcher.answer` (model, re-ranked) p50 | {answer * 1000:.1f} ms | |",
        f"| per request: index files stat-ed (server) | {per_request * 1e6:.0f} µs | "
        f"{100 * per_request / answer:.2f}% of a search |",
        f"| per re-ranked query: feature store opened + identity | {rerank_check * 1000:.2f} ms "
        f"| {100 * rerank_check / answer:.2f}% of a search (inside the p50 above) |",
        f"| index load: file hashes checked | {load_check * 1000:.1f} ms | "
        f"{100 * load_check / load_all:.0f}% of `VideoIndex.load` ({load_all * 1000:.0f} ms) |",
        f"| `mcsan search` (one query, a new process) | {cli:.2f} s | checks: "
        f"{cli_checks * 1000:.1f} ms = {100 * cli_checks / cli:.2f}% |",
        f"| training epoch ({len(features)} clips on demand) | {epoch:.1f} s | |",
        f"| per epoch: a stat per read + the store check | {epoch_checks * 1000:.1f} ms | "
        f"{100 * epoch_checks / epoch:.3f}% of the epoch |",
    ]


def _recorded(index_dir: Path) -> dict:
    import json

    return json.loads((index_dir / "meta.json").read_text())["files"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=100_000)
    parser.add_argument("--index", type=Path)
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    rows = []
    if args.clips:
        with tempfile.TemporaryDirectory() as folder:
            rows += at_scale(args.clips, Path(folder))
    if args.index:
        rows += against_use(args.index, args.dataset, args.config, args.queries)
    print(f"`benchmarks/bench_identity.py`, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {date.today()}\n")
    print("| check | cost | when / share |\n|---|---:|---|\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
