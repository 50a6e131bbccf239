"""Hard negative clips: the world's training twins as negatives of the captions they make
false, feature edits (reversed, mirrored), the batch that carries them and their loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.config.run import load_config
from mcsan.core.errors import DataError
from mcsan.core.io import read_jsonl
from mcsan.data.data_config import DataConfig
from mcsan.data.loading.dataset import Collator, RetrievalData
from mcsan.data.loading.hard_negatives import caption_edits, edited_clip, pick_negatives
from mcsan.data.native import read_captions
from mcsan.model.losses import LossConfig, MCSANLoss
from mcsan.model.scoring import LevelOutput
from mcsan.train.trainer import Trainer
from mcsan.world import generate_world
from mcsan.world.twin_truth import TwinPair, mentions_change


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, caption_parser) -> Path:
    """The tiny dataset with a hard negative file: each training caption's negative is
    the next training clip (an arbitrary, checkable choice)."""
    root = make_tiny_dataset(tmp_path_factory.mktemp("hard") / "data", seed=4)
    train = [r for r in read_captions(root) if r.split == "train"]
    clips = list(dict.fromkeys(r.video_id for r in train))
    after = {v: clips[(i + 1) % len(clips)] for i, v in enumerate(clips)}
    with open(root / "hard_negatives.jsonl", "w", encoding="utf-8") as out:
        for record in train:
            out.write(json.dumps({"video_id": record.video_id, "caption": record.caption,
                                  "negative_id": after[record.video_id]}) + "\n")
    return root


def test_batch_carries_one_negative_clip_per_caption_up_to_the_limit(tiny: Path, caption_parser):
    data = RetrievalData.load(DataConfig(root=str(tiny), word_vectors="none", hard_negatives=5),
                              ("train",), parser=caption_parser)  # fmt: skip
    rows = data.captions_of("train")[:8]
    batch = Collator(data)(rows)
    assert batch.negative_video is not None and len(batch.negative_rows) == 5
    clips = list(dict.fromkeys(r.video_id for r in data.records if r.split == "train"))
    for clip, owner in zip(batch.negative_video.streams["frame"], batch.negative_rows, strict=True):
        own = data.video_ids[int(data.caption_video[rows[int(owner)]])]
        wanted = clips[(clips.index(own) + 1) % len(clips)]
        stored = data.video_features([data.video_ids.index(wanted)])[0]["frame"]
        assert np.allclose(clip[: len(stored)].numpy(), stored.astype(np.float32))
    again = Collator(data)(rows)
    assert torch.equal(again.negative_rows, batch.negative_rows)  # same batch, same clips
    off = RetrievalData.load(DataConfig(root=str(tiny), word_vectors="none"), ("train",),
                             parser=caption_parser)  # fmt: skip
    assert Collator(off)(rows).negative_video is None


def test_missing_file_is_a_data_error(tmp_path: Path, caption_parser):
    root = make_tiny_dataset(tmp_path / "data", seed=1)
    with pytest.raises(DataError, match="hard_negatives.jsonl"):
        RetrievalData.load(DataConfig(root=str(root), word_vectors="none", hard_negatives=4),
                           ("train",), parser=caption_parser)  # fmt: skip


def test_pick_negatives_is_bounded_and_seeded_by_the_rows():
    table = {3: np.array([10, 11]), 5: np.array([12]), 9: np.array([13])}
    videos, owners = pick_negatives(np.array([3, 4, 5, 9]), table, 2)
    assert len(videos) == 2 and set(owners.tolist()) <= {0, 2, 3}
    assert all(v in table[[3, 4, 5, 9][o]] for v, o in zip(videos, owners, strict=True))
    assert pick_negatives(np.array([4, 6]), table, 8)[0].size == 0


def test_edits_reverse_time_and_mirror_the_grid():
    assert caption_edits(["a", "ball", "be", "move", "left"]) == ("reversed", "mirrored")
    assert caption_edits(["a", "cube", "be", "approach", "a", "star"]) == ("reversed",)
    assert caption_edits(["a", "red", "ball", "be", "spin"]) == ()
    grid = np.arange(2 * 4 * 3).reshape(2, 4, 3)  # 2 frames of a 2 x 2 grid, row-major
    pooled = np.arange(6).reshape(2, 3)
    mirrored = edited_clip({"grid": grid, "pooled": pooled}, "mirrored")
    assert np.array_equal(mirrored["grid"][:, [0, 1, 2, 3]], grid[:, [1, 0, 3, 2]])
    assert np.array_equal(mirrored["pooled"], pooled)
    reversed_ = edited_clip({"grid": grid, "pooled": pooled}, "reversed")
    assert np.array_equal(reversed_["pooled"], pooled[::-1])


def test_hard_negative_hinge_on_fused_and_levels():
    text = LevelOutput({"global": F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)},
                       present={"global": torch.tensor([True, True])})  # fmt: skip
    video = LevelOutput({"global": torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
    negative = LevelOutput({"global": torch.tensor([[0.6, 0.8]])})  # false for caption 0
    keys = torch.tensor([0, 1])
    loss = MCSANLoss(LossConfig(lambda_hard_negatives=2.0, use_kl=False))
    total, parts = loss(video, text, {"global": 1.0}, keys, {}, {},
                        hard_negatives=(negative, torch.tensor([0])))  # fmt: skip
    # [0.2 + 0.6 - 1.0]+ = 0: already far enough; a closer clip costs
    assert float(parts["hard_negatives/fused"]) == pytest.approx(0.0)
    close = LevelOutput({"global": torch.tensor([[0.96, 0.28]])})
    total2, parts2 = loss(video, text, {"global": 1.0}, keys, {}, {},
                          hard_negatives=(close, torch.tensor([0])))  # fmt: skip
    assert float(parts2["hard_negatives/global"]) == pytest.approx(0.16, abs=1e-5)
    assert float(total2 - total) == pytest.approx(2.0 * 2 * 0.16, abs=1e-5)


def test_world_training_twins_become_hard_negatives(tmp_path: Path):
    root = tmp_path / "w"
    generate_world(root, 30, 7, frames=4, size=32, n_train_twins=4)
    plain = tmp_path / "plain"
    generate_world(plain, 30, 7, frames=4, size=32)
    for name in ("twins.jsonl", "captions.jsonl"):  # evaluation sees the same world
        assert (root / name).read_bytes() == (plain / name).read_bytes()
    records = list(read_jsonl(root / "hard_negatives.jsonl"))
    structure = {r["video_id"]: r for r in read_jsonl(root / "structure.jsonl")}
    truth = {(r["video_id"], r["caption"]): r for r in read_jsonl(root / "captions_truth.jsonl")}
    assert records and not (plain / "hard_negatives.jsonl").exists()
    for record in records:
        twin = structure[record["negative_id"]]
        original = structure[record["video_id"]]
        assert original["split"] == "train" and (root / "videos" /
                                                 f"{record['negative_id']}.mp4").is_file()
        assert twin["twin_of"] == record["video_id"]
        pair = TwinPair(record["video_id"], record["negative_id"], twin["twin_level"],
                        twin["change"])  # fmt: skip
        assert mentions_change(truth[(record["video_id"], record["caption"])], pair)


def test_training_with_hard_and_edited_negatives(tiny: Path, tmp_path: Path, caption_parser):
    config = tiny_config_yaml(tiny, tmp_path / "c.yaml", epochs=1)
    cfg = load_config(config, ["data.hard_negatives=4", "data.edit_negatives=4"])
    trainer = Trainer(cfg, tmp_path / "run", parser=caption_parser)
    assert trainer.data.caption_edits  # "moving left / right" captions
    batch = Collator(trainer.data)(trainer.data.captions_of("train")[:8])
    parts = trainer.train_step(batch)
    assert "hard_negatives/fused" in parts and parts["hard_negatives"] >= 0
