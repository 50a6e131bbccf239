"""FeatureStore: round trip, spec checks, validation, crash leftovers, merging."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcsan.core.errors import FeatureError
from mcsan.data.video.entries import escape_id, unescape_id
from mcsan.data.video.shards import merge_stores
from mcsan.data.video.store import (
    VIDEOS_GROUP,
    FeatureSpec,
    FeatureStore,
)

SPEC = FeatureSpec("efficientnet_lite0", 64, 3, {"head_grid2": (4, 8), "rgbhist": (5,)})
ODD_IDS = ["plain", "a/b/c", "100%", ".hidden", "..", "vidéo 7", "x%2Fy"]


def streams(seed: int, frames: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "head_grid2": rng.normal(size=(frames, 4, 8)).astype(np.float32),
        "rgbhist": rng.random((frames, 5)).astype(np.float32),
    }


def test_round_trip_with_awkward_ids(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStore.create(path, SPEC) as store:
        for seed, video_id in enumerate(ODD_IDS):
            store.write(video_id, streams(seed))
    with FeatureStore.open(path, expect=SPEC) as store:
        assert store.spec == SPEC
        assert store.ids() == sorted(ODD_IDS)
        assert len(store) == len(ODD_IDS)
        assert "a/b/c" in store and "a" not in store and 5 not in store
        for seed, video_id in enumerate(ODD_IDS):
            got = store.read(video_id)
            for name, want in streams(seed).items():
                assert got[name].dtype == np.float32 and got[name].shape == want.shape
                np.testing.assert_allclose(got[name], want, rtol=1e-3, atol=1e-3)
        everything = store.read_all()
        assert set(everything) == set(ODD_IDS)
        assert set(store.read_all(["plain"])) == {"plain"}
    with h5py.File(path) as handle:
        assert handle[VIDEOS_GROUP][escape_id("plain")]["rgbhist"].dtype == np.float16


@given(st.text(min_size=1, max_size=40))
def test_id_escaping_is_reversible_and_hdf5_safe(video_id):
    name = escape_id(video_id)
    assert unescape_id(name) == video_id
    assert "/" not in name and name not in (".", "..") and not name.startswith(".")


def test_spec_round_trips_and_variable_frames(tmp_path):
    spec = FeatureSpec("b", 112, 0, {"head": (1280,)})
    assert FeatureSpec.from_json(spec.to_json()) == spec
    with FeatureStore.create(tmp_path / "v.h5", spec) as store:
        store.write("short", {"head": np.zeros((2, 1280))})
        store.write("long", {"head": np.ones((9, 1280))})
    with FeatureStore.open(tmp_path / "v.h5") as store:
        assert store.read("long")["head"].shape == (9, 1280)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"size": 224}, "'size'"),
        ({"backbone": "other"}, "'backbone'"),
        ({"frames": 16}, "'frames'"),
        ({"streams": {"head_grid2": (9, 8), "rgbhist": (5,)}}, "streams['head_grid2']"),
        ({"streams": {"head_grid2": (4, 8)}}, "'streams'"),
    ],
)
def test_spec_mismatch_names_file_and_field(tmp_path, changes, field):
    path = tmp_path / "mine.h5"
    FeatureStore.create(path, SPEC).close()
    expected = FeatureSpec(**{**SPEC.__dict__, **changes})
    with pytest.raises(FeatureError) as error:
        FeatureStore.open(path, expect=expected)
    assert "mine.h5" in str(error.value) and field in str(error.value)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"head_grid2": np.zeros((3, 4, 8))}, "streams"),
        ({**streams(0), "extra": np.zeros((3, 1))}, "streams"),
        ({**streams(0), "rgbhist": np.zeros((3, 6))}, "shape"),
        ({**streams(0), "rgbhist": np.zeros((2, 5))}, "same T"),
        (streams(0, frames=4), "frames"),
        ({**streams(0), "rgbhist": np.full((3, 5), np.nan)}, "NaN"),
        ({**streams(0), "rgbhist": np.full((3, 5), np.inf)}, "NaN"),
        ({**streams(0), "rgbhist": np.full((3, 5), 1e6)}, "float16"),
    ],
)
def test_write_rejects_bad_streams(tmp_path, bad, message):
    with FeatureStore.create(tmp_path / "f.h5", SPEC) as store:
        with pytest.raises(FeatureError, match=message):
            store.write("clip7", bad)
        assert "clip7" not in store and len(store) == 0


def test_duplicate_write_needs_overwrite_and_read_only_refuses(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStore.create(path, SPEC) as store:
        store.write("v", streams(0))
        with pytest.raises(FeatureError, match="already stored"):
            store.write("v", streams(1))
        store.write("v", streams(1), overwrite=True)
        np.testing.assert_allclose(store.read("v")["rgbhist"], streams(1)["rgbhist"], atol=1e-3)
    with FeatureStore.open(path) as store, pytest.raises(FeatureError, match="read-only"):
        store.write("w", streams(2))


def test_missing_id_names_file_and_id(tmp_path):
    with FeatureStore.create(tmp_path / "store.h5", SPEC) as store:
        with pytest.raises(FeatureError, match=r"store\.h5.*'ghost'"):
            store.read("ghost")


def test_half_written_entry_is_invisible_and_replaced(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStore.create(path, SPEC) as store:
        store.write("done", streams(0))
    with h5py.File(path, "a") as handle:  # what a crash in the middle of a write leaves
        handle[VIDEOS_GROUP].create_group("half").create_dataset("rgbhist", data=np.zeros(3))
    with FeatureStore.open(path, "a") as store:
        assert store.ids() == ["done"] and "half" not in store
        store.write("half", streams(1))
        assert store.ids() == ["done", "half"]


def test_open_errors_name_the_file(tmp_path):
    with pytest.raises(FeatureError, match="absent.h5"):
        FeatureStore.open(tmp_path / "absent.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(FeatureError, match="junk.h5"):
        FeatureStore.open(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(FeatureError, match="foreign.h5.*not an mcsan feature store"):
        FeatureStore.open(tmp_path / "foreign.h5")
    FeatureStore.create(tmp_path / "exists.h5", SPEC).close()
    with pytest.raises(FeatureError, match="exists.h5"):
        FeatureStore.create(tmp_path / "exists.h5", SPEC)


def test_merge_keeps_first_copy_and_checks_specs(tmp_path):
    with FeatureStore.create(tmp_path / "a.h5", SPEC) as store:
        store.write("x", streams(0))
        store.write("shared", streams(1))
    with FeatureStore.create(tmp_path / "b.h5", SPEC) as store:
        store.write("y", streams(2))
        store.write("shared", streams(3))
    count = merge_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    assert count == 3
    with FeatureStore.open(tmp_path / "all.h5", expect=SPEC) as store:
        assert store.ids() == ["shared", "x", "y"]
        np.testing.assert_allclose(
            store.read("shared")["rgbhist"], streams(1)["rgbhist"], atol=1e-3
        )
    other = FeatureSpec("efficientnet_lite0", 112, 3, SPEC.streams)
    FeatureStore.create(tmp_path / "c.h5", other).close()
    with pytest.raises(FeatureError, match="c.h5.*'size'"):
        merge_stores([tmp_path / "a.h5", tmp_path / "c.h5"], tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()
