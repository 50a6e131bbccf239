#!/usr/bin/env bash
# GPU smoke test of the trainer (also runs on CPU, see the knobs): a synthetic native dataset with random MSR-VTT-like
# features (T=20 frames x 2048-d), one short training run per precision on CUDA (bf16
# autocast, fp16 autocast + GradScaler, fp32), printing the training pairs/s of each.
# Not run in CI. Usage (repository root, a CUDA machine):
#   bash benchmarks/gpu_smoke.sh [WORKDIR]
# Knobs (environment): SMOKE_DEVICE (cuda), SMOKE_VIDEOS (2000 train videos, +10% val),
# SMOKE_DIM (2048), SMOKE_EMBED (1024 = embed/text/video hidden), SMOKE_AMPS ("bf16 fp16 off"),
# SMOKE_EPOCHS (2). The CPU row of the trainer section of BENCHMARKS.md used
#   SMOKE_DEVICE=cpu SMOKE_VIDEOS=200 SMOKE_DIM=512 SMOKE_EMBED=256 SMOKE_AMPS=off
# Captions come from a small template grammar and are parsed by a template parser built
# into this script (exact spans, no spaCy needed), so it also runs where only torch,
# numpy, h5py, pyyaml, tqdm and tensorboard are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-$(mktemp -d)}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && PY="${PYTHON:-.venv/bin/python}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" - "$WORK" <<'PYEOF'
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mcsan.config import load_config
from mcsan.data.video.store import FeatureSpec, FeatureStore
from mcsan.data.native import CaptionRecord, feature_path, write_captions, write_card
from mcsan.data.captions.parse import ParsedCaption, Relation, Span
from mcsan.train import train

work = Path(sys.argv[1])
DEVICE = os.environ.get("SMOKE_DEVICE", "cuda")
VIDEOS = int(os.environ.get("SMOKE_VIDEOS", "2000"))
EMBED = int(os.environ.get("SMOKE_EMBED", "1024"))
AMPS = os.environ.get("SMOKE_AMPS", "bf16 fp16 off").split()
EPOCHS = int(os.environ.get("SMOKE_EPOCHS", "2"))
CUDA = DEVICE.startswith("cuda")
if CUDA:
    assert torch.cuda.is_available(), "no CUDA device: set SMOKE_DEVICE=cpu or use a GPU"
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
else:
    print(f"device: cpu ({torch.get_num_threads()} threads), torch {torch.__version__}")
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["ball", "cube", "cone", "ring", "star", "box"]
VERBS = ["moving", "jumping", "spinning", "rolling", "shrinking", "growing"]
T, D = 20, int(os.environ.get("SMOKE_DIM", "2048"))


class TemplateParser:
    """Parses exactly the captions of this script: 'a C S is V [near a C2 S2]'."""

    signature = "gpu-smoke-templates-1"

    def parse(self, captions, batch_size=256, skip_bad=False):
        out = []
        for text in captions:
            tokens = tuple(text.split())
            entities = [Span(tokens[2], 1, 3)]
            actions = [Span(tokens[4], 4, 5)]
            relations = []
            if len(tokens) > 5:
                entities.append(Span(tokens[8], 7, 9))
                relations.append(Relation(Span(tokens[2], 2, 3), Span("near", 5, 6),
                                          Span(tokens[8], 8, 9)))
            out.append(ParsedCaption(text, tokens, tokens, tuple(entities), tuple(actions),
                                     tuple(relations)))
        return out


def make_dataset(root, videos={"train": VIDEOS, "val": max(VIDEOS // 10, 10)}, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((len(COLOURS) + len(SHAPES) + len(VERBS), D)).astype(np.float32)
    spec = FeatureSpec(backbone="random", size=0, frames=T, streams={"feat": (D,)})
    records, number = [], 0
    with FeatureStore.create(feature_path(root, "random"), spec, overwrite=True) as store:
        for split, count in videos.items():
            for _ in range(count):
                vid = f"v{number:05d}"
                number += 1
                c, s, v = rng.integers(len(COLOURS)), rng.integers(len(SHAPES)), rng.integers(len(VERBS))
                c2, s2 = rng.integers(len(COLOURS)), rng.integers(len(SHAPES))
                base = f"a {COLOURS[c]} {SHAPES[s]} is {VERBS[v]}"
                for text in (base, base + f" near a {COLOURS[c2]} {SHAPES[s2]}"):
                    records.append(CaptionRecord(vid, text, split))
                code = basis[c] + basis[len(COLOURS) + s] + basis[len(COLOURS) + len(SHAPES) + v]
                store.write(vid, {"feat": code[None] + rng.standard_normal((T, D)).astype(np.float32)})
    write_captions(root, records)
    write_card(root, {"name": "gpu-smoke", "feature_sets": {"random": spec.to_json()}})


root = work / "data"
t0 = time.perf_counter()
make_dataset(root)
print(f"dataset: {time.perf_counter() - t0:.1f} s")
parser = TemplateParser()
for amp in AMPS:
    cfg = load_config(None, [f"data.root={root}", "data.word_vectors=none", f"train.amp={amp}",
                             f"train.epochs={EPOCHS}", "train.batch_size=128",
                             f"train.device={DEVICE}", f"model.embed_dim={EMBED}",
                             f"model.text_hidden={EMBED}", f"model.video_hidden={EMBED}",
                             "data.attribute_sizes={entity: 64, action: 32, relation: 128}"])
    records = []
    result = train(cfg, work / f"run-{amp}", parser=parser, on_epoch=records.append)
    for r in records:
        print(f"amp={amp:4s} epoch {r['epoch']}: loss {r['loss']['total']:.4f}  "
              f"{r['pairs_per_second']:.0f} pairs/s  val rsum {r['val']['fused']['rsum']:.1f}")
    if CUDA:
        print(f"amp={amp:4s} peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
        torch.cuda.reset_peak_memory_stats()
PYEOF
