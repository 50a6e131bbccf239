"""Features in bounded memory (resident float16 or on demand) and the training loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_world import make_tiny_dataset

from mcsan.config.run import DataConfig, TrainConfig
from mcsan.data.loading.collate import collate_text, collate_video
from mcsan.data.loading.dataset import CaptionDataset, Collator, RetrievalData, epoch_batches
from mcsan.data.native import feature_path
from mcsan.data.video.store import FeatureStore
from mcsan.train.distributed import DistContext
from mcsan.train.loader import epoch_loader, loader_settings, training_threads


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("features") / "data", seed=3)


def load(root, parser, **memory):
    cfg = DataConfig(root=str(root), word_vectors="none", max_frames=5, **memory)
    return RetrievalData.load(cfg, ("train", "val"), parser=parser)


def assert_batches_equal(a, b):
    for name in a.video.streams:
        assert torch.equal(a.video.streams[name], b.video.streams[name])
    assert torch.equal(a.video.mask, b.video.mask) and torch.equal(a.video_keys, b.video_keys)
    assert torch.equal(a.text.tokens, b.text.tokens)
    for level in a.text.spans:
        assert torch.equal(a.text.spans[level], b.text.spans[level])
        assert torch.equal(a.text.span_masks[level], b.text.span_masks[level])
    for targets in ("text_targets", "video_targets"):
        for level, value in getattr(a, targets).items():
            assert torch.equal(value, getattr(b, targets)[level])


def test_on_demand_equals_resident_with_a_bounded_cache(root, caption_parser):
    resident = load(root, caption_parser, feature_memory="resident")
    per_video = resident.features.nbytes / len(resident.features)
    cache_gb = 2.5 * per_video / 1024**3  # room for about two videos
    lazy = load(root, caption_parser, feature_memory="on_demand", feature_cache_gb=cache_gb)
    assert resident.features.mode == "resident" and lazy.features.mode == "on_demand"
    assert lazy.features.nbytes == resident.features.nbytes
    view = lazy.video_features([3, 1, 2])  # a split to evaluate: read one by one when used
    assert not lazy.features._cache and len(view[1:]) == 2
    assert np.array_equal(view[1:][0]["frame"], resident.features[1]["frame"])
    with FeatureStore.open(feature_path(root, "tiny")) as store:
        stored = store.read(resident.video_ids[0])
    for i in range(len(resident.features)):
        for name, array in resident.features[i].items():
            assert array.dtype == np.float16 and array.shape[0] <= 5
            assert np.array_equal(array, lazy.features[i][name])
        assert lazy.features._cached <= lazy.features.cache_bytes
    assert len(lazy.features._cache) <= 2
    # float16 in memory reaches the model exactly as the float32 the store used to give
    first = collate_video([resident.features[0]], resident.streams)
    assert torch.equal(first.streams["grid"][0], torch.from_numpy(stored["grid"][:5]))
    rows = list(CaptionDataset(resident))[:7]
    assert_batches_equal(Collator(resident)(rows), Collator(lazy)(rows))


def test_auto_reads_on_demand_beyond_the_resident_limit(root, caption_parser):
    assert load(root, caption_parser).features.mode == "resident"
    lazy = load(root, caption_parser, resident_limit_gb=0.0)
    assert lazy.features.mode == "on_demand" and "on demand" in lazy.features.describe()


def test_worker_processes_give_the_same_batches_in_the_same_order(root, caption_parser):
    data = load(root, caption_parser, feature_memory="on_demand")
    dataset = CaptionDataset(data)
    batches = epoch_batches(len(dataset), 8, seed=0, epoch=1)
    cpu = loader_settings(TrainConfig(), torch.device("cpu"))
    assert cpu.num_workers == 0 and not cpu.pin_memory
    two = loader_settings(TrainConfig(num_workers=2), torch.device("cpu"))
    plain = list(epoch_loader(data, 8, 0, 1, DistContext(), cpu))
    forked = list(epoch_loader(data, 8, 0, 1, DistContext(), two))
    assert len(plain) == len(forked) == len(batches)
    for a, b, rows in zip(plain, forked, batches, strict=True):
        assert_batches_equal(a, b)
        assert a.video_keys.tolist() == data.caption_video[dataset.rows[rows]].tolist()
    # under DDP, rank 1 of 2 gets the second half of each global batch
    second = list(epoch_loader(data, 8, 0, 1, DistContext(1, 2), cpu))
    assert [len(b) for b in second] == [len(b) // 2 for b in batches]


def test_loader_and_thread_defaults_per_device():
    cuda = loader_settings(TrainConfig(), torch.device("cuda"))
    assert cuda.num_workers == 4 and cuda.pin_memory and cuda.prefetch_factor == 2
    assert not loader_settings(TrainConfig(pin_memory=False), torch.device("cuda")).pin_memory
    previous = torch.get_num_threads()
    try:
        assert training_threads(TrainConfig(), torch.device("cpu")) == 1
        assert training_threads(TrainConfig(threads=2), torch.device("cpu")) == 2
    finally:
        torch.set_num_threads(previous)


def test_collate_text_pads_levels_from_the_level_list(root, caption_parser):
    data = load(root, caption_parser)
    captions = [data.encoded[r] for r in range(6)]
    text = collate_text(captions)
    for level, spans in text.spans.items():
        mask = text.span_masks[level]
        for row, caption in enumerate(captions):
            count = len(caption.spans[level])
            assert mask[row].sum() == count
            assert np.array_equal(spans[row, :count].reshape(caption.spans[level].shape),
                                  caption.spans[level])  # fmt: skip
            padding = spans[row, count:].reshape(-1, 2)
            assert (padding == torch.tensor([0, 1])).all()
