"""The extraction driver and `mcsan extract`: failures, kill -9 + resume, shards + merge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mcsan.cli import main
from mcsan.core.errors import ConfigError, FeatureError
from mcsan.data.video.backbone import get_backbone
from mcsan.data.video.clip_writer import write_video
from mcsan.data.video.decode import list_videos
from mcsan.data.video.extract import (
    extract_features,
    failures_path,
    merge_shards,
    parse_shard,
    parts_dir,
    select_shard,
    shard_from_env,
    shard_path,
)
from mcsan.data.video.store import FeatureStore

STREAMS = "head_grid2,block10,rgbhist"
OPTIONS = {"frames": 4, "size": 64, "streams": STREAMS, "batch_frames": 8}
CLIPS = 12


@pytest.fixture(scope="module")
def encoder():
    return get_backbone("efficientnet_lite0", STREAMS, batch_size=8)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    """A folder of small, different clips."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for index in range(CLIPS):
        frames = np.repeat(rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8), 6, axis=0)
        frames[:, :, : 8 + index * 4] = (index * 20, 255 - index * 20, 90)
        write_video(folder / f"clip{index:02d}.mp4", frames)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clip_dir, encoder) -> dict[str, dict[str, np.ndarray]]:
    """Features of an uninterrupted, unsharded run."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    summary = extract_features(list_videos(clip_dir), out, encoder=encoder, **OPTIONS)
    assert (summary.done, summary.failed, summary.skipped) == (CLIPS, 0, 0)
    assert not parts_dir(out).exists()
    with FeatureStore.open(out) as store:
        assert store.spec.frames == 4 and store.spec.size == 64
        return store.read_all()


def assert_same_features(path: Path, reference: dict[str, dict[str, np.ndarray]]) -> None:
    """Equal up to one float16 step (bit-identical on the machines measured: the driver
    feeds fixed-shape batches, see _FrameBatcher)."""
    with FeatureStore.open(path) as store:
        assert store.ids() == sorted(reference)
        for video_id, want in reference.items():
            got = store.read(video_id)
            for name in want:
                np.testing.assert_allclose(got[name], want[name], rtol=2e-3, atol=1e-4)


def test_bad_clips_are_recorded_and_the_rest_extracted(tmp_path, clip_dir, capsys):
    root = tmp_path / "dataset"
    videos = root / "videos"
    videos.mkdir(parents=True)
    for name in ("clip00.mp4", "clip01.mp4"):
        (videos / name).write_bytes((clip_dir / name).read_bytes())
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    (videos / "empty.mp4").write_bytes(b"")
    (root / "dataset.yaml").write_text("name: tiny\n")
    out = root / "features" / "lite.h5"
    argv = ["--quiet", "extract", "--videos", str(videos), "--out", str(out)]
    argv += ["--frames", "4", "--size", "64", "--streams", STREAMS]

    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "2 extracted" in captured.out and "2 failed" in captured.out
    failures = [json.loads(line) for line in failures_path(out).read_text().splitlines()]
    assert sorted(f["video_id"] for f in failures) == ["corrupt", "empty"]
    assert all(f["reason"] and f["path"].endswith(".mp4") for f in failures)
    with FeatureStore.open(out) as store:
        assert store.ids() == ["clip00", "clip01"]  # nothing zero-filled for the bad ones
    card = yaml.safe_load((root / "dataset.yaml").read_text())
    assert card["feature_sets"]["lite"]["path"] == "features/lite.h5"
    assert card["feature_sets"]["lite"]["streams"]["head_grid2"] == [4, 1280]

    assert main([*argv, "--allow-failures"]) == 0
    assert "2 already done" in capsys.readouterr().out


def test_kill_9_mid_run_then_resume_gives_the_same_features(tmp_path, clip_dir, encoder, reference):
    out = tmp_path / "killed.h5"
    command = [sys.executable, "-m", "mcsan", "--quiet", "extract", "--videos", str(clip_dir)]
    command += ["--out", str(out), "--frames", "4", "--size", "64", "--streams", STREAMS]
    command += ["--batch", "8", "--workers", "1", "--checkpoint-every", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while len(list(parts_dir(out).glob("part-*.h5"))) < 2:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the extraction made no progress"
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    finished_before_kill = sum(len(FeatureStore.open(p)) for p in parts_dir(out).glob("part-*"))
    assert 2 <= finished_before_kill < CLIPS

    summary = extract_features(list_videos(clip_dir), out, encoder=encoder, **OPTIONS)
    assert summary.skipped == finished_before_kill
    assert summary.done == CLIPS - finished_before_kill and summary.failed == 0
    assert not parts_dir(out).exists()
    assert_same_features(out, reference)


def test_shards_merged_equal_the_unsharded_run(tmp_path, clip_dir, encoder, reference, capsys):
    out = tmp_path / "feats.h5"
    videos = list_videos(clip_dir)
    for index in range(3):
        summary = extract_features(videos, out, encoder=encoder, shard=(index, 3), **OPTIONS)
        assert summary.out_path == shard_path(out, index, 3)
        assert summary.done == len(select_shard(list(videos), (index, 3)))
    assert not out.exists()
    assert main(["--quiet", "extract", "--out", str(out), "--merge"]) == 0
    assert f"{CLIPS} videos" in capsys.readouterr().out
    assert_same_features(out, reference)
    again = tmp_path / "again.h5"
    assert merge_shards([shard_path(out, i, 3) for i in range(3)], again) == CLIPS


def test_changed_options_on_an_existing_store_are_refused(tmp_path, clip_dir, encoder):
    out = tmp_path / "f.h5"
    one = {"clip00": clip_dir / "clip00.mp4"}
    extract_features(one, out, encoder=encoder, **OPTIONS)
    with pytest.raises(FeatureError, match=r"f\.h5.*'size'"):
        extract_features(one, out, encoder=encoder, **{**OPTIONS, "size": 96})


def test_shard_arguments():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert shard_from_env({"WORLD_SIZE": "1"}) is None
    assert shard_from_env({}) is None
    assert shard_path("out/f.h5", 0, 2) == Path("out/f.shard0of2.h5")


@given(st.sets(st.text(min_size=1, max_size=5), max_size=30), st.integers(1, 6))
def test_shards_partition_the_ids(ids, count):
    shards = [select_shard(list(ids), (index, count)) for index in range(count)]
    assert sorted(v for shard in shards for v in shard) == sorted(ids)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
