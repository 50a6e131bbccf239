"""Native dataset -> batches: vocabulary from train only, labels, masks, epoch order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tiny_world import make_tiny_dataset

from mcsan.core.errors import DataError
from mcsan.data.data_config import DataConfig
from mcsan.data.loading.collate import collate_video, encode_caption
from mcsan.data.loading.dataset import CaptionDataset, Collator, RetrievalData, epoch_batches
from mcsan.data.native import captions_path
from mcsan.train.distributed import DistContext, shard_bounds


def add_captions(root, *records):
    with captions_path(root).open("a", encoding="utf-8") as handle:
        for video_id, caption, split in records:
            handle.write(json.dumps({"video_id": video_id, "caption": caption, "split": split}))
            handle.write("\n")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", seed=1)
    # a word seen only in validation must not enter the vocabulary
    add_captions(root, ("video0024", "a purple zebra is dancing", "val"))
    return root


@pytest.fixture(scope="module")
def data(tiny_root, caption_parser):
    cfg = DataConfig(root=str(tiny_root), word_vectors="none", max_words=12,
                     attribute_sizes={"entity": 8, "action": 6, "relation": 6})  # fmt: skip
    return RetrievalData.load(cfg, ("train", "val"), parser=caption_parser)


def test_vocabulary_and_attributes_from_training_captions_only(data):
    assert "zebra" not in data.vocab and "ball" in data.vocab
    val_row = next(i for i, r in enumerate(data.records) if "zebra" in r.caption)
    assert 1 in data.encoded[val_row].tokens  # UNK
    train_lemmas = {s.lemma for i, p in enumerate(data.parsed) if data.records[i].split == "train"
                    for s in p.entities}  # fmt: skip
    assert set(data.attributes.items("entity")) <= train_lemmas
    assert "zebra" not in data.attributes.items("entity")


def test_video_targets_are_union_of_training_captions(data):
    video = int(data.caption_video[data.captions_of("train")[0]])
    rows = [i for i in data.captions_of("train") if data.caption_video[i] == video]
    for level in ("entity", "action"):
        union = sorted({x for r in rows for x in data.caption_labels[r][level]})
        assert data.video_labels[video][level] == union
    val_videos = {int(data.caption_video[i]) for i in data.captions_of("val")}
    assert not val_videos & set(data.video_labels)


def test_collate_shapes_masks_and_targets(data):
    dataset = CaptionDataset(data)
    assert len(dataset) == len(data.captions_of("train"))
    rows = [dataset[i] for i in range(5)]
    batch = Collator(data)(rows)
    assert len(batch) == 5
    assert set(batch.video.streams) == {"frame", "grid"}
    assert batch.video.streams["grid"].shape[2:] == (4, 8)
    lengths = [data.features[int(data.caption_video[r])]["frame"].shape[0] for r in rows]
    assert batch.video.mask.sum(1).tolist() == lengths
    text = batch.text
    assert text.mask.sum(1).tolist() == [len(data.encoded[r].tokens) for r in rows]
    assert set(text.spans) == set(text.span_masks) == {"entity", "action", "relation"}
    for spans, mask in ((text.spans["entity"], text.span_masks["entity"]),
                        (text.spans["action"], text.span_masks["action"])):  # fmt: skip
        assert spans.shape[1] >= 1
        ends = spans[..., 1][mask]
        assert (ends <= text.mask.sum(1)[:, None].expand_as(mask)[mask]).all()
    assert text.spans["relation"].shape[2:] == (3, 2)
    for level, size in data.attributes.sizes.items():
        assert batch.text_targets[level].shape == (5, size)
        assert batch.video_targets[level].shape == (5, size)
        # a caption's own labels are a subset of its video's training union
        assert (batch.text_targets[level] <= batch.video_targets[level]).all()
    assert batch.video_keys.tolist() == [int(data.caption_video[r]) for r in rows]
    for row, r in enumerate(rows):  # the packed label tables give exactly each item's labels
        video = int(data.caption_video[r])
        for level in data.attributes.sizes:
            text_hot = batch.text_targets[level][row].nonzero().flatten().tolist()
            video_hot = batch.video_targets[level][row].nonzero().flatten().tolist()
            assert text_hot == data.caption_labels[r][level]
            assert video_hot == data.video_labels.get(video, {}).get(level, [])


def test_truncation_clips_spans(data, caption_parser):
    parsed = caption_parser.parse(["a red ball is jumping next to a blue cube"])[0]
    full = encode_caption(parsed, data.vocab, 50)
    short = encode_caption(parsed, data.vocab, 3)
    assert len(short.tokens) == 3 and len(full.tokens) == len(parsed.tokens)
    for level in ("entity", "action", "relation"):
        assert short.spans[level].shape[1:] == full.spans[level].shape[1:]
        assert (short.spans[level][..., 1] <= 3).all()
        assert (short.spans[level][..., 0] < short.spans[level][..., 1]).all()
    assert len(short.spans["relation"]) <= len(full.spans["relation"]) >= 1


def test_split_view_indexes_videos(data):
    captions, videos, caption_video = data.split_view("val")
    assert len(captions) == len(caption_video) == len(data.captions_of("val"))
    assert sorted(set(caption_video.tolist())) == list(range(len(videos)))


def test_missing_features_error_names_ids_or_drops(tiny_root, tmp_path, caption_parser):
    root = make_tiny_dataset(tmp_path / "data", {"train": 6, "val": 2})
    add_captions(root, ("ghost7", "a red ball is jumping", "train"))
    cfg = DataConfig(root=str(root), word_vectors="none")
    with pytest.raises(DataError, match="ghost7"):
        RetrievalData.load(cfg)
    cfg.drop_missing_features = True
    data = RetrievalData.load(cfg, parser=caption_parser)
    assert data.dropped_captions == 1 and "ghost7" not in data.video_ids


def test_unknown_stream_and_split_are_errors(tiny_root):
    with pytest.raises(DataError, match="rgb"):
        RetrievalData.load(DataConfig(root=str(tiny_root), streams=["rgb"]))
    with pytest.raises(DataError, match="comp"):
        RetrievalData.load(DataConfig(root=str(tiny_root)), ("train", "comp"))


def test_collate_video_pads_and_subsamples():
    items = [{"s": np.ones((5, 3), np.float32)}, {"s": np.full((2, 3), 2, np.float32)}]
    batch = collate_video(items, ["s"])
    assert batch.streams["s"].shape == (2, 5, 3)
    assert batch.mask.tolist() == [[True] * 5, [True, True, False, False, False]]
    assert torch.all(batch.streams["s"][1, 2:] == 0)
    ramp = {"s": np.arange(10, dtype=np.float32)[:, None]}
    sub = collate_video([ramp], ["s"], max_frames=4)
    assert sub.streams["s"][0, :, 0].tolist() == [0.0, 3.0, 6.0, 9.0]


@settings(max_examples=60, deadline=None)
@given(count=st.integers(2, 300), batch=st.integers(2, 64), seed=st.integers(0, 9),
       epoch=st.integers(0, 5), world=st.integers(1, 4))  # fmt: skip
def test_epoch_batches_cover_every_item_once(count, batch, seed, epoch, world):
    assume(batch >= world)
    batches = epoch_batches(count, batch, seed, epoch, min_batch=world)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(count))
    assert all(len(b) >= min(count, max(2, world)) for b in batches)
    again = epoch_batches(count, batch, seed, epoch, min_batch=world)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    shards = [shard_bounds(len(batches[0]), DistContext(r, world)) for r in range(world)]
    assert shards[0][0] == 0 and shards[-1][1] == len(batches[0])
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:], strict=False))


def test_epoch_order_changes_with_epoch():
    assert not np.array_equal(np.concatenate(epoch_batches(50, 8, 0, 0)),
                              np.concatenate(epoch_batches(50, 8, 0, 1)))  # fmt: skip
