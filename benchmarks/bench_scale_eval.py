"""Quality at scale: the demo's checkpoints on a larger evaluation collection of the same world.

Makes an evaluation-only world for the world the checkpoints trained on (``mcsan synth
--eval-for``: test clips drawn like that world's, its seed and held-out combinations, none
of its clips, with twins), extracts its features as the demo does, and evaluates each
checkpoint on it (``mcsan evaluate --dataset``): the oracle ceiling, the fused first stage,
and with a binding matcher the re-ranked results at each shortlist with the first stage's
recall there. Each step's time is stated; a rerun reuses the clips and features. Each
checkpoint's report is written to ``OUT/scale_eval_<name>.json``.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_scale_eval.py \
        --world runs/demo/world --out runs/scale-eval --videos 2200 \
        global-only=runs/demo/runs/global-only/best.pt mcsan=runs/demo/runs/mcsan/best.pt
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path


def make_collection(base: str, out: Path, videos: int, twins: int | None, workers: int
                    ) -> tuple[dict, float, float]:  # fmt: skip
    """The evaluation-only world and its features: (settings, world seconds, feature
    seconds)."""
    from mcsan.data.native import feature_path, read_card, videos_dir
    from mcsan.data.video.decode import list_videos
    from mcsan.data.video.extract import extract_features, record_feature_set
    from mcsan.world import generate_world
    from mcsan.world.generate import eval_world_settings

    settings = eval_world_settings(base)
    started = time.perf_counter()
    generate_world(out, videos, settings["seed"], frames=settings["frames"], size=settings["size"],
                   workers=workers, n_twin_originals=twins, eval_from=settings["eval_from"])  # fmt: skip
    world_s = time.perf_counter() - started
    feature_set = next(iter(read_card(base).get("feature_sets", {"world": None})))
    started = time.perf_counter()
    target = feature_path(out, feature_set)
    summary = extract_features(list_videos(videos_dir(out)), target, frames=settings["frames"],
                               size=settings["size"], workers=workers)  # fmt: skip
    if summary.failed:
        raise SystemExit(f"{target}: {summary.failed} clips failed to extract")
    record_feature_set(out, target)
    return settings, world_s, time.perf_counter() - started


def table_rows(name: str, report: dict) -> list[str]:
    """Markdown rows of one checkpoint: fused, then each re-ranked shortlist."""
    from mcsan.evaluate.ceiling import oracle_shares

    oracle = report["oracle"]
    rows = []
    for row, metrics in report["metrics"].items():
        if row != "fused" and not row.startswith("reranked"):
            continue
        if row == "fused":
            label = "MCSAN fused" if name == "mcsan" else name
        else:
            shortlist = int(metrics["shortlist"])
            share = 100.0 * shortlist / report["videos"]
            label = f"{name} re-ranked top {shortlist} ({share:.2g}%)"
        of_oracle = oracle_shares(metrics, oracle)["t2v_r10"] if oracle else float("nan")
        first = (f"{metrics['first_stage_recall']:.1f}" if "first_stage_recall" in metrics
                 else "-")  # fmt: skip
        rows.append(f"| {label} | {metrics['t2v_r1']:.1f} | {metrics['t2v_r5']:.1f} | "
                    f"{metrics['t2v_r10']:.1f} | {metrics['rsum']:.1f} | {of_oracle:.0f}% | "
                    f"{first} |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", metavar="NAME=CHECKPOINT")
    parser.add_argument("--world", default="runs/demo/world",
                        help="the world the checkpoints trained on (default runs/demo/world)")
    parser.add_argument("--out", default="runs/scale-eval", help="the evaluation world's folder")
    parser.add_argument("--videos", type=int, default=2200, help="test clips (default 2200)")
    parser.add_argument("--twins", type=int, default=200,
                        help="test clips that get twins (default 200)")
    parser.add_argument("--shortlists", default="1%,5%",
                        help="re-rank at these shortlists besides the checkpoint's (default 1%%,5%%)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for evaluation")
    parser.add_argument("--table", help="write the markdown here too")
    args = parser.parse_args()

    import torch

    from mcsan.commands.evaluate import shortlist_list
    from mcsan.core.io import atomic_write_json
    from mcsan.inference.retriever import evaluate_checkpoint

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    settings, world_s, feature_s = make_collection(args.world, out, args.videos, args.twins,
                                                   args.workers)  # fmt: skip
    extra = [dict([item]) for item in shortlist_list(args.shortlists)]
    rows, timings, oracle = [], [], None
    for item in args.checkpoints:
        name, _, path = item.partition("=")
        started = time.perf_counter()
        report = evaluate_checkpoint(path, "test", out, shortlists=extra)
        timings.append(f"{name} {time.perf_counter() - started:.0f} s")
        atomic_write_json(out / f"scale_eval_{name}.json", report)
        oracle = oracle or report["oracle"]
        rows += table_rows(name, report)
        print("\n".join([f"{name}: {timings[-1]}", *table_rows(name, report)]), flush=True)
    head = []
    if oracle is not None:
        head.append(f"| oracle ceiling | {oracle['t2v_r1']:.1f} | {oracle['t2v_r5']:.1f} | "
                    f"{oracle['t2v_r10']:.1f} | - | 100% | - |")  # fmt: skip
    load = os.getloadavg()[0]
    lines = [
        f"`benchmarks/bench_scale_eval.py --world {args.world} --videos {args.videos} "
        f"--twins {args.twins}`: {args.videos:,} test clips, {report['captions']:,} captions "
        f"(seed {settings['seed']}, clip indices from {settings['eval_from']}, the world's "
        f"held-out combinations); {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {load:.1f} at the end, {args.threads} torch "
        f"thread(s), {date.today()}. Times: world {world_s:.0f} s, features {feature_s:.0f} s, "
        f"evaluation {', '.join(timings)}.",
        "",
        "| t2v, test clips | R@1 | R@5 | R@10 | rsum | R@10 of oracle | first stage at shortlist |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *head,
        *rows,
    ]
    if oracle is not None:
        lines += ["", f"Oracle: a caption is true of {oracle['mean_consistent']:.1f} clips on "
                  f"average (median {oracle['median_consistent']:.0f}) of {oracle['clips']:,}."]
    text = "\n".join(lines)
    print(text)
    if args.table:
        Path(args.table).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
