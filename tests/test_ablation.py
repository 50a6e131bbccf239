"""Ablations with several seeds: folders, mean +/- sd, binding negatives in the loss."""

from __future__ import annotations

import pytest
from tiny_world import make_tiny_dataset, tiny_config_yaml

from mcsan.apps.ablation import VariantResult, format_summary, run_ablation, summarize, table_keys
from mcsan.data.captions.parse import parse_with_cache
from mcsan.data.native import read_captions


def _run(rsum: float, twins: float | None = None) -> VariantResult:
    run = VariantResult("x", None, (), 1, 0.0, 0.0)  # type: ignore[arg-type]
    run.metrics["test"] = {"metrics": {"fused": {"rsum": rsum, "t2v_r1": rsum / 10}}}
    if twins is not None:
        run.twins = {"relation/swapped": {"accuracy": twins, "focused_accuracy": twins}}
    return run


def test_summary_is_mean_and_sample_sd_over_seeds() -> None:
    summary = summarize({"a": [_run(10.0, 60.0), _run(14.0, 80.0)], "b": [_run(5.0)]}, "test")
    assert summary["a"]["fused/rsum"] == {"mean": 12.0, "sd": pytest.approx(2.8284271), "n": 2}
    assert summary["a"]["twins/relation/swapped/focused_accuracy"]["mean"] == 70.0
    assert summary["b"]["fused/rsum"]["sd"] == 0.0
    keys = table_keys(summary)
    assert keys == ["fused/rsum", "fused/t2v_r1", "twins/relation/swapped/focused_accuracy"]
    table = format_summary(summary, keys)
    assert "12.0 +/- 2.8" in table and table.splitlines()[-1].rstrip().endswith("-")
    assert "5.0 +/- 0.0" not in table and " 5.0 " in table  # one seed: no spread shown
    narrow = format_summary(summary, keys, width=40)  # blocks of columns that fit
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert narrow.count("variant") == 2
    from mcsan.apps.ablation import csv_summary, markdown_summary

    markdown = markdown_summary(summary, keys, "test")
    assert "| a | 12.0 +/- 2.8 |" in markdown and "| b | 5.0 |" in markdown
    assert "Seeds per variant: 1, 2" in markdown
    rows = csv_summary(summary, keys).splitlines()
    assert rows[0].startswith("variant,fused/rsum/mean,fused/rsum/sd,fused/rsum/n")
    assert rows[1].startswith("a,12.0,2.8284,2") and rows[2].startswith("b,5.0,0.0,1")


def test_on_a_world_the_oracle_and_shares_of_it_are_numbers_of_the_run() -> None:
    runs = []
    for fused_r10 in (40.0, 60.0):
        run = _run(300.0)
        recalls = {"t2v_r1": 10.0, "t2v_r5": 20.0, "t2v_r10": fused_r10}
        run.metrics["test"] = {
            "metrics": {"fused": {"rsum": 300.0, **recalls},
                        "reranked": {"rsum": 400.0, **recalls, "t2v_r10": 70.0,
                                     "first_stage_recall": 90.0, "shortlist": 100.0}},
            "oracle": {"t2v_r1": 50.0, "t2v_r5": 70.0, "t2v_r10": 80.0}}  # fmt: skip
        runs.append(run)
    summary = summarize({"mcsan": runs}, "test")["mcsan"]
    assert summary["oracle/t2v_r10"]["mean"] == 80.0
    assert summary["fused/t2v_r10_of_oracle"]["mean"] == pytest.approx(62.5)  # (50 + 75) / 2
    assert summary["reranked/t2v_r10_of_oracle"]["mean"] == pytest.approx(87.5)
    assert summary["reranked/first_stage_recall"]["mean"] == 90.0
    keys = table_keys({"mcsan": summary})
    assert {"oracle/t2v_r10", "fused/t2v_r10_of_oracle", "reranked/t2v_r10_of_oracle",
            "reranked/first_stage_recall"} <= set(keys)  # fmt: skip


def test_two_seeds_train_in_their_own_folders_with_negatives(tmp_path, caption_parser) -> None:
    root = make_tiny_dataset(tmp_path / "data", seed=4, captions_per_video=3)
    captions = [r.caption for r in read_captions(root)]
    parse_with_cache(captions, root / "cache" / "parsed_captions.jsonl", caption_parser)
    extra = "loss:\n  negative_roles: true\n  negative_attributes: true\n"
    config = tiny_config_yaml(root, tmp_path / "tiny.yaml", epochs=1, extra=extra)
    results = run_ablation(config, tmp_path / "out", ["mcsan", "no-negatives"], seeds=2)
    assert [r.seed for r in results["mcsan"]] == [0, 1]
    assert (tmp_path / "out" / "mcsan" / "seed1" / "best.pt").is_file()
    with_neg = results["mcsan"][0].history[0]["loss"]
    without = results["no-negatives"][0].history[0]["loss"]
    assert with_neg["negatives"] > 0 and without["negatives"] == 0
    summary = summarize(results, "test")
    assert summary["mcsan"]["fused/rsum"]["n"] == 2


def test_a_run_with_another_config_is_refused_or_trained_anew(tmp_path, caption_parser) -> None:
    from mcsan.apps.ablation import train_variant
    from mcsan.core.errors import CheckpointError

    root = make_tiny_dataset(tmp_path / "data", seed=5, captions_per_video=2)
    captions = [r.caption for r in read_captions(root)]
    parse_with_cache(captions, root / "cache" / "parsed_captions.jsonl", caption_parser)
    config = tiny_config_yaml(root, tmp_path / "tiny.yaml", epochs=1)
    train_variant("global-only", config, tmp_path / "out")
    changed = ["model.dropout=0.3"]
    with pytest.raises(CheckpointError, match="model.dropout"):
        train_variant("global-only", config, tmp_path / "out", changed)
    again = train_variant("global-only", config, tmp_path / "out", changed, restart_changed=True)
    assert again.best_epoch == 1
    from mcsan.inference.checkpoint import load_checkpoint

    saved = load_checkpoint(tmp_path / "out" / "global-only" / "last.pt")["config"]
    assert saved["model"]["dropout"] == 0.3
