"""What a run reports when stopped or resumed: honest about checkpoints and throughput."""

from __future__ import annotations

import pytest
import torch
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.config.run import load_config
from mcsan.core.errors import TrainingError
from mcsan.train.trainer import Trainer, train


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    base = tmp_path_factory.mktemp("train_hostile")
    root = make_tiny_dataset(base / "data", {"train": 16, "val": 4, "test": 4}, seed=5)
    return tiny_config_yaml(root, base / "tiny.yaml", epochs=1), base


def test_a_nan_stop_before_any_epoch_claims_no_checkpoint(config, caption_parser):
    path, base = config
    trainer = Trainer(load_config(path), base / "nan", parser=caption_parser)
    with torch.no_grad():
        for param in trainer.model.video_encoder.parameters():
            param.fill_(float("nan"))
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    assert "no epoch finished, so no checkpoint was written" in str(info.value)
    assert "last good" not in str(info.value)


def test_resuming_a_finished_run_keeps_its_throughput(config, caption_parser):
    path, base = config
    first = train(load_config(path), base / "run", parser=caption_parser)
    assert first.pairs_per_second > 0
    again = train(load_config(path), base / "run", resume=True, parser=caption_parser)
    assert again.epochs == first.epochs
    assert again.pairs_per_second == pytest.approx(first.pairs_per_second)


def test_settings_that_cannot_run_on_several_processes_are_refused(tmp_path) -> None:
    from mcsan.core.errors import ConfigError
    from mcsan.train.setup import check_world_size

    root = make_tiny_dataset(tmp_path / "data", seed=1)
    cfg = load_config(tiny_config_yaml(root, tmp_path / "tiny.yaml"),
                      ["model.rerank=true", "loss.lambda_distill=1.0"])  # fmt: skip
    check_world_size(cfg, 1)  # one process: fine
    with pytest.raises(ConfigError, match="lambda_distill works on one process only"):
        check_world_size(cfg, 2)
    with pytest.raises(ConfigError, match="smaller than the 16 processes"):
        check_world_size(cfg, 16)
