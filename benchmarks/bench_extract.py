"""Frames/s of decode + extract end to end vs the backbone's pure batched forward.

For each frame size, in one run on one machine:
- ``forward``: ``encoder.encode`` on frames already in memory (the compute floor);
- ``end to end``: ``extract_features`` on H.264 clips (decode in threads, inference,
  part files, final merge), with the model already loaded.

    .venv/bin/python benchmarks/bench_extract.py [--clips 12] [--sizes 112,160,224]
        [--write /tmp/extract.md]  (copy the table into BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clips(folder: Path, count: int, seconds: float, width: int, height: int) -> None:
    """Write ``count`` clips of moving textured content (25 fps, H.264)."""
    from mcsan.data.video.clip_writer import write_video

    rng = np.random.default_rng(0)
    frames_per_clip = int(seconds * 25)
    ys, xs = np.mgrid[0:height, 0:width]
    for index in range(count):
        texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
        frames = np.empty((frames_per_clip, height, width, 3), np.uint8)
        for t in range(frames_per_clip):
            dy, dx = (t * 2) % height, (t * 3) % width
            frames[t] = texture[dy : dy + height, dx : dx + width]
            frames[t, ..., index % 3] = ((xs + ys + t * 4) % 256).astype(np.uint8)
        write_video(folder / f"clip{index:03d}.mp4", frames, fps=25)


def main() -> None:
    """Run the benchmark and print (and optionally write) a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length")
    parser.add_argument("--source", default="320x240", help="clip resolution WxH")
    parser.add_argument("--sizes", default="112,160,224")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from mcsan.data.video.backbone import WORLD_STREAMS, get_backbone
    from mcsan.data.video.decode import list_videos, read_frames
    from mcsan.data.video.extract import extract_features

    width, height = (int(v) for v in args.source.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        make_clips(folder, args.clips, args.seconds, width, height)
        videos = list_videos(folder)
        for size in (int(s) for s in args.sizes.split(",")):
            encoder = get_backbone(streams=WORLD_STREAMS, batch_size=args.batch, device=args.device)
            in_memory = np.concatenate(
                [read_frames(path, args.frames, size) for path in videos.values()]
            )
            usable = len(in_memory) // args.batch * args.batch or len(in_memory)
            encoder.encode(in_memory[: args.batch])  # warm-up: kernels for this shape
            tick = time.perf_counter()
            encoder.encode(in_memory[:usable])
            forward_fps = usable / (time.perf_counter() - tick)
            summary = extract_features(
                videos,
                Path(tmp) / f"features{size}.h5",
                frames=args.frames,
                size=size,
                batch_frames=args.batch,
                workers=args.workers,
                encoder=encoder,
            )
            e2e_fps = summary.frames / summary.seconds
            rows.append(
                (size, forward_fps, e2e_fps, summary.decode_seconds, summary.encode_seconds)
            )
            print(f"{size}px: forward {forward_fps:.1f} fps, end to end {e2e_fps:.1f} fps")

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    cores = len(os.sched_getaffinity(0))
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "no GPU used"
    lines = [
        "# Extraction throughput (EfficientNet-Lite0, streams head_grid2 + block10 + rgbhist)",
        "",
        f"- command: `.venv/bin/python benchmarks/bench_extract.py --clips {args.clips} "
        f"--sizes {args.sizes} --workers {args.workers} --device {args.device}`",
        f"- date: {datetime.date.today().isoformat()}; machine: {platform.machine()}, "
        f"{cores} cores usable, {gpu}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average at the end {load} (a load above the "
        "core count means other jobs shared the cores: absolute numbers are then low)",
        f"- clips: {args.clips} H.264 {args.source} 25 fps, {args.seconds:g} s each; "
        f"{args.frames} frames sampled per clip; batch {args.batch}; "
        f"{args.workers} decode threads",
        "- end to end = decode + inference + part files + final merge (model already loaded);"
        " forward = `encoder.encode` on frames already in memory",
        "",
        "| size | pure forward (frames/s) | end to end (frames/s) | ratio | "
        "decode s (summed over threads) | inference s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, forward_fps, e2e_fps, decode_s, encode_s in rows:
        lines.append(
            f"| {size} | {forward_fps:.1f} | {e2e_fps:.1f} | {e2e_fps / forward_fps:.2f} | "
            f"{decode_s:.1f} | {encode_s:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)


if __name__ == "__main__":
    main()
