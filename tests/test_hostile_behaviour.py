"""Hostile inputs that are not errors: counted and named, deduplicated, normalised, or
refused while another run writes (issue 28). The error cases are in test_cli_hostile."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mcsan.cli import main
from mcsan.core.io import read_json
from mcsan.data.video.backbone import get_backbone
from mcsan.data.video.clip_writer import write_video
from mcsan.data.video.decode import list_videos
from mcsan.data.video.extract import extract_features

SRC = str(Path(__file__).resolve().parents[1] / "src")
REAL_MSRVTT = Path(__file__).resolve().parents[2] / "shared" / "data" / "msrvtt"
HOLD = """
import sys, time
from mcsan.core.lock import output_lock
with output_lock(sys.argv[1], "synth"):
    print("holding", flush=True)
    time.sleep(120)
"""


def _info(videos: list[str], split: str, captions: dict[str, list[str]]) -> dict:
    return {"videos": [{"video_id": v, "split": split} for v in videos],
            "sentences": [{"video_id": v, "caption": c} for v in videos for c in captions[v]]}


def test_a_second_run_into_one_out_is_refused_and_a_kill_frees_it(tmp_path, capsys):
    out = tmp_path / "world"
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True, env=env)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        assert main(["synth", "--out", str(out), "--videos", "2", "--size", "32"]) == 2
        err = capsys.readouterr().err
        assert f"error: {out}: mcsan synth (pid {holder.pid}" in err and "writing into it" in err
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: its flock goes with it
        holder.wait()
    assert main(["synth", "--out", str(out), "--videos", "2", "--size", "32", "--frames",
                 "2"]) == 0  # fmt: skip
    assert not (tmp_path / ".world.lock").exists()


def test_overlapping_msrvtt_files_are_deduplicated_and_counted(tmp_path, capsys):
    captions = {f"video{i}": [f"a man sings song {i}", f"a dog runs {i}"] for i in range(4)}
    full = _info(list(captions), "train", captions)
    full["videos"][3]["split"] = "test"
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(full))
    (tmp_path / "test_videodatainfo.json").write_text(json.dumps(
        _info(["video3"], "test", captions)))  # fmt: skip
    out = tmp_path / "out"
    assert main(["convert", "msrvtt", "--annotations", str(tmp_path / "MSRVTT_data.json"),
                 str(tmp_path / "test_videodatainfo.json"), "--out", str(out)]) == 0
    report = read_json(out / "conversion_report.json")
    assert report["captions_written"] == 8 and report["captions_read"] == 10
    assert report["problems"]["videos_in_two_annotation_files"] == ["video3"]
    assert "videos_in_two_annotation_files: 1 (video3)" in capsys.readouterr().out


def test_caption_whitespace_is_normalised_and_counted(tmp_path):
    captions = {"v1": ["a  man\tsings\n", "a dog runs"]}
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(_info(["v1"], "train", captions)))
    assert main(["convert", "msrvtt", "--annotations", str(tmp_path / "MSRVTT_data.json"),
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    report = read_json(tmp_path / "out" / "conversion_report.json")
    assert report["problems"]["whitespace_normalised_captions"] == ["v1"]
    lines = (tmp_path / "out" / "captions.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["caption"] == "a man sings"


def test_convert_over_a_dataset_needs_overwrite_which_drops_derived_files(tmp_path, capsys):
    captions = {"v1": ["a man sings"]}
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(_info(["v1"], "train", captions)))
    out = tmp_path / "out"
    argv = ["convert", "msrvtt", "--annotations", str(tmp_path / "MSRVTT_data.json"),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    (out / "cache").mkdir()
    (out / "cache" / "parsed_captions.jsonl").write_text("parses of the old captions\n")
    assert main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "cache").exists()


def test_vatex_entries_without_english_captions_are_counted(tmp_path):
    entries = [{"videoID": "a", "enCap": ["a man sings"]}, {"videoID": "b"},
               {"videoID": "c", "enCap": []}]  # fmt: skip
    (tmp_path / "vatex_training_v1.0.json").write_text(json.dumps(entries))
    out = tmp_path / "out"
    assert main(["convert", "vatex", "--annotations", str(tmp_path / "vatex_training_v1.0.json"),
                 "--out", str(out)]) == 0  # fmt: skip
    problems = read_json(out / "conversion_report.json")["problems"]
    assert problems["videos_without_english_captions"] == ["b", "c"]


@pytest.mark.skipif(not (REAL_MSRVTT / "train_val_annotation.zip").is_file(),
                    reason="the real MSR-VTT annotations are not in ../shared/data/msrvtt")
def test_the_real_msrvtt_file_given_with_a_part_of_itself_is_not_doubled(tmp_path):
    with zipfile.ZipFile(REAL_MSRVTT / "train_val_annotation.zip") as archive:
        data = json.loads(archive.read("train_val_videodatainfo.json"))
    val = [v for v in data["videos"] if v["split"] == "validate"]
    ids = {v["video_id"] for v in val}
    part = {"videos": val, "sentences": [s for s in data["sentences"] if s["video_id"] in ids]}
    (tmp_path / "test_videodatainfo.json").write_text(json.dumps(part))
    out = tmp_path / "out"
    assert main(["convert", "msrvtt", "--annotations", str(REAL_MSRVTT / "train_val_annotation.zip"),
                 str(tmp_path / "test_videodatainfo.json"), "--out", str(out)]) == 0  # fmt: skip
    report = read_json(out / "conversion_report.json")
    assert report["captions_written"] == 140_200  # 20 a video, not 40 for the validation ones
    assert len(report["problems"]["videos_in_two_annotation_files"]) == 497
    assert report["dropped_captions"]["videos_in_two_annotation_files"] == 9_940
    assert len(report["problems"]["whitespace_normalised_captions"]) > 0


def test_clips_in_unlisted_containers_are_extracted_and_other_files_named(tmp_path, caplog):
    from PIL import Image

    folder = tmp_path / "clips"
    folder.mkdir()
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    frames[:, :, :12] = (200, 40, 40)
    write_video(tmp_path / "source.mp4", frames)
    for name in ("phone.3gp", "camcorder.MTS", "old.wmv", "web.flv"):  # content decides
        shutil.copy(tmp_path / "source.mp4", folder / name)
    images = [Image.fromarray(np.full((32, 32, 3), shade, np.uint8)) for shade in (0, 90, 180)]
    images[0].save(folder / "loop.gif", save_all=True, append_images=images[1:], duration=100)
    (folder / "notes.txt").write_text("where the clips come from")
    with caplog.at_level(logging.WARNING):
        videos = list_videos(folder)
    assert sorted(videos) == ["camcorder", "loop", "old", "phone", "web"]
    assert "1 file(s) are not clips by their extension and were left out: notes.txt" in caplog.text
    encoder = get_backbone("efficientnet_lite0", "rgbhist", batch_size=4)
    summary = extract_features(videos, tmp_path / "f.h5", encoder=encoder, frames=2, size=32,
                               batch_frames=4)  # fmt: skip
    assert (summary.done, summary.failed) == (5, 0), summary.failures


@pytest.mark.parametrize("edit", ["span", "bytes"])
def test_an_edited_parse_cache_is_named_with_the_fix(tmp_path, caption_parser, edit):
    from mcsan.core.errors import DataError
    from mcsan.data.captions.parse import parse_with_cache

    cache = tmp_path / "parsed_captions.jsonl"
    parse_with_cache(["a red ball rolls"], cache, caption_parser)
    header, record = cache.read_text().splitlines()
    if edit == "span":  # valid JSON, impossible content: an entity beyond the tokens
        data = json.loads(record)
        data["entities"] = [{"lemma": "ball", "start": 7, "end": 9}]
        cache.write_text(f"{header}\n{json.dumps(data)}\n")
    else:  # a byte that is not UTF-8
        cache.write_bytes(f"{header}\n".encode() + b'{"caption": "a red \xff"}\n')
    with pytest.raises(DataError, match=rf"{cache}.*delete {cache}"):
        parse_with_cache(["a red ball rolls"], cache, caption_parser)
