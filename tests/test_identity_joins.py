"""Identity at the joins: a feature file swapped for another of the same spec and ids is
refused by training, resume and evaluation; evaluation refuses other frames or size; a
store read on demand that changes under the run is an error, never zeros."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.config.run import DataConfig, load_config
from mcsan.core.errors import CheckpointError, FeatureError
from mcsan.data.loading.dataset import RetrievalData
from mcsan.data.native import feature_path, read_card, update_card
from mcsan.data.video.store import FeatureSpec, FeatureStore

SET = "tiny"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("joins")
    make_tiny_dataset(base / "ds", seed=1)
    make_tiny_dataset(base / "other", seed=2)  # same ids and spec, other features
    return base


def _copy(base, name, into):
    shutil.copytree(base / name, into)
    return into


def _swap_in(root, other) -> None:
    shutil.copy(feature_path(other, SET), feature_path(root, SET))


def _record(root) -> None:
    """What `mcsan extract` into the dataset does: record the file's identity in the card."""
    with FeatureStore.open(feature_path(root, SET)) as store:
        identity = store.identity
    update_card(root, feature_sets={SET: {**read_card(root)["feature_sets"][SET],
                                          "identity": identity}})  # fmt: skip


def _load(root, parser, **extra):
    cfg = DataConfig(root=str(root), word_vectors="none", **extra)
    return RetrievalData.load(cfg, ("train", "val"), parser=parser)


def test_a_swapped_feature_file_is_refused_by_name(base, tmp_path, caption_parser):
    root = _copy(base, "ds", tmp_path / "ds")
    assert _load(root, caption_parser).feature_identity is not None
    _swap_in(root, base / "other")
    with pytest.raises(FeatureError, match=r"tiny\.h5: not the features the dataset card"):
        _load(root, caption_parser)
    _record(root)  # re-extracted on purpose: recorded, loads
    assert _load(root, caption_parser).feature_identity is not None


def test_resume_refuses_other_features_and_evaluate_other_frames(base, tmp_path,
                                                                  caption_parser):  # fmt: skip
    from mcsan.inference.retriever import evaluate_checkpoint
    from mcsan.train.trainer import Trainer

    root = _copy(base, "ds", tmp_path / "ds")
    cfg = load_config(tiny_config_yaml(root, tmp_path / "c.yaml", epochs=1))
    Trainer(cfg, tmp_path / "run", parser=caption_parser).fit()
    _swap_in(root, base / "other")
    _record(root)
    with pytest.raises(CheckpointError, match="--resume: .*not the features the run's checkpoint"):
        Trainer(cfg, tmp_path / "run", resume=True, parser=caption_parser)
    wider = _copy(base, "ds", tmp_path / "wider")
    path = feature_path(wider, SET)
    with FeatureStore.open(path) as old:
        spec, entries = old.spec, old.read_all()
    bigger = FeatureSpec(spec.backbone, spec.size + 64, spec.frames, spec.streams)
    path.unlink()
    with FeatureStore.create(path, bigger) as store:
        for video_id, streams in entries.items():
            store.write(video_id, streams)
    _record(wider)
    with pytest.raises(FeatureError, match=r"size \d+ \(trained on \d+\)"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", "test", dataset=wider)


def test_an_on_demand_store_changed_under_the_run_is_an_error(base, tmp_path, caption_parser):
    root = _copy(base, "ds", tmp_path / "ds")
    path = feature_path(root, SET)
    data = _load(root, caption_parser, feature_memory="on_demand", feature_cache_gb=0.0)
    features = data.features
    first = features[0]
    twin = tmp_path / "same.h5"  # the same bytes, a new file renamed into place: reopened
    shutil.copy(path, twin)
    os.replace(twin, path)
    np.testing.assert_array_equal(features[0]["frame"], first["frame"])
    shutil.copy(feature_path(base / "other", SET), twin)  # other features, same name
    os.replace(twin, path)
    with pytest.raises(FeatureError, match="changed while it was in use"):
        features[1]
    shutil.copy(feature_path(base / "ds", SET), path)
    data = _load(root, caption_parser, feature_memory="on_demand", feature_cache_gb=0.0)
    with open(path, "r+b") as handle:  # truncated in place mid-run
        handle.truncate(os.path.getsize(path) // 2)
    with pytest.raises(FeatureError, match=r"was changed while it was read on demand"):
        data.features[2]
