"""Inputs that are not what they seem: symlinks named like clips, an incomplete shard set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcsan.core.errors import ConfigError, VideoError
from mcsan.data.video.decode import list_videos, read_frames
from mcsan.data.video.extract import merge_shards, missing_shards, shard_path
from mcsan.data.video.store import FeatureSpec, FeatureStore

SPEC = FeatureSpec("tiny", 32, 2, {"frame": (3,)})


def test_broken_links_named_like_clips_are_listed_then_fail_by_name(tmp_path: Path) -> None:
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (tmp_path / "notes.txt").write_text("not a clip")
    found = list_videos(tmp_path)
    assert sorted(found) == ["dangling", "loop"]  # never dropped unseen
    for path in found.values():
        with pytest.raises(VideoError, match=rf"{path}: broken symlink"):
            read_frames(path, 2, 32)


def write_shards(out: Path, count: int, present: list[int]) -> list[Path]:
    paths = []
    for index in present:
        path = shard_path(out, index, count)
        with FeatureStore.create(path, SPEC) as store:
            store.write(f"video{index}", {"frame": np.ones((2, 3), np.float32)})
        paths.append(path)
    return paths


def test_a_merge_with_a_missing_shard_names_it_and_fails(tmp_path: Path) -> None:
    out = tmp_path / "features.h5"
    paths = write_shards(out, 3, [0, 2])
    assert missing_shards(paths) == [str(tmp_path / "features.shard1of3.h5")]
    with pytest.raises(ConfigError, match=r"1 shard\(s\) missing: .*features.shard1of3.h5"):
        merge_shards(paths, out)
    assert not out.exists()
    assert merge_shards(paths, out, allow_missing=True) == 2
    complete = write_shards(tmp_path / "all.h5", 2, [0, 1])
    assert missing_shards(complete) == []
