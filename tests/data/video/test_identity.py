"""Data identity: clip fingerprints, entry digests, store identities, re-extraction of
changed clips, and stores made before fingerprints."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest

from mcsan.core.errors import FeatureError
from mcsan.data.video.backbone import get_backbone
from mcsan.data.video.clip_writer import write_video
from mcsan.data.video.decode import list_videos
from mcsan.data.video.entries import MANIFEST_GROUP
from mcsan.data.video.extract import extract_features
from mcsan.data.video.identity import check_identity, clip_fingerprint, same_clip
from mcsan.data.video.store import (
    DIGEST_ATTR,
    IDENTITY_ATTR,
    SOURCE_ATTR,
    VIDEOS_GROUP,
    FeatureSpec,
    FeatureStore,
)

SPEC = FeatureSpec("t", 8, 2, {"frame": (3,)})
STREAMS = "head_grid2,rgbhist"
OPTIONS = {"frames": 2, "size": 32, "streams": STREAMS, "batch_frames": 4}


def _store(path, values: dict[str, float]) -> str | None:
    with FeatureStore.create(path, SPEC) as store:
        for video_id, value in values.items():
            store.write(video_id, {"frame": np.full((2, 3), value, np.float32)})
    with FeatureStore.open(path) as store:
        return store.identity


def _strip_identity(path) -> None:
    """Make a store look like one written before fingerprints."""
    with h5py.File(path, "r+") as handle:
        handle.attrs.pop(IDENTITY_ATTR, None)
        handle.pop(MANIFEST_GROUP, None)
        for entry in handle[VIDEOS_GROUP].values():
            for name in (DIGEST_ATTR, SOURCE_ATTR):
                entry.attrs.pop(name, None)


def test_identity_follows_content_not_names(tmp_path):
    a = _store(tmp_path / "a.h5", {"v1": 1.0, "v2": 2.0})
    same = _store(tmp_path / "same.h5", {"v2": 2.0, "v1": 1.0})
    swapped = _store(tmp_path / "b.h5", {"v1": 2.0, "v2": 1.0})  # same spec and ids
    assert a is not None and a == same and a != swapped
    with pytest.raises(FeatureError, match="not the features the index records"):
        check_identity(swapped, a, tmp_path / "b.h5", "the index", "rebuild it")
    with FeatureStore.open(tmp_path / "a.h5", "a") as store:  # appending changes it
        store.write("v3", {"frame": np.zeros((2, 3), np.float32)})
    with FeatureStore.open(tmp_path / "a.h5") as store:
        assert store.identity not in (None, a)


def test_a_store_made_before_fingerprints_loads_with_a_warning(tmp_path, caplog):
    recorded = _store(tmp_path / "old.h5", {"v1": 1.0})
    _strip_identity(tmp_path / "old.h5")
    with FeatureStore.open(tmp_path / "old.h5") as store:
        assert store.identity is None and store.source("v1") is None
        check_identity(store.identity, recorded, store.path, "the index", "rebuild it")
    assert "identity cannot be checked" in caplog.text


def test_clip_fingerprint_sees_content_not_touches(tmp_path):
    clip = tmp_path / "c.mp4"
    clip.write_bytes(os.urandom(3 << 20))
    stored = clip_fingerprint(clip)
    os.utime(clip, ns=(1, 1))  # touched (or copied without -p): same clip
    assert same_clip(stored, clip)
    data = bytearray(clip.read_bytes())
    data[-10] ^= 0xFF  # changed at its end, same size
    clip.write_bytes(bytes(data))
    assert not same_clip(stored, clip)
    clip.unlink()
    assert not same_clip(stored, clip)


@pytest.fixture(scope="module")
def encoder():
    return get_backbone("efficientnet_lite0", STREAMS, batch_size=4)


def _clips(folder, shades) -> None:
    folder.mkdir(exist_ok=True)
    for index, shade in enumerate(shades):
        frames = np.full((4, 32, 32, 3), shade, np.uint8)
        frames[:, : 4 + 6 * index] = 255 - shade
        write_video(folder / f"clip{index}.mp4", frames)


def test_changed_clips_are_extracted_again_and_said(tmp_path, encoder):
    clips = tmp_path / "clips"
    _clips(clips, [10, 120, 200])
    out = tmp_path / "f.h5"
    first = extract_features(list_videos(clips), out, encoder=encoder, **OPTIONS)
    assert (first.done, first.skipped, first.changed) == (3, 0, [])
    with FeatureStore.open(out) as store:
        before, identity = store.read_all(), store.identity
        assert store.source("clip1") == clip_fingerprint(clips / "clip1.mp4")
    other = tmp_path / "other"
    _clips(other, [10, 60, 200])  # clip1 replaced by another clip of the same name
    shutil.copy(other / "clip1.mp4", clips / "clip1.mp4")
    os.utime(clips / "clip2.mp4")  # touched only
    again = extract_features(list_videos(clips), out, encoder=encoder, **OPTIONS)
    assert (again.done, again.skipped, again.changed) == (1, 2, ["clip1"])
    assert "1 extracted (1 of them changed since)" in again.line()
    fresh = extract_features(list_videos(other), tmp_path / "fresh.h5", encoder=encoder,
                             **OPTIONS)  # fmt: skip
    assert fresh.done == 3
    with FeatureStore.open(out) as store, FeatureStore.open(tmp_path / "fresh.h5") as ref:
        assert store.identity not in (None, identity)
        np.testing.assert_array_equal(store.read("clip1")["rgbhist"], ref.read("clip1")["rgbhist"])
        np.testing.assert_array_equal(store.read("clip0")["rgbhist"], before["clip0"]["rgbhist"])
    _strip_identity(out)  # an old extraction: reused, and counted as unchecked
    old = extract_features(list_videos(clips), out, encoder=encoder, **OPTIONS)
    assert (old.done, old.skipped, old.unchecked) == (0, 3, 3)
    assert "without a clip fingerprint" in old.line()
