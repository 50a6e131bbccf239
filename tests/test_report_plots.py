"""The demo report's figures on hand-made results: generic over models, losses, twin kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcsan.apps.demo.plots import loss_terms, plot_training, plot_twins, twin_kinds, wilson_interval


def test_wilson_interval_brackets_the_rate_and_narrows_with_n() -> None:
    low, high = wilson_interval(30, 40)
    assert low < 75.0 < high
    wide = high - low
    low, high = wilson_interval(300, 400)
    assert low < 75.0 < high and high - low < wide / 2
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-9)
    assert wilson_interval(0, 0) == (0.0, 100.0)


def test_loss_terms_and_twin_kinds_follow_the_results() -> None:
    histories = {"a": [{"epoch": 1, "loss": {"triplet": 1.0, "total": 1.0, "kl/entity": 0.1}}],
                 "b": [{"epoch": 1, "loss": {"fbce": 2.0, "total": 2.0}}]}  # fmt: skip
    assert loss_terms(histories) == ["total", "fbce", "triplet"]
    twins = {"m": {"all": {}, "relation": {}, "relation-swap": {}}, "g": {"entity": {}}}
    assert twin_kinds(twins) == ["entity", "relation", "relation-swap", "all"]


def test_figures_are_written_for_any_kinds(tmp_path: Path) -> None:
    entry = {"accuracy": 60.0, "pairs": 50, "twins": 10, "focused_accuracy": 70.0,
             "focused_pairs": 20}  # fmt: skip
    twins = {"mcsan": {k: entry for k in ("entity", "action", "relation", "count", "all")},
             "global-only": {"entity": {"accuracy": 50.0, "pairs": 50, "twins": 10}}}  # fmt: skip
    plot_twins(twins, tmp_path / "twins.png")
    history = [{"epoch": e, "loss": {"total": 3.0 / e, "kl": 0.01 / e},
                "val": {"fused": {"rsum": 100.0 + e}}} for e in (1, 2, 3)]  # fmt: skip
    plot_training({"mcsan": history}, tmp_path / "training.png")
    for name in ("twins.png", "training.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_chance_lines_kl_note_and_version() -> None:
    from pathlib import Path

    from mcsan.apps.ablation import VariantResult
    from mcsan.apps.demo.plots import chance_recalls
    from mcsan.apps.demo.report import _kl_note, version_line
    from mcsan.apps.demo.settings import DemoResult, DemoSettings

    chance = chance_recalls(200, 1000)
    assert chance["t2v"] == pytest.approx([0.5, 2.5, 5.0])
    assert chance["v2t"][0] == pytest.approx(0.5) and chance["v2t"][2] < 5.0
    result = DemoResult(Path("."), DemoSettings())
    run = VariantResult("mcsan", Path("."), (), 3, 0.0, 0.0)
    run.history = [{"epoch": e, "loss": {"kl": kl, "total": total}}
                   for e, kl, total in ((1, 0.002, 100.0), (2, 0.01, 50.0), (3, 0.03, 20.0))]
    result.variants["mcsan"] = run
    note = _kl_note(result)
    assert "rose 15.0x" in note and "fell from 100.0 to 20.0" in note
    run.history[-1]["loss"]["kl"] = 0.001  # fell: nothing to explain
    assert _kl_note(result) == ""
    assert version_line().startswith("mcsan 0.1.0 (")
