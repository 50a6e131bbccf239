"""The one shortlist policy: sizes as counts or shares, frozen, built from the config's
``rerank`` section (old ``model.rerank_*`` keys still read); first-stage recall; the oracle
rows and shares that world reports print."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mcsan.config.run import config_from_dict, load_config
from mcsan.core.errors import ConfigError
from mcsan.evaluate.ceiling import ORACLE_ROW, ceiling_lines, oracle_shares, with_oracle_row
from mcsan.evaluate.shortlist import ShortlistPolicy, first_stage_recall
from mcsan.evaluate.split import format_metrics_table


def test_sizes_as_counts_and_as_shares_of_the_collection():
    assert ShortlistPolicy(top_k=100).size(2200) == 100
    assert ShortlistPolicy(top_k=100).size(80) == 80
    assert ShortlistPolicy(fraction=0.01).size(2200) == 22
    assert ShortlistPolicy(fraction=0.05).size(220) == 11
    assert ShortlistPolicy(fraction=0.01).size(40) == 1  # at least one
    assert ShortlistPolicy(fraction=1.0).size(7) == 7
    assert ShortlistPolicy().size(0) == 0
    assert ShortlistPolicy(fraction=0.01).label(2200) == "top 22 (1% of 2,200)"
    assert ShortlistPolicy(top_k=100).label(2200) == "top 100 (4.5% of 2,200)"
    assert ShortlistPolicy(fraction=0.05).label() == "top 5%"


def test_the_policy_is_frozen_and_replaced_not_changed():
    policy = ShortlistPolicy(top_k=50, weight=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.top_k = 3  # type: ignore[misc]
    share = policy.replaced(fraction=0.01)
    assert (share.top_k, share.fraction, share.weight) == (50, 0.01, 2.0)
    count = share.replaced(top_k=7)  # a count replaces the share
    assert (count.top_k, count.fraction) == (7, None)
    assert policy == ShortlistPolicy(top_k=50, weight=2.0)
    assert policy.replaced() is policy
    for bad in ({"top_k": 0}, {"fraction": 0.0}, {"fraction": 1.5}, {"weight": -1.0},
                {"late_weight": -0.5}, {"late_terms": ("colour",)}, {"late_terms": ()}):
        with pytest.raises(ConfigError, match="rerank"):
            ShortlistPolicy(**bad)


def test_built_from_the_rerank_section_and_old_keys_still_read():
    world = ShortlistPolicy.from_config(load_config("world").rerank)
    assert world == ShortlistPolicy(top_k=100, fraction=None, weight=2.0, late_weight=4.0,
                                   late_terms=("entity", "action", "relation"))
    assert world.late and not ShortlistPolicy().late
    assert ShortlistPolicy.from_config(load_config(None).rerank) == ShortlistPolicy()
    old = config_from_dict({"model": {"rerank": True, "rerank_top_k": 7, "rerank_weight": 0.5}})
    assert (old.rerank.top_k, old.rerank.weight) == (7, 0.5)
    assert not hasattr(old.model, "rerank_top_k")
    both = config_from_dict({"model": {"rerank_top_k": 7}, "rerank": {"top_k": 9}})
    assert both.rerank.top_k == 9  # the new section wins
    override = load_config("world", ["model.rerank_weight=3", "rerank.fraction=0.01"])
    assert (override.rerank.weight, override.rerank.fraction) == (3.0, 0.01)
    with pytest.raises(ConfigError, match="rerank.fraction"):
        load_config("world", ["rerank.fraction=2"])


def test_first_stage_recall_counts_clips_in_the_fused_shortlist():
    fused = np.array([[0.9, 0.5, 0.1],   # own clip 0: rank 1
                      [0.9, 0.5, 0.1],   # own clip 2: rank 3
                      [0.5, 0.5, 0.1]])  # own clip 1: tied with the 1st  # fmt: skip
    caption_video = np.array([0, 2, 1])
    assert first_stage_recall(fused, caption_video, ShortlistPolicy(top_k=1)) == pytest.approx(
        200 / 3)  # the tie with the k-th is in the shortlist, as the re-ranker sees it
    assert first_stage_recall(fused, caption_video, ShortlistPolicy(top_k=3)) == 100.0
    assert first_stage_recall(fused, caption_video, ShortlistPolicy(fraction=0.5)) == (
        pytest.approx(200 / 3))  # 2 of 3 clips


def test_oracle_row_shares_and_first_stage_lines():
    oracle = {"t2v_r1": 40.0, "t2v_r5": 60.0, "t2v_r10": 80.0, "captions": 5, "clips": 9,
              "mean_consistent": 2.5, "median_consistent": 2.0}  # fmt: skip
    row = {"t2v_r1": 10.0, "t2v_r5": 30.0, "t2v_r10": 40.0}
    assert oracle_shares(row, oracle) == pytest.approx({"t2v_r1": 25.0, "t2v_r5": 50.0,
                                                        "t2v_r10": 50.0})  # fmt: skip
    metrics = {"fused": {**row, "rsum": 1.0}, "global": row,
               "reranked": {**row, "first_stage_recall": 77.0, "shortlist": 3.0}}  # fmt: skip
    table = with_oracle_row(metrics, oracle)
    assert list(table) == [ORACLE_ROW, "fused", "global", "reranked"]
    oracle_line = format_metrics_table({ORACLE_ROW: table[ORACLE_ROW]}).splitlines()[-1]
    assert oracle_line.split()[2:6] == ["40.0", "60.0", "80.0", "-"]
    lines = "\n".join(ceiling_lines(metrics, oracle))
    assert "mean 2.5, median 2 of 9 clips" in lines
    assert "77.0% in top 3" in lines and "global" not in lines
    assert ceiling_lines({"fused": row}, None) == []


def test_a_run_saved_before_the_rerank_section_resumes_without_differences():
    from mcsan.train.setup import resume_differences

    cfg = load_config("world")
    old = cfg.to_dict()
    section = old.pop("rerank")
    old["model"].update(rerank_top_k=section["top_k"], rerank_weight=section["weight"])
    assert resume_differences({"config": old}, cfg) == []
    changed = load_config("world", ["rerank.top_k=5", "rerank.fraction=0.01"])
    assert resume_differences({"config": old}, changed) == []  # evaluation-only keys
    assert resume_differences({"config": old}, load_config("world", ["seed=3"])) == ["seed"]
