"""Time and peak memory of the chunked evaluator against its arithmetic floor.

At MSR-VTT-full size (2,990 test videos, 59,800 captions, 4 levels, d = 1024; random
L2-normalised float32 embeddings) this runs, in one process and interleaved,

* ``retrieval_metrics_from_embeddings`` (the one-pass chunked evaluator), and
* one dense product (59,800 x 4096) @ (4096 x 2,990) into a preallocated output: the
  arithmetic any evaluator must do,

``--repeats`` times each, and prints the median times, their ratio and the median of the
per-repeat ratios (robust to the load of a shared machine drifting between repeats). Peak
memory is the process's ``ru_maxrss`` read right after the first evaluator run (before the
dense operands exist), next to the resident size just before it, so the evaluator's own
extra memory is their difference. ``--small`` runs a 10x smaller case in seconds.

    .venv/bin/python benchmarks/bench_eval.py [--small] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch

from mcsan import LEVELS
from mcsan.evaluate.split import default_chunk_size, retrieval_metrics_from_embeddings

FULL = {"videos": 2990, "captions_per_video": 20, "width": 1024}
SMALL = {"videos": 299, "captions_per_video": 20, "width": 256}
WEIGHTS = {"global": 0.4, "entity": 0.2, "action": 0.2, "relation": 0.2}


def current_rss_mib() -> float:
    """Resident set size now, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unit_rows(n: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Random L2-normalised float32 rows, made in place (no full-size temporaries)."""
    rows = torch.empty(n, width)
    for start in range(0, n, 8192):
        block = rows[start : start + 8192]
        block.normal_(generator=generator)
        block.div_(block.norm(dim=1, keepdim=True))
    return rows


def main() -> None:
    """Run the benchmark and print a plain report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10x fewer videos, d=256")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = SMALL if args.small else FULL
    n_videos, width = size["videos"], size["width"]
    n_captions = n_videos * size["captions_per_video"]
    generator = torch.Generator().manual_seed(0)
    text = {level: unit_rows(n_captions, width, generator) for level in LEVELS}
    video = {level: unit_rows(n_videos, width, generator) for level in LEVELS}
    caption_video = torch.arange(n_videos).repeat_interleave(size["captions_per_video"])
    caption_video = caption_video[torch.randperm(n_captions, generator=generator)]
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(f"size: {n_captions} captions x {n_videos} videos, {len(LEVELS)} levels x d={width}")
    print(f"chunk rows (default): {default_chunk_size(n_captions, n_videos)}")

    eval_times, dense_times = [], []
    rss_before = peak_after = float("nan")
    dense_text = dense_video = dense_out = None
    metrics = {}
    for repeat in range(args.repeats):
        if repeat == 0:
            rss_before = current_rss_mib()
        start = time.perf_counter()
        metrics = retrieval_metrics_from_embeddings(text, video, WEIGHTS, caption_video)
        eval_times.append(time.perf_counter() - start)
        if repeat == 0:
            peak_after = peak_rss_mib()
            dense_text = torch.cat([WEIGHTS[lv] * text[lv] for lv in LEVELS], dim=1)
            dense_video = torch.cat([video[lv] for lv in LEVELS], dim=1).T.contiguous()
            dense_out = torch.empty(n_captions, n_videos)
        start = time.perf_counter()
        torch.mm(dense_text, dense_video, out=dense_out)
        dense_times.append(time.perf_counter() - start)
        print(
            f"repeat {repeat + 1}: evaluator {eval_times[-1]:.2f} s, dense product {dense_times[-1]:.2f} s"
        )

    eval_median, dense_median = statistics.median(eval_times), statistics.median(dense_times)
    print(
        f"evaluator median: {eval_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in eval_times)})"
    )
    print(
        f"dense product median: {dense_median:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in dense_times)})"
    )
    paired = [e / d for e, d in zip(eval_times, dense_times, strict=True)]
    print(f"ratio of medians, evaluator / dense product: {eval_median / dense_median:.2f}")
    print(
        f"per-repeat ratios (each pair ran back to back): {', '.join(f'{r:.2f}' for r in paired)}"
        f"; median {statistics.median(paired):.2f}"
    )
    print(
        f"peak RSS (ru_maxrss) after the first evaluator run: {peak_after:.0f} MiB; "
        f"RSS just before it (inputs): {rss_before:.0f} MiB; "
        f"evaluator's own extra: {peak_after - rss_before:.0f} MiB"
    )
    print(
        f"sanity (random embeddings, so chance): rsum {metrics['rsum']:.2f}, "
        f"t2v_medr {metrics['t2v_medr']:.1f} of {n_videos}"
    )


if __name__ == "__main__":
    main()
