"""Two CPU processes under torchrun (gloo) match one process on the same global batch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.config.run import load_config
from mcsan.data.captions.parse import parse_with_cache
from mcsan.data.native import read_captions
from mcsan.train.trainer import train

REL_TOL = 1e-4
"""Per-epoch losses and validation metrics must agree to this relative tolerance."""


def test_two_process_ddp_matches_single_process(tmp_path, caption_parser):
    root = make_tiny_dataset(tmp_path / "data", {"train": 20, "val": 8}, seed=4)
    parse_with_cache([r.caption for r in read_captions(root)],
                     root / "cache" / "parsed_captions.jsonl", caption_parser)  # fmt: skip
    config = tiny_config_yaml(root, tmp_path / "tiny.yaml", epochs=2,
                              extra="loss:\n  margin: 0.2\n")  # fmt: skip
    overrides = ["model.dropout=0.0"]  # dropout draws differ per rank by design
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "mcsan", "--quiet", "train", "--config", str(config), "--out",
        str(tmp_path / "ddp"), *(x for o in overrides for x in ("--set", o)),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("best epoch") == 1  # only rank 0 reports

    single = train(load_config(config, overrides), tmp_path / "single")
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["world_size"] == 2 and single.world_size == 1
    assert ddp["steps"] == single.steps  # same global batches, not twice as many
    for mine, theirs in zip(ddp["history"], single.history, strict=True):
        assert mine["loss"]["total"] == pytest.approx(theirs["loss"]["total"], rel=REL_TOL)
        assert mine["loss"]["triplet"] == pytest.approx(theirs["loss"]["triplet"], rel=REL_TOL)
        for level, metrics in theirs["val"].items():
            assert mine["val"][level] == pytest.approx(metrics, rel=REL_TOL)
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.pt")) == ["best.pt", "last.pt"]


def test_two_process_ddp_trains_the_binding_matcher(tmp_path, caption_parser):
    """The matcher's loss is computed on each rank's own batch (its B x B pairs are local);
    DDP must still train it: every rank reaches the end, the loss has its parts."""
    root = make_tiny_dataset(tmp_path / "data", {"train": 20, "val": 8}, seed=5)
    parse_with_cache([r.caption for r in read_captions(root)],
                     root / "cache" / "parsed_captions.jsonl", caption_parser)  # fmt: skip
    config = tiny_config_yaml(root, tmp_path / "tiny.yaml", epochs=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "mcsan", "--quiet", "train", "--config", str(config), "--out",
        str(tmp_path / "ddp"), "--set", "model.rerank=true", "--set", "model.rerank_dim=8",
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    loss = metrics["history"][-1]["loss"]
    assert loss["match"] > 0 and math.isfinite(loss["total"])
