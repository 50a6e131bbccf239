"""Trainer end to end: train, kill -9 + resume equality, evaluate, Retriever, failures."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.cli import main as cli_main
from mcsan.config.run import load_config
from mcsan.core.errors import CheckpointError, ConfigError, TrainingError
from mcsan.data.captions.parse import parse_with_cache
from mcsan.data.native import read_captions
from mcsan.inference.retriever import Retriever, evaluate_checkpoint
from mcsan.train.trainer import Trainer

EPOCHS = 4
TIMING_KEYS = ("pairs_per_second",)


def mcsan(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mcsan", "--quiet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out


def comparable(metrics: dict) -> dict:
    """metrics.json without the wall-clock numbers and the run folder."""
    data = {k: v for k, v in metrics.items() if k not in ("out_dir", *TIMING_KEYS)}
    data["history"] = [
        {k: v for k, v in h.items() if k not in TIMING_KEYS} for h in data["history"]
    ]
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory, caption_parser):
    """One uninterrupted run and one killed with SIGKILL after epoch 1, then resumed."""
    base = tmp_path_factory.mktemp("train")
    root = make_tiny_dataset(base / "data", seed=2)
    config = tiny_config_yaml(root, base / "tiny.yaml", epochs=EPOCHS)
    # parse the captions once so the two runs do not race on the cache file
    captions = [r.caption for r in read_captions(root)]
    parse_with_cache(captions, root / "cache" / "parsed_captions.jsonl", caption_parser)
    full = mcsan("train", "--config", str(config), "--out", str(base / "full"))
    killed = mcsan("train", "--config", str(config), "--out", str(base / "resumed"))
    last = base / "resumed" / "last.pt"
    deadline = time.monotonic() + 240
    while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (base / "resumed" / "metrics.json").exists()
    killed_epoch = torch.load(last, weights_only=True)["epoch"]
    out = finish(mcsan("train", "--config", str(config), "--out", str(base / "resumed"),
                       "--resume"))  # fmt: skip
    full_out = finish(full)
    return {"base": base, "root": root, "config": config, "killed_epoch": killed_epoch,
            "resume_out": out, "full_out": full_out}  # fmt: skip


def test_run_folder_contents(runs):
    run = runs["base"] / "full"
    for name in ("best.pt", "last.pt", "config.yaml", "metrics.csv", "metrics.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == EPOCHS + 1 and rows[0].startswith("epoch,step,lr")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == EPOCHS and len(metrics["history"]) == EPOCHS
    assert set(metrics["best_metrics"]) == {"fused", "global", "entity", "action", "relation"}
    best = max(h["val"]["fused"]["rsum"] for h in metrics["history"])
    assert metrics["best_metrics"]["fused"]["rsum"] == best
    assert "best epoch" in runs["full_out"] and "rsum" in runs["full_out"]
    saved = load_config(run / "config.yaml")
    assert saved.train.epochs == EPOCHS and saved.data.root == str(runs["root"])


def test_kill_9_then_resume_reaches_identical_metrics(runs):
    assert 1 <= runs["killed_epoch"] < EPOCHS
    full = json.loads((runs["base"] / "full" / "metrics.json").read_text())
    resumed = json.loads((runs["base"] / "resumed" / "metrics.json").read_text())
    assert comparable(resumed) == comparable(full)
    csv_full = (runs["base"] / "full" / "metrics.csv").read_text().splitlines()
    csv_resumed = (runs["base"] / "resumed" / "metrics.csv").read_text().splitlines()
    assert len(csv_resumed) == len(csv_full)  # no duplicated epoch rows after the resume
    a = torch.load(runs["base"] / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(runs["base"] / "resumed" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_command_and_val_consistency(runs, tmp_path, capsys):
    run = runs["base"] / "full"
    out = tmp_path / "test_metrics.json"
    code = cli_main(["--quiet", "evaluate", "--checkpoint", str(run / "best.pt"),
                     "--split", "test", "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "fused" in printed and "t2v_r1" in printed and "relation" in printed
    report = json.loads(out.read_text())
    assert report["split"] == "test" and report["captions"] > report["videos"] > 0
    assert 0 <= report["metrics"]["fused"]["rsum"] <= 600
    # the checkpoint alone reproduces the validation numbers recorded during training
    val = evaluate_checkpoint(run / "best.pt", "val")
    best = json.loads((run / "metrics.json").read_text())["best_metrics"]
    assert set(val["metrics"]) == set(best)
    for level, metrics in best.items():
        assert val["metrics"][level] == pytest.approx(metrics)


def test_retriever_api(runs, caption_parser):
    retriever = Retriever.from_checkpoint(runs["base"] / "full" / "best.pt")
    retriever._parser = caption_parser
    assert retriever.levels == ("global", "entity", "action", "relation")
    assert retriever.feature_set == "tiny" and set(retriever.streams) == {"frame", "grid"}
    assert sum(retriever.level_weights.values()) == pytest.approx(1.0)
    assert len(retriever.checkpoint_sha256) == 64
    text = retriever.encode_captions(["a red ball is jumping over a cube", "the cube is spinning"])
    rng = np.random.default_rng(0)
    clips = [{"frame": rng.standard_normal((t, 16)), "grid": rng.standard_normal((t, 4, 8))}
             for t in (3, 5, 4)]  # fmt: skip
    video = retriever.encode_features(clips)
    weights = retriever.level_weights
    norms = {level: np.linalg.norm(text[level], axis=1) for level in retriever.levels}
    for level in retriever.levels:
        assert text[level].shape == (2, 16) and video[level].shape == (3, 16)
        assert np.allclose(np.linalg.norm(video[level], axis=1), 1.0, atol=1e-4)
    # Caption rows: a level the caption names nothing at is zero ("spinning" has no relation);
    # the others share the norm 1 / (sum of the present levels' weights), so that
    # sum_l w_l <t_l, v_l> is the fused score renormalised over the caption's levels.
    assert norms["relation"][1] == 0.0 and norms["relation"][0] > 0.0
    for row in range(2):
        present = [lvl for lvl in retriever.levels if norms[lvl][row] > 0]
        assert "global" in present
        expected = 1.0 / sum(weights[lvl] for lvl in present)
        assert np.allclose([norms[lvl][row] for lvl in present], expected, atol=1e-4)
    scores = retriever.score(text, video)
    fused = sum(w * scores[lvl] for lvl, w in retriever.level_weights.items())
    assert scores["fused"].shape == (2, 3) and np.allclose(scores["fused"], fused)
    single = retriever.encode_features(clips[1:2])
    assert np.allclose(single["global"], video["global"][1:2], atol=1e-5)
    with pytest.raises(Exception, match="grid"):
        retriever.encode_features([{"frame": clips[0]["frame"], "grid": np.zeros((3, 2, 8))}])
    assert not retriever.has_matcher
    with pytest.raises(CheckpointError, match="no binding matcher"):
        retriever.match_pairs(["a cube"], clips[:1], np.array([0]), np.array([0]))


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        Retriever.from_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="bad.pt"):
        Retriever.from_checkpoint(bad)


def test_existing_run_needs_resume_and_same_config(runs):
    cfg = load_config(runs["config"])
    with pytest.raises(CheckpointError, match="--resume"):
        Trainer(cfg, runs["base"] / "full")
    changed = load_config(runs["config"], ["train.lr=0.5"])
    with pytest.raises(CheckpointError, match="train.lr"):
        Trainer(changed, runs["base"] / "full", resume=True)


def test_non_finite_loss_stops_with_step_and_saves_nothing(runs, tmp_path, caplog):
    cfg = load_config(runs["config"])
    with caplog.at_level(logging.INFO, logger="mcsan.train"):
        trainer = Trainer(cfg, tmp_path / "nan")
    assert "training on cpu with 1 torch thread(s); batches built in the training process" in (
        caplog.text
    ) and "resident in memory as float16" in caplog.text
    with torch.no_grad():
        for param in trainer.model.video_encoder.parameters():
            param.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"epoch 1, step 1"):
        trainer.fit()
    assert not (tmp_path / "nan" / "last.pt").exists()
    assert not (tmp_path / "nan" / "best.pt").exists()


def _late_interaction_first_stage(checkpoint, capsys) -> None:
    """With late interaction the first stage ranks by fused + w x late and re-ranking draws
    its shortlist from it; a shortlist of everything re-ordered by fused + 0 x match is the
    fused ranking again."""
    late = evaluate_checkpoint(checkpoint, "test", late_weight=1.0, rerank_top_k=2)
    metrics = late["metrics"]
    assert late["rerank"]["late_weight"] == 1.0 and "first stage" in metrics
    assert set(metrics["first stage"]) == set(metrics["fused"])
    neutral = evaluate_checkpoint(checkpoint, "test", late_weight=1.0, rerank_fraction=1.0,
                                  rerank_weight=0.0)  # fmt: skip
    fused = neutral["metrics"]["fused"]
    assert {k: neutral["metrics"]["reranked"][k] for k in fused} == pytest.approx(fused)
    assert neutral["metrics"]["reranked"]["first_stage_recall"] == 100.0
    assert cli_main(["evaluate", "--checkpoint", str(checkpoint), "--late-weight", "1",
                     "--shortlists", "none"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "first stage: every clip by fused + 1 x late interaction (the matcher's entity and " \
        "action terms)" in printed
    assert re.search(r"^first stage +\d", printed, re.M)
    every = evaluate_checkpoint(checkpoint, "test", late_weight=1.0, rerank_top_k=2,
                                late_terms=("entity", "action", "relation"))  # fmt: skip
    assert every["rerank"]["late_terms"] == ["entity", "action", "relation"]
    with pytest.raises(ConfigError, match="late_terms"):
        evaluate_checkpoint(checkpoint, "test", late_weight=1.0, late_terms=("colour",))


def test_a_run_with_the_binding_matcher_reports_both_rankings(tmp_path, caption_parser,
                                                              capsys):  # fmt: skip
    root = make_tiny_dataset(tmp_path / "data", seed=4)
    config = tiny_config_yaml(root, tmp_path / "tiny.yaml", epochs=2)
    cfg = load_config(config, ["model.rerank=true", "model.rerank_dim=8",
                               "model.rerank_top_k=3", "train.rerank_lr=0.01"])  # fmt: skip
    trainer = Trainer(cfg, tmp_path / "run", parser=caption_parser)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [0.003, 0.01]  # the matcher has its own rate
    result = trainer.fit()
    assert result.best_epoch >= 1
    losses = trainer.history[-1]["loss"]
    assert {"match", "match/pairs"} <= set(losses) and losses["match"] > 0
    report = evaluate_checkpoint(tmp_path / "run" / "best.pt", "test")
    metrics = report["metrics"]
    assert set(metrics["reranked"]) == {*metrics["fused"], "first_stage_recall", "shortlist"}
    # the legacy key model.rerank_top_k lands in the rerank section
    assert report["rerank"] == {"top_k": 3, "fraction": None, "weight": 1.0, "late_weight": 0.0,
                                "late_terms": ["entity", "action"], "shortlist": 3}  # fmt: skip
    assert "first stage" not in metrics  # no late interaction unless asked
    # weight 0: the shortlist keeps its fused order, so re-ranking changes nothing
    same = evaluate_checkpoint(tmp_path / "run" / "best.pt", "test", rerank_top_k=5,
                               rerank_weight=0.0)  # fmt: skip
    assert same["rerank"] == {"top_k": 5, "fraction": None, "weight": 0.0, "late_weight": 0.0,
                              "late_terms": ["entity", "action"], "shortlist": 5}  # fmt: skip
    fused = same["metrics"]["fused"]
    assert {k: same["metrics"]["reranked"][k] for k in fused} == pytest.approx(fused)
    with pytest.raises(ConfigError, match="rerank.weight"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", "test", rerank_weight=-1.0)
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                     "--rerank-top-k", "4", "--rerank-weight", "0.5"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "reranked: each query's top 4 by the first stage (fused), re-ordered by fused + 0.5 x" \
        in printed
    # the default extra shortlists (1%, 5% of the collection), each with its first stage
    assert "reranked top 1%" in printed and "reranked top 5%" in printed
    assert re.search(r"^reranked top 5% .* in top 1$", printed, re.M)
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.pt"),
                     "--rerank-fraction", "0.5", "--shortlists", "none"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "reranked top 1%" not in printed and "top 4 by the first stage (fused)" in printed
    _late_interaction_first_stage(tmp_path / "run" / "best.pt", capsys)
    retriever = Retriever.from_checkpoint(tmp_path / "run" / "best.pt")
    retriever._parser = caption_parser
    assert retriever.has_matcher
    rng = np.random.default_rng(1)
    clips = [{"frame": rng.standard_normal((t, 16)), "grid": rng.standard_normal((t, 4, 8))}
             for t in (3, 5)]  # fmt: skip
    scores = retriever.match_pairs(["a red ball is jumping", "a cube"], clips,
                                   np.array([0, 0, 1]), np.array([0, 1, 1]))  # fmt: skip
    assert scores.shape == (3,) and np.all(np.abs(scores) <= 1.0)
