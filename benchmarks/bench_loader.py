"""Batch building vs the MCSAN training step, torch threads, and memory with a grid stream.

Everything goes through the real code: a native dataset is written at each shape (template
captions, random float16 features), a :class:`mcsan.train.trainer.Trainer` loads it, and one run
times (a) building its epoch's batches alone (``Trainer._epoch_loader``: collation,
targets, spans) and (b) ``Trainer.train_step`` on those batches, so both numbers come from
the same process at the same shapes. Each measurement is a fresh process, idle and beside
a busy neighbour (a process running a 2-thread torch matmul loop, started and stopped by
this script); the 1-minute load average is recorded beside each row since the machine may
be shared. Then: model-step pairs/s with 1 vs 2 torch threads and OMP_WAIT_POLICY unset vs
PASSIVE, and the peak RSS of one training epoch (every batch built, a few trained, then
validation) on a 10,000-clip store with a 16 x 1280 grid stream (T=20, ~8 GB of float16 on
disk; features read on demand).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_loader.py --out /tmp/loader.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

SHAPES = {
    # the demo world: 8 frames, head 2x2 grid, block-10 (pooled and 4x4), RGB histograms
    "world": {"frames": 8, "batch": 64, "config": "world",
              "streams": {"head_grid2": (4, 1280), "block10": (112,), "rgbhist": (256,),
                          "block10_grid4": (16, 112)}},
    "msrvtt": {"frames": 20, "batch": 128, "config": "msrvtt",
               "streams": {"resnet152": (2048,)}},
    "grid": {"frames": 20, "batch": 128, "config": "msrvtt",
             "streams": {"resnet152": (2048,), "grid": (16, 1280)}},
}  # fmt: skip
COLOURS = ("red", "blue", "green", "yellow", "pink", "white")
SHAPE_WORDS = ("ball", "cube", "star", "cone")
ACTIONS = ("moving left", "jumping", "spinning", "falling")
RELATIONS = ("next to", "behind", "toward")
BURN = """
import sys, time, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    a = torch.tanh(a @ a)
"""


def write_dataset(root: Path, shape: dict, videos: int, seed: int = 0) -> Path:
    """A native dataset: ``videos`` clips (90% train, 10% val), 2 template captions each."""
    from mcsan.data.native import CaptionRecord, feature_path, write_captions, write_card
    from mcsan.data.video.store import FeatureSpec, FeatureStore

    rng = np.random.default_rng(seed)
    spec = FeatureSpec("random", 0, shape["frames"], dict(shape["streams"]))
    frames = shape["frames"]
    pool = [{name: rng.standard_normal((frames, *dims)).astype(np.float16)
             for name, dims in spec.streams.items()} for _ in range(16)]  # fmt: skip
    records = []
    root.mkdir(parents=True, exist_ok=True)
    with FeatureStore.create(feature_path(root, "bench"), spec) as store:
        for i in range(videos):
            video_id = f"v{i:05d}"
            split = "val" if i % 10 == 9 else "train"
            c, s, a, r = (int(rng.integers(len(x))) for x in (COLOURS, SHAPE_WORDS, ACTIONS,
                                                               RELATIONS))  # fmt: skip
            base = f"a {COLOURS[c]} {SHAPE_WORDS[s]} is {ACTIONS[a]}"
            other = f"{RELATIONS[r]} a {COLOURS[(c + 1) % 6]} {SHAPE_WORDS[(s + 1) % 4]}"
            records += [CaptionRecord(video_id, base, split),
                        CaptionRecord(video_id, f"{base} {other}", split)]  # fmt: skip
            store.write(video_id, pool[i % len(pool)])
    write_captions(root, records)
    write_card(root, {"name": "bench", "splits": ["train", "val"],
                      "feature_sets": {"bench": spec.to_json()}})  # fmt: skip
    return root


def run_config(shape: str, root: Path, cache: Path, overrides: list[str]):
    from mcsan.config.run import load_config

    sets = [f"data.root={root}", "data.word_vectors=none", f"data.parse_cache={cache}",
            f"train.batch_size={SHAPES[shape]['batch']}", "train.epochs=1",
            "train.num_workers=0", *overrides]  # fmt: skip
    return load_config(SHAPES[shape]["config"], sets)


def child_speed(shape: str, root: Path, cache: Path, overrides: list[str], steps: int) -> dict:
    """Build batches alone for >= 4 s (epoch after epoch), then train ``steps`` steps on
    some of them; wall and process-CPU pairs/s of both, one JSON dict."""
    import torch

    from mcsan.train import loader as loading
    from mcsan.train.trainer import Trainer

    cfg = run_config(shape, root, cache, overrides)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out)
        kept, pairs = [], 0
        wall, cpu, workers = time.perf_counter(), time.process_time(), _children_cpu()
        for epoch in itertools.count():
            loader = loading.epoch_loader(trainer.data, cfg.train.batch_size, cfg.seed, epoch,
                                          trainer.ctx, trainer.load_settings)  # fmt: skip
            for batch in loader:
                pairs += len(batch)
                if len(kept) < 2:
                    kept.append(batch)
                if time.perf_counter() - wall > 4:
                    break
            del loader  # its worker processes (if any) exit: their CPU time is counted
            if time.perf_counter() - wall > 4:
                break
        elapsed = time.perf_counter() - wall
        used = time.process_time() - cpu + _children_cpu() - workers
        build = (pairs / elapsed, pairs / used)
        trainer.train_step(kept[0])  # warm-up
        stepped = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in itertools.islice(itertools.cycle(kept), steps):
            trainer.train_step(batch)
            stepped += len(batch)
        step = (stepped / (time.perf_counter() - wall), stepped / (time.process_time() - cpu))
    return {"build": build[0], "build_cpu": build[1], "step": step[0], "step_cpu": step[1],
            "threads": torch.get_num_threads(), "features": trainer.data.features.describe(),
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (DataLoader workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_epoch_rss(root: Path, cache: Path, steps: int) -> dict:
    """One epoch on the big store: every batch built, ``steps`` of them trained, then the
    validation pass; the process's peak RSS (features at ``auto``: read on demand)."""
    from mcsan.train.trainer import Trainer

    cfg = run_config("grid", root, cache, [])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out)
        pairs, build = 0, 0.0
        tick = time.perf_counter()
        for number, batch in enumerate(trainer._epoch_loader()):
            build += time.perf_counter() - tick
            pairs += len(batch)
            if number < steps:
                trainer.train_step(batch)
            tick = time.perf_counter()
        fused = trainer.validate()["fused"]["rsum"]
    return {"seconds": time.perf_counter() - start, "pairs": pairs, "build": pairs / build,
            "rsum": fused, "features": trainer.data.features.describe(),
            "loading": trainer.load_settings.describe(),
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "worker_peak_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}  # fmt: skip


def spawn(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script as a child and return its JSON line (with the load average)."""
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    print(json.dumps({"args": args, "env": env, **result}), file=sys.stderr, flush=True)
    return result


class Neighbour:
    """A CPU-burning process for the duration of a ``with`` block (bounded in time anyway)."""

    def __init__(self, busy: bool, limit_s: float = 1800) -> None:
        self.busy, self.limit_s, self.proc = busy, limit_s, None

    def __enter__(self) -> Neighbour:
        if self.busy:
            self.proc = subprocess.Popen([sys.executable, "-c", BURN, str(self.limit_s)])
            time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--work", default="/tmp/bench_loader", help="datasets are written here")
    parser.add_argument("--videos", type=int, default=600, help="clips per speed dataset")
    parser.add_argument("--big", type=int, default=10_000, help="clips of the RSS store")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (grid: 1)")
    parser.add_argument("--thread-shapes", nargs="+", default=["world"], choices=list(SHAPES))
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--out", default="/tmp/bench_loader.md")
    args = parser.parse_args()
    work = Path(args.work)
    cache = work / "parsed_captions.jsonl"
    if args.child:
        kind, *rest = args.child
        if kind == "speed":
            shape, root, steps, *overrides = rest
            print(json.dumps(child_speed(shape, Path(root), cache, overrides, int(steps))))
        elif kind == "write":
            write_dataset(Path(rest[0]), SHAPES["grid"], int(rest[1]))
            print(json.dumps({}))
        else:
            print(json.dumps(child_epoch_rss(Path(rest[0]), cache, int(rest[1]))))
        return
    roots = {}
    for shape in SHAPES:
        roots[shape] = work / shape
        if not (roots[shape] / "captions.jsonl").exists():
            write_dataset(roots[shape], SHAPES[shape], args.videos)
    big = work / f"grid{args.big}"
    if not args.skip_rss and not (big / "captions.jsonl").exists():
        # in a child: Linux keeps a process's peak RSS across fork + exec, so writing the
        # big store here would show up in every later child's peak
        spawn(["--child", "write", str(big), str(args.big)])
    rows = []
    for busy in (False, True):
        with Neighbour(busy):
            for shape in SHAPES:
                steps = str(1 if shape == "grid" else args.steps)
                res = spawn(["--child", "speed", shape, str(roots[shape]), steps])
                rows.append((shape, "resident", busy, res))
            if not args.skip_rss:
                res = spawn(["--child", "speed", "grid", str(big), "1",
                             "data.feature_memory=on_demand"])  # fmt: skip
                rows.append((f"grid, {args.big:,} clips", "on demand", busy, res))
    rss = None if args.skip_rss else spawn(["--child", "rss", str(big), "3"])
    threads = []
    for shape, busy, count, policy in itertools.product(args.thread_shapes, (False, True),
                                                        (1, 2), ("", "PASSIVE")):  # fmt: skip
        with Neighbour(busy):
            env = {"OMP_WAIT_POLICY": policy} if policy else {}
            res = spawn(["--child", "speed", shape, str(roots[shape]), str(args.steps),
                         f"train.threads={count}"], env)  # fmt: skip
            threads.append((shape, busy, count, policy or "(unset)", res))
    report(args, rows, threads, rss)


def report(args: argparse.Namespace, rows: list, threads: list, rss: dict | None) -> None:
    """Write the markdown tables to ``args.out`` and print them."""
    lines = [
        "# Batch building vs the training step (CPU)", "",
        f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`  ",
        f"Date: {date.today().isoformat()}; {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
        "load = 1-minute load average when the row started (the machine is shared).", "",
        f"Build = pairs/s of building batches alone for 4 s (the Trainer's epoch loader, no "
        f"worker); step = pairs/s of Trainer.train_step on two of them, {args.steps} steps "
        "(grid: 1) after one warm-up, default threads; same process. Wall = wall-clock; CPU = "
        "the process's CPU time (steadier on a shared machine). Busy = a 2-thread torch matmul "
        "loop beside.", "",
        "| shapes | features | neighbour | load | build pairs/s (wall / CPU) | step pairs/s "
        "(wall / CPU) | build / step (wall / CPU) | threads | peak RSS (GB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for shape, memory, busy, r in rows:
        lines.append(
            f"| {shape} | {memory} | {'busy' if busy else 'idle'} | {r['load']:.1f} | "
            f"{r['build']:,.0f} / {r['build_cpu']:,.0f} | {r['step']:,.1f} / "
            f"{r['step_cpu']:,.1f} | {r['build'] / r['step']:,.0f}x / "
            f"{r['build_cpu'] / r['step_cpu']:,.0f}x | {r['threads']} | {r['peak_gb']:.2f} |"
        )
    lines += ["", "Model step vs torch threads and OMP_WAIT_POLICY:", "",
              "| shapes | neighbour | threads | OMP_WAIT_POLICY | load | step pairs/s (wall) | "
              "step CPU s / pair x 1000 | build pairs/s (wall) |",
              "|---|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for shape, busy, count, policy, r in threads:
        lines.append(f"| {shape} | {'busy' if busy else 'idle'} | {count} | {policy} | "
                     f"{r['load']:.1f} | {r['step']:,.1f} | {1000 / r['step_cpu']:.1f} | "
                     f"{r['build']:,.0f} |")  # fmt: skip
    if rss is not None:
        lines += ["", f"One epoch on {args.big:,} clips with a 16 x 1280 grid stream + 2048-d "
                  f"frames (T=20, the msrvtt config's model, batch 128): every batch of the "
                  f"epoch built ({rss['pairs']:,} pairs, {rss['build']:,.0f} pairs/s), 3 of them "
                  f"trained, then validation; features: {rss['features']}; "
                  f"{rss['loading']}. Peak RSS: training process {rss['peak_gb']:.2f} GB, "
                  f"worker process {rss['worker_peak_gb']:.2f} GB (forked: its RSS counts "
                  f"pages it shares with the trainer); {rss['seconds']:.0f} s."]  # fmt: skip
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
