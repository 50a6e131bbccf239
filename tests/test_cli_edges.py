"""Small CLI edges: empty clip folders, twins in `info`, small evaluation sets, extras."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mcsan.cli import main
from mcsan.core.extras import MissingExtraError, missing_extra_message, require
from mcsan.data.native import read_captions, write_captions
from mcsan.evaluate.split import small_sample_warning
from tests.tiny_world import make_tiny_dataset


def test_extract_on_a_folder_without_clips_fails(tmp_path: Path, capsys) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "notes.txt").write_text("not a clip")
    code = main(["extract", "--videos", str(tmp_path / "clips"), "--out", str(tmp_path / "f.h5")])
    assert code != 0
    err = capsys.readouterr().err
    assert "no clips found" in err and str(tmp_path / "clips") in err
    assert not (tmp_path / "f.h5").exists()


def test_info_shows_twin_clips_as_twins(tmp_path: Path, capsys) -> None:
    root = make_tiny_dataset(tmp_path / "ds", {"train": 4, "val": 2, "test": 3})
    records = read_captions(root)
    twin = records[-1].video_id  # a test clip becomes a twin: features, no captions
    write_captions(root, [r for r in records if r.video_id != twin])
    (root / "twins.jsonl").write_text(json.dumps(
        {"original_id": records[0].video_id, "twin_id": twin, "level": "action", "change": {}}
    ) + "\n")  # fmt: skip
    assert main(["info", str(root), "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)["feature_sets"]["tiny"]
    assert entry["twin_clips"] == [twin] and entry["features_without_captions"] == []
    assert main(["info", str(root)]) == 0
    text = capsys.readouterr().out
    assert "features without captions: 0" in text and "twin clips" in text and twin in text


def test_small_sample_warning_is_one_line() -> None:
    line = small_sample_warning(9)
    assert "\n" not in line and "9 videos" in line and "11.1 points" in line


def test_a_missing_extra_names_the_extra_and_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if [report] were not installed
    with pytest.raises(MissingExtraError) as info:
        require("matplotlib.pyplot", "the report")
    assert "[report]" in str(info.value) and "pip install 'mcsan[report]'" in str(info.value)
    assert missing_extra_message("faiss") is not None and "[search]" in missing_extra_message("faiss")
    assert missing_extra_message("numpy") is None  # core dependencies are not extras


def test_the_cli_turns_a_missing_extra_into_a_named_error(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if [search] were not installed
    assert main(["serve", "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: uvicorn: not installed (needed for mcsan serve)")
    assert "pip install 'mcsan[search]'" in err


def test_demo_checks_its_extras_before_the_first_stage(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if [report] were not installed
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 2
    assert "pip install 'mcsan[report]'" in capsys.readouterr().err
    assert not (tmp_path / "demo" / "world").exists()


def test_quiet_after_the_subcommand_and_extract_help_defaults(capsys) -> None:
    from mcsan.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["extract", "--out", "x.h5", "--quiet"]).quiet is True
    assert parser.parse_args(["--quiet", "extract", "--out", "x.h5"]).quiet is True
    assert parser.parse_args(["extract", "--out", "x.h5"]).quiet is False
    with pytest.raises(SystemExit):
        parser.parse_args(["extract", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "frames per forward pass (default 64)" in text
    assert "decoding threads (default 2)" in text and "cpu (default), cuda or cuda:N" in text
