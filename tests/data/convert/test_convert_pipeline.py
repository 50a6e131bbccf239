"""The dataset registry, the shared conversion pipeline, feature import, convert/info CLI."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcsan.cli import main
from mcsan.core.errors import DataError, FeatureError
from mcsan.data.convert.convert import (
    REPORT_NAME,
    ConvertOptions,
    available_formats,
    clean_captions,
    convert_dataset,
    describe_dataset,
    get_format,
)
from mcsan.data.convert.sources import (
    BigFileSource,
    MeanPooledSource,
    detect_feature_format,
    read_id_list,
    split_frame_id,
)
from mcsan.data.native import CaptionRecord, feature_path, read_captions, read_card
from mcsan.data.video.store import FeatureStore

RNG = np.random.default_rng(0)


def f16(*shape: int) -> np.ndarray:
    """Random float32 values that float16 stores exactly (so round trips compare equal)."""
    return RNG.standard_normal(shape).astype(np.float16).astype(np.float32)


def write_msrvtt_json(path: Path, videos: dict[str, str], captions: dict[str, list[str]]) -> Path:
    """An MSR-VTT info file: {videos: [{video_id, split}], sentences: [{video_id, caption}]}."""
    data = {
        "info": {"year": 2016},
        "videos": [{"id": i, "video_id": v, "split": s} for i, (v, s) in enumerate(videos.items())],
        "sentences": [
            {"sen_id": n, "video_id": v, "caption": c}
            for n, (v, c) in enumerate((v, c) for v, cs in captions.items() for c in cs)
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_npy_dir(folder: Path, features: dict[str, np.ndarray]) -> Path:
    """One <video_id>.npy per video."""
    folder.mkdir(parents=True, exist_ok=True)
    for video_id, array in features.items():
        np.save(folder / f"{video_id}.npy", array)
    return folder


def read_features(root: Path, set_name: str) -> dict[str, np.ndarray]:
    """Every video's 'frame' stream of a converted dataset."""
    with FeatureStore.open(feature_path(root, set_name)) as store:
        return {v: store.read(v)["frame"] for v in store.ids()}


@pytest.fixture()
def small_msrvtt(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """Four videos (train, train, validate, test) with two captions each, features for all."""
    videos = {"video0": "train", "video1": "train", "video2": "validate", "video3": "test"}
    captions = {v: [f"a person does thing {i} in clip {v}" for i in range(2)] for v in videos}
    ann = write_msrvtt_json(tmp_path / "MSRVTT_data.json", videos, captions)
    feats = {v: f16(3 + i, 8) for i, v in enumerate(videos)}
    return ann, write_npy_dir(tmp_path / "feats", feats), feats


def test_registry_lists_every_format() -> None:
    assert {"msrvtt", "vatex", "hgr", "bigfile"} <= set(available_formats())
    assert get_format("vatex").name == "vatex"
    with pytest.raises(DataError, match="unknown dataset format"):
        get_format("msvd-typo")


def test_round_trip_npy_dir_records_spec(tmp_path: Path, small_msrvtt) -> None:
    ann, feats_dir, feats = small_msrvtt
    out = tmp_path / "out"
    options = ConvertOptions(out=out, features=[feats_dir], backbone="clip-vit-b32")
    summary = convert_dataset("msrvtt", [ann], options)
    assert summary.captions_written == 8 and summary.features_imported == 4
    records = read_captions(out)
    assert {r.split for r in records} == {"train", "val", "test"}
    stored = read_features(out, "clip-vit-b32")
    assert stored.keys() == feats.keys()
    for video_id, array in feats.items():
        np.testing.assert_array_equal(stored[video_id], array)
    card = read_card(out)
    entry = card["feature_sets"]["clip-vit-b32"]
    assert entry["backbone"] == "clip-vit-b32" and entry["frames"] == 0  # T varies: 3..6
    assert entry["streams"] == {"frame": [8]}
    with FeatureStore.open(feature_path(out, "clip-vit-b32")) as store:
        assert store.spec.streams == {"frame": (8,)}


def test_bad_cases_are_named_and_counted(tmp_path: Path) -> None:
    videos = {f"video{i}": "train" for i in range(7)}
    captions = {v: ["a dog runs", "a cat sits"] for v in videos}
    captions["video0"] += ["A dog  runs", "   "]  # duplicate (case/space) and empty
    captions["video9"] = ["orphan caption of an unlisted video"]
    ann = write_msrvtt_json(tmp_path / "MSRVTT_data.json", videos, captions)
    feats = {v: f16(2, 4) for v in videos if v != "video1"}  # video1: no features
    feats["video2"][0, 0] = np.nan
    feats["video3"] = f16(2, 5)  # wrong dimension
    feats["video4"] = np.full((2, 4), 1e6, np.float32)  # beyond float16
    feats["video5"] = np.zeros((0, 4), np.float32)  # no frames
    feats["extra"] = f16(2, 4)  # features with no captions
    feat_dir = write_npy_dir(tmp_path / "feats", feats)
    out = tmp_path / "out"
    summary = convert_dataset("msrvtt", [ann], ConvertOptions(out=out, features=[feat_dir]))
    p = summary.problems
    assert p["duplicate_captions"] == ["video0"]
    assert p["empty_captions"] == ["video0"]
    assert p["videos_without_features"] == ["video1"]
    assert p["nonfinite_features"] == ["video2"]
    assert p["wrong_dimensions"] == ["video3"]
    assert p["float16_overflow_features"] == ["video4"]
    assert p["empty_features"] == ["video5"]
    assert p["features_without_captions"] == ["extra"]
    assert p["captions_of_unlisted_videos"] == ["video9"]
    assert summary.captions_read - sum(summary.dropped_captions.values()) == (
        summary.captions_written
    )
    assert {r.video_id for r in read_captions(out)} == {"video0", "video6"}
    assert summary.captions_written == 3 + 2  # duplicates kept without --dedup
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["problems"]["wrong_dimensions"] == ["video3"]
    assert report["dropped_captions"]["videos_without_features"] == 2


def test_dedup_flag_drops_and_counts(tmp_path: Path) -> None:
    ann = write_msrvtt_json(
        tmp_path / "a.json", {"v1": "train"}, {"v1": ["a b", "A  b", "a b", "c"]}
    )
    summary = convert_dataset("msrvtt", [ann], ConvertOptions(out=tmp_path / "o", dedup=True))
    assert summary.dropped_captions["duplicate_captions"] == 2
    assert [r.caption for r in read_captions(tmp_path / "o")] == ["a b", "c"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["v1", "v2"]), st.sampled_from(["a b", "A b", " ", "c", ""])),
        max_size=12,
    ),
    st.booleans(),
)
def test_clean_captions_accounts_for_every_caption(pairs, dedup: bool) -> None:
    records = [CaptionRecord(v, c, "train") for v, c in pairs]
    kept, problems = clean_captions(records, dedup)
    dropped = len(problems["empty_captions"]) + dedup * len(problems["duplicate_captions"])
    assert len(kept) + dropped == len(records)
    assert all(r.caption.strip() for r in kept)
    if dedup:
        keys = [(r.video_id, r.caption.lower()) for r in kept]
        assert len(keys) == len(set(keys))


def test_existing_dataset_needs_overwrite(tmp_path: Path, small_msrvtt) -> None:
    ann, feats_dir, _ = small_msrvtt
    options = ConvertOptions(out=tmp_path / "out", features=[feats_dir])
    convert_dataset("msrvtt", [ann], options)
    with pytest.raises(DataError, match="--overwrite"):
        convert_dataset("msrvtt", [ann], options)
    options.overwrite = True
    assert convert_dataset("msrvtt", [ann], options).captions_written == 8


def test_no_matching_features_is_an_error(tmp_path: Path, small_msrvtt) -> None:
    ann, _, _ = small_msrvtt
    other = write_npy_dir(tmp_path / "other", {"x1": f16(2, 4)})
    with pytest.raises(FeatureError, match="ids match"):
        convert_dataset("msrvtt", [ann], ConvertOptions(out=tmp_path / "o", features=[other]))


def test_split_frame_id_and_bigfile_frame_order(tmp_path: Path) -> None:
    assert split_frame_id("video12_10") == ("video12", 10)
    assert split_frame_id("clip_a") == ("clip_a", None)
    assert split_frame_id("abc_000003_000013", {"abc_000003_000013"}) == (
        "abc_000003_000013", None
    )
    ids = ["video1_10", "video1_2", "video1_0", "video2_1", "video2_0"]
    rows = np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3)
    folder = tmp_path / "bf"
    folder.mkdir()
    rows.tofile(folder / "feature.bin")
    (folder / "shape.txt").write_text(f"{len(ids)} 3")
    (folder / "id.txt").write_text(" ".join(ids))
    assert detect_feature_format(folder) == "bigfile"
    with BigFileSource(folder) as source:
        assert source.ids() == ["video1", "video2"]
        np.testing.assert_array_equal(source.read("video1"), rows[[2, 1, 0]])  # 0, 2, 10
        np.testing.assert_array_equal(source.read("video2"), rows[[4, 3]])
    (folder / "shape.txt").write_text(f"{len(ids) + 1} 3")
    with pytest.raises(DataError, match="shape.txt"):
        BigFileSource(folder)


def test_mean_pooled_names_and_id_lists(tmp_path: Path) -> None:
    np.save(tmp_path / "names.npy", np.array(["a", "b", "a"]))
    np.save(tmp_path / "ft.npy", f16(3, 4))
    source = MeanPooledSource(tmp_path / "ft.npy", tmp_path / "names.npy")
    assert source.ids() == ["a", "b"] and source.duplicates == ["a"]
    assert source.shape("b") == (4,)
    (tmp_path / "ids.txt").write_text("x\ny z\n")
    (tmp_path / "ids.json").write_text('["p", "q"]')
    assert read_id_list(tmp_path / "ids.txt") == ["x", "y", "z"]
    assert read_id_list(tmp_path / "ids.json") == ["p", "q"]
    with pytest.raises(DataError, match="names"):
        MeanPooledSource(tmp_path / "ft.npy", tmp_path / "ids.json")


def test_hdf5_features_round_trip(tmp_path: Path, small_msrvtt) -> None:
    ann, _, feats = small_msrvtt
    with h5py.File(tmp_path / "resnet.h5", "w") as handle:
        for video_id, array in feats.items():
            handle[video_id] = array
    out = tmp_path / "out"
    options = ConvertOptions(out=out, features=[tmp_path / "resnet.h5"], backbone="resnet152")
    summary = convert_dataset("msrvtt", [ann], options)
    assert summary.features_imported == 4
    for video_id, array in read_features(out, "resnet152").items():
        np.testing.assert_array_equal(array, feats[video_id])


def test_cli_convert_and_info(tmp_path: Path, small_msrvtt, capsys) -> None:
    ann, feats_dir, _ = small_msrvtt
    (feats_dir / "stray.npy").write_bytes((feats_dir / "video0.npy").read_bytes())
    out = tmp_path / "ds"
    code = main([
        "--quiet", "convert", "msrvtt", "--annotations", str(ann), "--features", str(feats_dir),
        "--backbone", "i3d", "--out", str(out),
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert "features_without_captions: 1 (stray)" in printed
    assert "split size mismatch: train has 2 videos" in printed
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "feature set i3d: backbone i3d" in printed
    assert "train" in printed and "2/2.00/2" in printed
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["test"]["captions"] == 2
    assert info["feature_sets"]["i3d"]["captioned_videos_without_features"] == []
    assert main(["convert", "msrvtt", "--annotations", str(tmp_path / "nope.json"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_describe_reports_ids_missing_on_either_side(tmp_path: Path, small_msrvtt) -> None:
    ann, feats_dir, _ = small_msrvtt
    out = tmp_path / "out"
    convert_dataset("msrvtt", [ann], ConvertOptions(out=out, features=[feats_dir]))
    # Simulate later edits: a caption for a video with no features.
    with (out / "captions.jsonl").open("a") as handle:
        handle.write(json.dumps({"video_id": "late", "caption": "x", "split": "test"}) + "\n")
    info = describe_dataset(out)
    entry = info.feature_sets["unknown"]
    assert entry["captioned_videos_without_features"] == ["late"]
    assert info.splits["test"]["videos"] == 2


def test_expected_dimension_flag_and_malformed_json(tmp_path: Path, small_msrvtt) -> None:
    ann, feats_dir, _ = small_msrvtt
    np.save(feats_dir / "video1.npy", f16(3, 5))
    options = ConvertOptions(out=tmp_path / "o", features=[feats_dir], frame_shape=(5,))
    summary = convert_dataset("msrvtt", [ann], options)
    assert summary.features_imported == 1
    assert sorted(summary.problems["wrong_dimensions"]) == ["video0", "video2", "video3"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"videos": [{"video_id": "v"}], "sentences": []}))
    with pytest.raises(DataError, match="bad.json.*split"):
        convert_dataset("msrvtt", [bad], ConvertOptions(out=tmp_path / "p"))
