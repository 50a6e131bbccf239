"""`mcsan demo --quick` end to end: world -> features -> two trained models -> REPORT.md."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quick_demo_reports_real_numbers_for_both_models(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # The installed console script, run outside the checkout: the packaged `world` config.
    mcsan = Path(sys.executable).parent / "mcsan"
    assert mcsan.is_file(), "install the package (pip install -e '.[dev]') for its mcsan command"
    cmd = [str(mcsan), "demo", "--quick", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Test split, fused score" in done.stdout
    assert "mcsan re-ranked" in done.stdout  # the binding matcher's second stage, labelled
    assert f"best checkpoint mcsan: {out / 'runs' / 'mcsan' / 'best.pt'}" in done.stdout
    # stderr is not a terminal here: plain log lines, stage k of n, one line per epoch
    for k, stage in enumerate(["world", "features", "train mcsan", "train global-only"], 1):
        assert f"stage {k}/6: {stage} (elapsed " in done.stderr
    assert re.search(r"^\d\d:\d\d:\d\d epoch +2  loss \d", done.stderr, re.M), done.stderr
    assert "stage 1/6: world (elapsed 0s, overall ETA after the first measured stage)" in (
        done.stderr)
    assert "overall ETA" in done.stderr and "at the measured rate" in done.stderr
    background = re.search(r"train global-only done: trained, evaluated and twin-tested in the "
                           r"background in (.+), beside train mcsan", done.stderr)  # fmt: skip
    if background is None:  # one worker or one core: it trained in this process
        assert re.search(r"stage 4/6: train global-only done in ", done.stderr)
    assert "stage 5/6: twins done (measured with each training" in done.stderr

    report = (out / "REPORT.md").read_text(encoding="utf-8")
    test_section = report.split("## Test split")[1].split("##")[0]
    test_section, ceiling = test_section.split("*Oracle ceiling*")
    oracle = re.search(r"^\| oracle ceiling \|(.*)\|$", test_section, re.M).group(1).split("|")
    assert all(0 < float(v) <= 100 for v in oracle[:3]) and oracle[3].strip() == "-"
    assert re.search(r"^\| mcsan re-ranked \| .* \| \d+\.\d% \(top \d+\) \|$", ceiling, re.M)
    assert "oracle ceiling" in done.stdout and "first stage at shortlist" in done.stdout
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r"^\| (mcsan|global-only|mcsan re-ranked) \|(.*)\|$", test_section, re.M)}  # fmt: skip
    assert set(rows) == {"mcsan", "global-only", "mcsan re-ranked"}
    for row in rows.values():
        values = [float(v) for v in row.split("|")]
        assert len(values) == 11 and all(math.isfinite(v) for v in values)
        recalls = values[0:3] + values[5:8]
        assert all(0.0 <= r <= 100.0 for r in recalls)
        assert values[-1] == pytest.approx(sum(recalls), abs=0.2)  # rsum
        assert values[3] >= 1.0 and values[8] >= 1.0  # median ranks
    assert "## Twin accuracy" in report and "## Compositional split" in report
    assert "mcsan re-ranked: mention the change" in report
    for plot in ("recall_at_k.png", "recall_per_level.png", "training.png", "twins.png",
                 "query1.png"):
        assert (out / "plots" / plot).stat().st_size > 1000

    # A second run reuses every stage: no clip is rendered or extracted again; --quiet may
    # follow the subcommand.
    again = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 extracted" in again.stdout and "stage 1/6" not in again.stderr

    # Twin accuracy of any world-trained checkpoint from `mcsan evaluate --twins`.
    checkpoint = out / "runs" / "mcsan" / "best.pt"
    twins = subprocess.run([str(mcsan), "evaluate", "--checkpoint", str(checkpoint), "--twins",
                            "--quiet"], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert twins.returncode == 0, twins.stderr[-3000:]
    table = twins.stdout.split("twin accuracy (%)")[1].splitlines()
    assert "fused: mention" in table[1] and "reranked: mention" in table[1]
    assert any(re.match(r"^entity/binding +\d+\.\d \[\d+-\d+\]", line) for line in table)
    assert table[-1].startswith("all ")
