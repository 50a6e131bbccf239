"""Conversion throughput of `mcsan convert` per feature layout (MSR-VTT-shaped data).

Writes N videos x 20 captions in MSRVTT_data.json and (T, D) float32 features as a
.npy folder, an HGR-style HDF5 file and a Dual Encoding BigFile, converts each into a
native dataset and prints videos/s and the size of the written feature store.

    .venv/bin/python benchmarks/bench_convert.py --videos 500 --frames 20 --dim 2048
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from mcsan.data.convert.convert import ConvertOptions, convert_dataset
from mcsan.data.native import feature_path


def make_inputs(root: Path, videos: int, frames: int, dim: int) -> dict[str, Path]:
    """Annotation JSON and the three feature layouts of the same random features."""
    rng = np.random.default_rng(0)
    ids = [f"video{i}" for i in range(videos)]
    splits = ["train", "validate", "test"]
    data = {
        "videos": [{"video_id": v, "split": splits[i % 3]} for i, v in enumerate(ids)],
        "sentences": [{"video_id": v, "caption": f"a person does thing {k} in {v}"}
                      for v in ids for k in range(20)],
    }
    (root / "MSRVTT_data.json").write_text(json.dumps(data))
    npy_dir = root / "npy"
    npy_dir.mkdir()
    big = root / "bigfile"
    big.mkdir()
    with h5py.File(root / "feats.h5", "w") as h5, (big / "feature.bin").open("wb") as bin_:
        row_ids = []
        for v in ids:
            array = rng.standard_normal((frames, dim), dtype=np.float32)
            np.save(npy_dir / f"{v}.npy", array)
            h5[v] = array
            bin_.write(array.tobytes())
            row_ids += [f"{v}_{k}" for k in range(frames)]
    (big / "shape.txt").write_text(f"{len(row_ids)} {dim}")
    (big / "id.txt").write_text(" ".join(row_ids))
    return {"npy-dir": npy_dir, "hdf5": root / "feats.h5", "bigfile": big}


def main() -> None:
    """Run the benchmark and print one line per layout."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--dim", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        layouts = make_inputs(root, args.videos, args.frames, args.dim)
        print(f"{args.videos} videos x 20 captions, features ({args.frames}, {args.dim}) float32")
        for layout, path in layouts.items():
            out = root / f"out-{layout}"
            start = time.perf_counter()
            summary = convert_dataset("msrvtt",
                [root / "MSRVTT_data.json"],
                ConvertOptions(out=out, features=[path], backbone="resnet152"),
            )
            seconds = time.perf_counter() - start
            size = feature_path(out, "resnet152").stat().st_size / 2**20
            print(f"{layout:8s} {seconds:6.2f} s  {summary.features_imported / seconds:7.1f} "
                  f"videos/s  store {size:6.1f} MiB  captions {summary.captions_written}")


if __name__ == "__main__":
    main()
