"""A tiny native dataset for training tests: template captions + caption-correlated features.

Each video has an object (colour, shape), an action and optionally a second object with a
relation. Its features encode those choices (one-hot blocks plus noise) in a per-frame
vector stream and a 2x2 grid stream, with 3-6 frames, so a model can learn the task fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcsan.data.native import CaptionRecord, feature_path, write_captions, write_card
from mcsan.data.video.store import FeatureSpec, FeatureStore

COLOURS = ("red", "blue", "green", "yellow")
SHAPES = ("ball", "cube", "triangle")
ACTIONS = ("moving left", "moving right", "jumping", "spinning")
RELATIONS = ("next to", "behind")
FEATURE_SET = "tiny"
FRAME_DIM = 16
GRID_DIM = 8


def _captions(
    colour: str, shape: str, action: str, other: tuple[str, str, str] | None
) -> list[str]:
    base = f"a {colour} {shape} is {action}"
    out = [base, f"the {shape} is {action}"]
    if other is not None:
        ocolour, oshape, relation = other
        out.append(f"a {colour} {shape} is {action} {relation} a {ocolour} {oshape}")
    return out


def make_tiny_dataset(
    root: Path, videos: dict[str, int] | None = None, seed: int = 0, captions_per_video: int = 2
) -> Path:
    """Write a native dataset under ``root``; ``videos`` = videos per split."""
    videos = videos or {"train": 24, "val": 8, "test": 8}
    rng = np.random.default_rng(seed)
    spec = FeatureSpec(
        backbone="tiny-random", size=0, frames=0,
        streams={"frame": (FRAME_DIM,), "grid": (4, GRID_DIM)},
    )  # fmt: skip
    records: list[CaptionRecord] = []
    root.mkdir(parents=True, exist_ok=True)
    with FeatureStore.create(feature_path(root, FEATURE_SET), spec) as store:
        number = 0
        for split, count in videos.items():
            for _ in range(count):
                video_id = f"video{number:04d}"
                number += 1
                c, s, a = (int(rng.integers(len(x))) for x in (COLOURS, SHAPES, ACTIONS))
                other = None
                if rng.random() < 0.5:
                    other = (
                        COLOURS[int(rng.integers(len(COLOURS)))],
                        SHAPES[int(rng.integers(len(SHAPES)))],
                        RELATIONS[int(rng.integers(len(RELATIONS)))],
                    )
                texts = _captions(COLOURS[c], SHAPES[s], ACTIONS[a], other)
                for text in texts[: max(captions_per_video, 1)]:
                    records.append(CaptionRecord(video_id, text, split))
                frames = int(rng.integers(3, 7))
                code = np.zeros(FRAME_DIM, dtype=np.float32)
                code[c] = code[4 + s] = code[8 + a] = 1.0
                if other is not None:
                    code[12 + RELATIONS.index(other[2])] = 1.0
                frame = code[None] + 0.3 * rng.standard_normal((frames, FRAME_DIM))
                grid = np.zeros((frames, 4, GRID_DIM), dtype=np.float32)
                grid[:, a % 4, c % GRID_DIM] = 1.0
                grid += 0.3 * rng.standard_normal(grid.shape)
                store.write(video_id, {"frame": frame, "grid": grid})
    write_captions(root, records)
    with FeatureStore.open(feature_path(root, FEATURE_SET)) as written:
        identity = written.identity
    write_card(
        root,
        {"name": "tiny", "splits": sorted(videos),
         "feature_sets": {FEATURE_SET: {**spec.to_json(), "identity": identity}}},
    )  # fmt: skip
    return root


TINY_OVERRIDES: list[str] = [
    "model.embed_dim=16",
    "model.text_hidden=16",
    "model.video_hidden=16",
    "model.word_dim=8",
    "model.attention_hidden=8",
    "model.action_channels=8",
    "model.entity_slots=2",
    "model.attention_heads=2",
    "data.word_vectors=none",
    "data.attribute_sizes={entity: 8, action: 6, relation: 6}",
    "train.batch_size=8",
    "train.eval_batch_size=16",
    "train.lr=0.003",
    "train.log_every=2",
]
"""--set overrides that make a model train in well under a second per epoch on CPU."""


def tiny_config_yaml(root: Path, path: Path, epochs: int = 3, extra: str = "") -> Path:
    """Write a run config for the tiny dataset at ``root`` (tiny model, ``epochs``)."""
    path.write_text(
        f"""data:
  root: {root}
  word_vectors: none
  max_words: 12
  attribute_sizes: {{entity: 8, action: 6, relation: 6}}
model:
  embed_dim: 16
  text_hidden: 16
  video_hidden: 16
  word_dim: 8
  attention_hidden: 8
  action_channels: 8
  entity_slots: 2
  attention_heads: 2
train:
  epochs: {epochs}
  batch_size: 8
  eval_batch_size: 16
  lr: 0.003
  log_every: 2
  device: cpu
seed: 3
{extra}""",
        encoding="utf-8",
    )
    return path
