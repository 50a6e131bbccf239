"""Each dataset format, written by the test in its exact layout, converted and read back."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mcsan.core.errors import DataError
from mcsan.data.convert.convert import ConvertOptions, convert_dataset
from mcsan.data.convert.msrvtt import FULL_SPLIT_SIZES
from mcsan.data.native import feature_path, read_captions, read_card
from mcsan.data.video.store import FeatureStore

RNG = np.random.default_rng(1)


def f16(*shape: int) -> np.ndarray:
    """Random float32 values that float16 stores exactly."""
    return RNG.standard_normal(shape).astype(np.float16).astype(np.float32)


def by_video(root: Path) -> dict[str, tuple[str, list[str]]]:
    """{video_id: (split, [captions])} of a converted dataset."""
    result: dict[str, tuple[str, list[str]]] = {}
    for record in read_captions(root):
        result.setdefault(record.video_id, (record.split, []))[1].append(record.caption)
    return result


def stored(root: Path, set_name: str) -> dict[str, np.ndarray]:
    """The 'frame' stream of every stored video."""
    with FeatureStore.open(feature_path(root, set_name)) as store:
        return {v: store.read(v)["frame"] for v in store.ids()}


def msrvtt_info(path: Path, videos: dict[str, str], captions: dict[str, list[str]]) -> Path:
    """An official MSR-VTT *_videodatainfo.json / MSRVTT_data.json file."""
    sentences = [{"video_id": v, "caption": c} for v, cs in captions.items() for c in cs]
    videos_list = [{"video_id": v, "split": s, "url": "u"} for v, s in videos.items()]
    path.write_text(json.dumps({"videos": videos_list, "sentences": sentences}))
    return path


# ---------------------------------------------------------------- MSR-VTT


def test_msrvtt_official_pair_round_trip(tmp_path: Path) -> None:
    train_val = {"video0": "train", "video1": "train", "video2": "validate"}
    test = {"video3": "test", "video4": "test"}
    caps = {v: [f"caption {k} of {v}" for k in range(3)] for v in [*train_val, *test]}
    a = msrvtt_info(tmp_path / "train_val_videodatainfo.json", train_val,
                    {v: caps[v] for v in train_val})
    b = msrvtt_info(tmp_path / "test_videodatainfo.json", test, {v: caps[v] for v in test})
    feats = {v: f16(4, 6) for v in caps}
    with h5py.File(tmp_path / "resnet152.hdf5", "w") as handle:
        for v, array in feats.items():
            handle[v] = array
    out = tmp_path / "out"
    summary = convert_dataset("msrvtt",
        [a, b], ConvertOptions(out=out, features=[tmp_path / "resnet152.hdf5"],
                               backbone="resnet152"),
    )
    got = by_video(out)
    splits = {**train_val, **test}
    assert got == {v: ({"validate": "val"}.get(s, s), caps[v]) for v, s in splits.items()}
    assert read_card(out)["feature_sets"]["resnet152"]["frames"] == 4
    for v, array in stored(out, "resnet152").items():
        np.testing.assert_array_equal(array, feats[v])
    assert summary.split_size_mismatch["test"] == {"expected": 2990, "found": 2}


def test_msrvtt_full_split_sizes_pass_when_complete(tmp_path: Path) -> None:
    splits = ["train"] * FULL_SPLIT_SIZES["train"] + ["validate"] * FULL_SPLIT_SIZES["val"] + [
        "test"
    ] * FULL_SPLIT_SIZES["test"]
    videos = {f"video{i}": s for i, s in enumerate(splits)}
    ann = msrvtt_info(tmp_path / "MSRVTT_data.json", videos, {v: ["a man talks"] for v in videos})
    summary = convert_dataset("msrvtt", [ann], ConvertOptions(out=tmp_path / "o"))
    assert summary.split_size_mismatch == {}
    assert summary.splits["test"] == {"videos": 2990, "captions": 2990}
    assert any("captions only" in n for n in summary.notes)


def write_1k_a(tmp_path: Path, delimiter: str) -> tuple[list[Path], dict[str, list[str]]]:
    """MSRVTT_data.json, MSRVTT_train.9k.csv and MSRVTT_JSFUSION_test.csv (given delimiter)."""
    train = [f"video{i}" for i in range(10)]
    test = ["video20", "video21", "video22"]
    caps = {v: [f"a clip {v} shows {k}" for k in range(2)] for v in train + test}
    info = msrvtt_info(tmp_path / "MSRVTT_data.json", {v: "train" for v in caps}, caps)
    (tmp_path / "MSRVTT_train.9k.csv").write_text("video_id\n" + "\n".join(train) + "\n")
    d = delimiter
    lines = [f"key{d}vid_key{d}video_id{d}sentence"]
    lines += [f"ret{i}{d}msr{v[5:]}{d}{v}{d}the test sentence of {v}" for i, v in enumerate(test)]
    lines.append(f"ret9{d}msr20{d}video20{d}a second sentence for video20")
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text("\n".join(lines) + "\n")
    paths = [info, tmp_path / "MSRVTT_train.9k.csv", tmp_path / "MSRVTT_JSFUSION_test.csv"]
    return paths, caps


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_msrvtt_1k_a_protocol(tmp_path: Path, delimiter: str) -> None:
    paths, caps = write_1k_a(tmp_path, delimiter)
    out = tmp_path / "out"
    options = ConvertOptions(out=out, protocol="1k-a", val_size=3, seed=7)
    summary = convert_dataset("msrvtt", paths, options)
    got = by_video(out)
    test = {v: c for v, (s, c) in got.items() if s == "test"}
    assert test == {v: [f"the test sentence of {v}"] for v in ["video20", "video21", "video22"]}
    val = {v for v, (s, _) in got.items() if s == "val"}
    train = {v for v, (s, _) in got.items() if s == "train"}
    assert len(val) == 3 and len(train) == 7 and not (val | train) & set(test)
    assert all(got[v][1] == caps[v] for v in val | train)
    assert summary.problems["extra_test_captions"] == ["video20"]
    assert summary.split_size_mismatch == {"test": {"expected": 1000, "found": 3}}
    # The carve is deterministic in the seed.
    again = convert_dataset("msrvtt", paths, ConvertOptions(
        out=tmp_path / "again", protocol="1k-a", val_size=3, seed=7))
    assert again.splits == summary.splits
    assert {v for v, (s, _) in by_video(tmp_path / "again").items() if s == "val"} == val


def test_msrvtt_1k_a_needs_its_files(tmp_path: Path) -> None:
    paths, _ = write_1k_a(tmp_path, ",")
    with pytest.raises(DataError, match="1k-A needs"):
        convert_dataset("msrvtt", paths[1:], ConvertOptions(out=tmp_path / "o", protocol="1k-a"))
    for protocol in ("full", None):  # never guessed from the files: CSVs need --protocol 1k-a
        with pytest.raises(DataError, match="--protocol 1k-a"):
            convert_dataset("msrvtt", paths, ConvertOptions(out=tmp_path / "o", protocol=protocol))
    with pytest.raises(DataError, match="no protocol"):
        convert_dataset("vatex", paths[:1], ConvertOptions(out=tmp_path / "o", protocol="x"))


# ---------------------------------------------------------------- VATEX


def test_vatex_hgr_split_and_missing_features(tmp_path: Path) -> None:
    def entry(v: str) -> dict:
        return {"videoID": v, "enCap": [f"someone {v} one", f"someone {v} two"],
                "chCap": ["一个人在说话", "两个人"]}

    ids = ["-0Yyjn4tGsM_000003_000013", "abc_000010_000020", "xyz_000001_000011", "q_1_2"]
    (tmp_path / "vatex_training_v1.0.json").write_text(json.dumps([entry(v) for v in ids[:3]]))
    (tmp_path / "vatex_validation_v1.0.json").write_text(json.dumps([entry(ids[3])]))
    np.save(tmp_path / "trn_names.npy", np.array(ids[:2]))
    (tmp_path / "val_names.txt").write_text(ids[3] + "\n")
    (tmp_path / "tst_names.txt").write_text(ids[2] + "\n")
    feats = {v: f16(5, 4) for v in ids if v != "abc_000010_000020"}
    feat_dir = tmp_path / "i3d"
    feat_dir.mkdir()
    for v, array in feats.items():
        np.save(feat_dir / f"{v}.npy", array)
    out = tmp_path / "out"
    summary = convert_dataset("vatex",
        [tmp_path / "vatex_training_v1.0.json", tmp_path / "vatex_validation_v1.0.json"],
        ConvertOptions(out=out, features=[feat_dir], backbone="i3d", split_files=[
            str(tmp_path / "trn_names.npy"), str(tmp_path / "val_names.txt"),
            f"test={tmp_path / 'tst_names.txt'}"]),
    )
    assert summary.problems["videos_without_features"] == ["abc_000010_000020"]
    assert summary.dropped_captions["videos_without_features"] == 2
    got = by_video(out)
    assert got[ids[0]] == ("train", [f"someone {ids[0]} one", f"someone {ids[0]} two"])
    assert got[ids[2]][0] == "test" and got[ids[3]][0] == "val"
    assert not any("一" in c for _, cs in got.values() for c in cs)
    for v, array in stored(out, "i3d").items():
        np.testing.assert_array_equal(array, feats[v])
    # counted after the drop of the video without features
    assert summary.split_size_mismatch["train"] == {"expected": 25991, "found": 1}


def test_vatex_without_split_files_uses_file_names(tmp_path: Path) -> None:
    (tmp_path / "vatex_training_v1.0.json").write_text(
        json.dumps([{"videoID": "a", "enCap": ["x y"]}]))
    (tmp_path / "vatex_public_test_english_v1.1.json").write_text(
        json.dumps([{"videoID": "b", "enCap": ["z w"]}]))
    summary = convert_dataset("vatex",
        [tmp_path / "vatex_training_v1.0.json", tmp_path / "vatex_public_test_english_v1.1.json"],
        ConvertOptions(out=tmp_path / "o"))
    assert summary.splits == {"test": {"videos": 1, "captions": 1},
                              "train": {"videos": 1, "captions": 1}}


# ---------------------------------------------------------------- HGR


def write_hgr(tmp_path: Path) -> tuple[list[Path], dict[str, list[str]]]:
    """ref_captions.json and {trn,val,tst}_names.npy."""
    caps = {f"video{i}": [f"hgr caption {k} of video{i}" for k in range(2)] for i in range(5)}
    caps["video9"] = ["captioned but in no split"]
    (tmp_path / "ref_captions.json").write_text(json.dumps(caps))
    for name, ids in (("trn", ["video0", "video1"]), ("val", ["video2"]),
                      ("tst", ["video3", "video4", "video7"])):
        np.save(tmp_path / f"{name}_names.npy", np.array(ids))
    paths = [tmp_path / "ref_captions.json"]
    paths += [tmp_path / f"{n}_names.npy" for n in ("trn", "val", "tst")]
    return paths, caps


def test_hgr_hdf5_round_trip(tmp_path: Path) -> None:
    paths, caps = write_hgr(tmp_path)
    feats = {f"video{i}": f16(3, 6) for i in range(5)}
    with h5py.File(tmp_path / "resnet152.pth.hdf5", "w") as handle:
        for v, array in feats.items():
            handle[v] = array
    out = tmp_path / "out"
    summary = convert_dataset("hgr", paths, ConvertOptions(
        out=out, features=[tmp_path / "resnet152.pth.hdf5"], backbone="resnet152"))
    got = by_video(out)
    assert {v: c for v, (_, c) in got.items()} == {v: caps[v] for v in feats}
    assert [got[v][0] for v in sorted(got)] == ["train", "train", "val", "test", "test"]
    assert summary.problems["videos_without_split"] == ["video9"]
    assert summary.problems["split_ids_without_captions"] == ["video7"]
    for v, array in stored(out, "resnet152").items():
        np.testing.assert_array_equal(array, feats[v])


def test_hgr_mean_pooled_features_become_one_frame(tmp_path: Path) -> None:
    paths, _ = write_hgr(tmp_path)
    pooled = {"trn": f16(2, 6), "val": f16(1, 6), "tst": f16(3, 6)}
    for name, array in pooled.items():
        np.save(tmp_path / f"{name}_ft.npy", array)
    out = tmp_path / "out"
    summary = convert_dataset("hgr", paths, ConvertOptions(
        out=out, features=[tmp_path / f"{n}_ft.npy" for n in pooled], backbone="resnet152"))
    assert read_card(out)["feature_sets"]["resnet152"]["frames"] == 1
    got = stored(out, "resnet152")
    np.testing.assert_array_equal(got["video4"], pooled["tst"][1:2])
    np.testing.assert_array_equal(got["video0"], pooled["trn"][0:1])
    assert summary.problems["features_without_captions"] == ["video7"]


# ---------------------------------------------------------------- Dual Encoding BigFile


def write_bigfile(folder: Path, rows: dict[str, np.ndarray]) -> Path:
    """feature.bin + shape.txt + id.txt, rows in the given (possibly shuffled) order."""
    folder.mkdir(parents=True)
    matrix = np.stack(list(rows.values())).astype(np.float32)
    matrix.tofile(folder / "feature.bin")
    (folder / "shape.txt").write_text(f"{matrix.shape[0]} {matrix.shape[1]}")
    (folder / "id.txt").write_text(" ".join(rows))
    return folder


def test_bigfile_collections_round_trip(tmp_path: Path) -> None:
    (tmp_path / "msrvtt10ktrain.caption.txt").write_text(
        "video0#enc#0 a man is singing\nvideo0#enc#1 a man sings a song\n"
        "video1#0 kids play football\nvideo1#1\tchildren kick a ball\n"
        "not-a-caption-id some words\n\n")
    (tmp_path / "msrvtt10ktest.caption.txt").write_text("video7#enc#0 a car drives fast\n")
    frames = {f"video1_{k}": f16(3) for k in (10, 2, 0, 1)}
    frames.update({f"video0_{k}": f16(3) for k in range(2)})
    train_dir = write_bigfile(tmp_path / "train" / "FeatureData" / "resnext", frames)
    test_dir = write_bigfile(tmp_path / "test" / "FeatureData" / "resnext",
                             {"video7_0": f16(3)})
    out = tmp_path / "out"
    summary = convert_dataset("bigfile",
        [tmp_path / "msrvtt10ktrain.caption.txt", tmp_path / "msrvtt10ktest.caption.txt"],
        ConvertOptions(out=out, features=[train_dir, test_dir], backbone="resnext101"),
    )
    got = by_video(out)
    assert got["video1"] == ("train", ["kids play football", "children kick a ball"])
    assert got["video7"] == ("test", ["a car drives fast"])
    assert summary.problems["malformed_caption_lines"] == ["msrvtt10ktrain.caption.txt:5"]
    features = stored(out, "resnext101")
    expected = np.stack([frames[f"video1_{k}"] for k in (0, 1, 2, 10)])
    np.testing.assert_array_equal(features["video1"], expected)
    assert features["video7"].shape == (1, 3)
    assert read_card(out)["feature_sets"]["resnext101"]["frames"] == 0


def test_bigfile_caption_file_needs_a_split(tmp_path: Path) -> None:
    (tmp_path / "tgif-msrvtt10k.caption.txt").write_text("video0#0 a b\n")
    with pytest.raises(DataError, match="spells no split"):
        convert_dataset("bigfile", [tmp_path / "tgif-msrvtt10k.caption.txt"],
                                      ConvertOptions(out=tmp_path / "o"))
