"""Can a feature stream locate an object from its colour and shape? (a grounding probe)

For every visible object of the world's train and test originals, the probe embeds the
object's (colour, shape) as a query, scores each grid cell of the frame by a dot product with
a linear projection of the cell's features, and predicts the position as the softmax-weighted
mean of the cell centres. Trained on train clips (1,500 Adam steps of 512 objects), tested on
test clips: mean position error, R^2, and the share of object pairs (|dx| or |dy| >= 0.1) whose
left/right or above/below order it gets right. It asks whether the features *can* support
role binding, before any retrieval model is trained on them.

    PYTHONPATH=src .venv/bin/python benchmarks/probe_grounding.py WORLD STORE.h5 \
        head_grid2 block10_grid4 head_grid2+block10_grid4
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mcsan.data.video.store import FeatureStore


def cell_centres(count: int) -> torch.Tensor:
    """(count, 2) centres of a row-major square grid."""
    side = math.isqrt(count)
    index = torch.arange(count, dtype=torch.float32)
    return torch.stack([(index % side + 0.5) / side, (index // side + 0.5) / side], -1)


def object_rows(world: Path) -> tuple[list[tuple], list[str], list[str]]:
    """(video, frame, colour, shape, x, y, split) per visible object of the originals."""
    clips = [json.loads(line) for line in (world / "structure.jsonl").open(encoding="utf-8")]
    clips = [c for c in clips if c["split"] in ("train", "test") and "_twin_" not in c["video_id"]]
    colours = sorted({o["colour"] for c in clips for o in c["objects"]})
    shapes = sorted({o["shape"] for c in clips for o in c["objects"]})
    rows = []
    for clip in clips:
        for obj in clip["objects"]:
            path = obj["trajectory"]
            for t, visible in enumerate(path["visible"]):
                if visible:
                    rows.append((clip["video_id"], t, colours.index(obj["colour"]),
                                 shapes.index(obj["shape"]), path["x"][t], path["y"][t],
                                 clip["split"]))  # fmt: skip
    return rows, colours, shapes


def probe(rows: list[tuple], features: dict, streams: list[str], n_colours: int,
          n_shapes: int) -> str:  # fmt: skip
    """Train and test one probe over ``streams`` (one softmax over all their cells)."""
    torch.manual_seed(0)
    cells = []
    for name in streams:
        x = torch.tensor(np.stack([features[r[0]][name][r[1]] for r in rows]), dtype=torch.float32)
        cells.append((x - x.mean((0, 1))) / (x.std((0, 1)) + 1e-5))
    centres = torch.cat([cell_centres(c.shape[1]) for c in cells])
    colour = torch.tensor([r[2] for r in rows])
    shape = torch.tensor([r[3] for r in rows])
    truth = torch.tensor([[r[4], r[5]] for r in rows], dtype=torch.float32)
    train = torch.tensor([r[6] == "train" for r in rows])
    proj = nn.ModuleList(nn.Linear(c.shape[-1], 64) for c in cells)
    queries = nn.ModuleList([nn.Embedding(n_colours, 64), nn.Embedding(n_shapes, 64)])
    params = [*proj.parameters(), *queries.parameters()]
    optimizer = torch.optim.Adam(params, 3e-3, weight_decay=1e-4)

    def predict(index: torch.Tensor) -> torch.Tensor:
        query = queries[0](colour[index]) + queries[1](shape[index])
        logits = torch.cat([torch.einsum("ngd,nd->ng", p(c[index]), query) / 8
                            for p, c in zip(proj, cells, strict=True)], dim=1)  # fmt: skip
        return logits.softmax(-1) @ centres

    train_rows = train.nonzero().squeeze(1)
    for _ in range(1500):
        batch = train_rows[torch.randint(len(train_rows), (512,))]
        loss = ((predict(batch) - truth[batch]) ** 2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_rows = (~train).nonzero().squeeze(1)
    with torch.no_grad():
        guess = predict(test_rows)
    error = (guess - truth[test_rows]).norm(dim=-1)
    spread = ((truth[test_rows] - truth[test_rows].mean(0)) ** 2).sum(-1).mean()
    r2 = 1 - (error**2).mean() / spread
    frames: dict[tuple, list] = {}
    for n, i in enumerate(test_rows.tolist()):
        frames.setdefault(rows[i][:2], []).append((guess[n], truth[i]))
    right = total = 0
    for items in frames.values():
        for a, (guess_a, true_a) in enumerate(items):
            for guess_b, true_b in items[a + 1:]:
                for axis in (0, 1):
                    if abs(true_b[axis] - true_a[axis]) >= 0.1:
                        total += 1
                        right += int((guess_b[axis] - guess_a[axis]).sign()
                                     == (true_b[axis] - true_a[axis]).sign())  # fmt: skip
    return (f"| {' + '.join(streams)} | {error.mean():.3f} | {r2:.3f} | {right / total:.3f} | "
            f"{total} |")  # fmt: skip


def main() -> None:
    """Parse arguments and print one markdown row per stream combination."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path, help="a world made by mcsan synth / mcsan demo")
    parser.add_argument("store", type=Path, help="its feature store (.h5)")
    parser.add_argument("streams", nargs="+", help="grid streams; join with + to combine")
    args = parser.parse_args()
    rows, colours, shapes = object_rows(args.world)
    with FeatureStore.open(args.store) as store:
        features = {vid: store.read(vid) for vid in sorted({r[0] for r in rows})}
    print("| streams | mean position error | R^2 | pair order right | pairs |")
    print("|---|---:|---:|---:|---:|")
    for spec in args.streams:
        print(probe(rows, features, spec.split("+"), len(colours), len(shapes)), flush=True)


if __name__ == "__main__":
    main()
