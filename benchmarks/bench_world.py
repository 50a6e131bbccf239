"""Time `generate_world` (1,000 clips x 16 frames x 128 px, 2 workers) and print the counts.

Usage: .venv/bin/python benchmarks/bench_world.py [--out DIR] [--videos 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mcsan.world import generate_world


def main() -> None:
    """Generate once and print the summary as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="mcsan-world-"))
    start = time.perf_counter()
    summary = generate_world(out, args.videos, args.seed, frames=16, size=128,
                             workers=args.workers)
    wall = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in (out / "videos").glob("*.mp4")) / 1e6
    print(json.dumps({"wall_s": round(wall, 2), "out": str(out), "videos_mb": round(size_mb, 1),
                      "videos": summary.videos, "captions": summary.captions,
                      "splits": summary.splits, "captions_per_split": summary.captions_per_split,
                      "twins": summary.twins, "twins_per_level": summary.twins_per_level,
                      "rendered": summary.rendered}, indent=1))


if __name__ == "__main__":
    main()
