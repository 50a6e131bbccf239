"""Training-step throughput and peak memory of MCSAN vs the global-only dual encoder (CPU).

MSR-VTT-like shapes: T=20 frames of one 2048-d stream, captions of 12-20 words, hidden and
embedding size 1024, attribute vocabularies entity 1024 / action 512 / relation 1024.
Each (configuration, batch size) runs in its own subprocess so that its peak RSS is its own;
configurations alternate so both see the same machine load.

    .venv/bin/python benchmarks/bench_model.py --out /tmp/model.md  (copy the table into BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date

VOCAB = 10_000
ATTRIBUTES = {"entity": 1024, "action": 512, "relation": 1024}


CELL_MODES = dict(entity_mode="cell_tensor", relation_mode="cell_tensor",
                  action_mode="cell_tensor")  # fmt: skip
"""The "cells" configuration: every level but global read from the cells (mcsan.model.cells);
at these shapes (no grid stream) the frame token is the one cell."""


NEGATIVE_SHARE = 4
"""Configs ending in ``_negatives`` encode batch / NEGATIVE_SHARE extra negative clips per
step (``data.hard_negatives`` / ``data.edit_negatives``) and add their hinge."""


def build(config: str, hidden: int, dim: int):
    """The model of ``config`` ("full", "cells", "cells_rerank" or "global_only", each
    optionally with "_negatives") at benchmark sizes ("cells_rerank": cells plus the binding
    matcher, mcsan.model.matcher)."""
    config = config.removesuffix("_negatives")
    import numpy as np

    from mcsan.model import MCSAN, ModelConfig

    common = dict(embed_dim=hidden, text_hidden=hidden, video_hidden=hidden, word_dim=300)
    if config == "global_only":
        cfg = ModelConfig.global_only(**common)
    else:
        cells = CELL_MODES if config.startswith("cells") else {}
        cfg = ModelConfig(**common, **cells, rerank=config == "cells_rerank")
    vectors = np.random.default_rng(0).normal(size=(VOCAB, 300)).astype(np.float32)
    return MCSAN(cfg, VOCAB, {"resnet152": (dim,)}, ATTRIBUTES, vectors)


def make_batch(batch: int, frames: int, dim: int, seed: int):
    """Random features, captions of 12-20 words with 1-4 entities, 1-3 actions, 0-3 triplets."""
    import torch

    from mcsan.core.batch import TextBatch, VideoBatch

    gen = torch.Generator().manual_seed(seed)
    video = VideoBatch(
        {"resnet152": torch.randn(batch, frames, dim, generator=gen)},
        torch.ones(batch, frames, dtype=torch.bool),
    )
    lengths = torch.randint(12, 21, (batch,), generator=gen)
    mask = torch.arange(20)[None] < lengths[:, None]
    tokens = torch.randint(2, VOCAB, (batch, 20), generator=gen) * mask

    def spans(n: int, min_count: int, parts: tuple[int, ...] = ()) -> tuple:
        start = torch.randint(0, 11, (batch, n, *parts), generator=gen)
        span = torch.stack([start, start + torch.randint(1, 3, start.shape, generator=gen)], -1)
        count = torch.randint(min_count, n + 1, (batch, 1), generator=gen)
        return span, torch.arange(n)[None] < count

    ent, ent_mask = spans(4, 1)
    act, act_mask = spans(3, 1)
    rel, rel_mask = spans(3, 0, (3,))
    text = TextBatch(tokens, mask, {"entity": ent, "action": act, "relation": rel},
                     {"entity": ent_mask, "action": act_mask, "relation": rel_mask})
    keys = torch.arange(batch)
    keys[1::8] = keys[0::8][: len(keys[1::8])]  # some videos appear twice, as in training
    targets = {
        lvl: (torch.rand(batch, k, generator=gen) < 4 / k).float() for lvl, k in ATTRIBUTES.items()
    }
    return video, text, keys, targets


def child(
    config: str,
    batch: int,
    frames: int,
    dim: int,
    hidden: int,
    steps: int,
    warmup: int,
    device: str = "cpu",
    amp: str = "none",
):
    """Time ``steps`` optimizer steps after ``warmup``; print one JSON line.

    On CUDA the peak is torch's max allocated GPU memory, on CPU the process's max RSS.
    """
    import contextlib

    import torch

    from mcsan.model.losses import LossConfig, MatchScores, MCSANLoss

    if device == "cpu":
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)
    model = build(config, hidden, dim).to(device).train()
    loss_fn = MCSANLoss(LossConfig())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    video, text, keys, targets = make_batch(batch, frames, dim, seed=1)
    negatives = None
    if config.endswith("_negatives"):  # extra clips, each false for one caption of the batch
        extra = max(1, batch // NEGATIVE_SHARE)
        negatives = (make_batch(extra, frames, dim, seed=2)[0].to(device),
                     torch.randperm(batch, generator=torch.Generator().manual_seed(3))[:extra])
    video, text, keys = video.to(device), text.to(device), keys.to(device)
    targets = {k: v.to(device) for k, v in targets.items()}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = device.startswith("cuda")

    def autocast():
        if amp == "bf16":
            return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    times, cpu_times = [], []
    for step in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        with autocast():
            video_out, text_out = model(video, text)
            match = None
            if model.matcher is not None:  # its ranking loss and predicate contrast
                clips, captions = model.match_video(video), model.match_text(text)
                match = MatchScores(model.matcher.score(captions, clips).float(),
                                    keys[:, None] == keys[None, :], predicates=
                                    model.matcher.predicate_contrast(captions, clips, text))  # fmt: skip
            clips = None if negatives is None else \
                (model.encode_video(negatives[0]), negatives[1].to(device))
        total, _ = loss_fn(video_out, text_out, model.level_weights(), keys, targets, targets,
                           match=match, hard_negatives=clips)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "config": config,
                "batch": batch,
                "step_s": statistics.median(times),
                "times": times,
                "cpu_s": statistics.median(cpu_times),
                "peak_mb": peak,
                "setup_mb": rss_before,
                "loss": float(total.detach()),
                "device_name": torch.cuda.get_device_name() if cuda else "cpu",
            }
        )
    )


def run_child(args: argparse.Namespace, config: str, batch: int) -> dict:
    """Run one measurement in a fresh interpreter."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        config,
        str(batch),
        "--frames",
        str(args.frames),
        "--dim",
        str(args.dim),
        "--hidden",
        str(args.hidden),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
        "--amp",
        args.amp,
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def parameter_table(hidden: int, dim: int) -> list[str]:
    """Markdown rows of trainable parameters per branch for both configurations."""
    counts = {cfg: build(cfg, hidden, dim).parameter_counts() for cfg in ("full", "global_only")}
    rows = ["| branch | full | global-only |", "|---|---:|---:|"]
    for branch in counts["full"]:
        base = counts["global_only"].get(branch)
        rows.append(
            f"| {branch} | {counts['full'][branch]:,} | {'' if base is None else f'{base:,}'} |"
        )
    return rows


def main() -> None:
    """Parse arguments, run the measurements, write the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "BATCH"))
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per config")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none")
    parser.add_argument("--out", default="/tmp/bench_model.md")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--configs", default="global_only,full,cells",
                        help="comma list of global_only, full, cells, cells_rerank, each "
                        "with _negatives optionally (global_only first)")
    args = parser.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    if args.child:
        config, batch = args.child
        child(
            config,
            int(batch),
            args.frames,
            args.dim,
            args.hidden,
            args.steps,
            args.warmup,
            args.device,
            args.amp,
        )
        return

    results: dict[tuple[str, int], list[dict]] = {}
    for batch in args.batches:
        for _ in range(args.repeats):
            for config in configs:
                res = run_child(args, config, batch)
                results.setdefault((config, batch), []).append(res)
                print(json.dumps(res), file=sys.stderr)

    gpu = next(iter(results.values()))[0]["device_name"]
    if args.device == "cpu":
        machine = (
            f"{os.cpu_count()} cores, no GPU, torch {args.threads} thread(s); the machine was shared with "
            "other jobs, so absolute times are noisy (configs alternate; read the ratio)"
        )
        peak_note = "max RSS of that process (includes ~0.3 GB of torch itself)"
    else:
        machine = f"{gpu}, amp={args.amp}"
        peak_note = "torch.cuda.max_memory_allocated of that process"
    lines = [
        f"# MCSAN model: training-step throughput and memory ({args.device})",
        "",
        f"Command: `{' '.join([os.path.relpath(sys.executable), *sys.argv])}`  ",
        f"Date: {date.today().isoformat()}; machine: {machine}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}.",
        "",
        f"Shapes: T={args.frames} frames, one stream of D={args.dim}, captions of 12-20 words, "
        f"hidden = embed = {args.hidden}, vocabulary {VOCAB:,} x 300, attribute sizes "
        f"{ATTRIBUTES}. One step = forward + loss (all terms on) + backward + Adam step. "
        f"Step time = median of {args.steps} timed steps after {args.warmup} warm-up, best of "
        f"{args.repeats} alternating fresh processes; process CPU time per step likewise (on "
        f"a shared machine it is steadier than wall time); peak = {peak_note}.",
        "",
        "| batch | config | step (s) | pairs/s | step vs global-only | CPU time/step (s) | "
        "CPU time vs global-only | peak (GB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for batch in args.batches:
        base = min(r["step_s"] for r in results[("global_only", batch)])
        base_cpu = min(r["cpu_s"] for r in results[("global_only", batch)])
        for config in configs:
            runs = results[(config, batch)]
            step = min(r["step_s"] for r in runs)
            cpu = min(r["cpu_s"] for r in runs)
            peak = max(r["peak_mb"] for r in runs) / 1024
            lines.append(
                f"| {batch} | {config} | {step:.4g} | {batch / step:.1f} | {step / base:.2f}x | "
                f"{cpu:.4g} | {cpu / base_cpu:.2f}x | {peak:.2f} |"
            )
    lines += ["", "All step times (s) per run:", ""]
    for (config, batch), runs in results.items():
        times = ", ".join(f"{t:.4g}" for r in runs for t in r["times"])
        lines.append(f"- {config} @ {batch}: {times}")
    lines += ["", "## Trainable parameters per branch", "", *parameter_table(args.hidden, args.dim)]
    with open(args.out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
