"""Converters given what users really hand over: zips, the same file twice, stray files,
null captions, pickled names lists, videos in two splits, features missing after a split."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_convert_formats import by_video, msrvtt_info, write_1k_a

from mcsan.core.errors import DataError
from mcsan.data.convert.convert import ConvertOptions, convert_dataset
from mcsan.data.native import read_captions


class _Planted:
    """Unpickling this object creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def official_pair(folder: Path) -> list[Path]:
    """train_val_videodatainfo.json + test_videodatainfo.json, two captions a video."""
    folder.mkdir(parents=True, exist_ok=True)
    train_val = {"video0": "train", "video1": "train", "video2": "validate"}
    test = {"video3": "test"}
    caps = {v: [f"a person shows clip {v}", f"clip {v} again"] for v in {**train_val, **test}}
    return [
        msrvtt_info(
            folder / "train_val_videodatainfo.json", train_val, {v: caps[v] for v in train_val}
        ),
        msrvtt_info(folder / "test_videodatainfo.json", test, {v: caps[v] for v in test}),
    ]


def test_the_zip_as_distributed_converts_like_its_contents(tmp_path: Path) -> None:
    files = official_pair(tmp_path / "plain")
    archive = tmp_path / "MSRVTT_annotation.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in files:
            handle.write(path, f"annotation/{path.name}")
        handle.writestr("__MACOSX/annotation/._test_videodatainfo.json", b"\x00\x05\x16\x07\xff")
        handle.writestr("annotation/readme.txt", "MSR-VTT \xa9 2016".encode("latin-1"))
        handle.writestr("annotation/category.txt", "music\t0\n")
    zipped = convert_dataset("msrvtt", [archive], ConvertOptions(out=tmp_path / "z"))
    plain = convert_dataset("msrvtt", files, ConvertOptions(out=tmp_path / "p"))
    assert by_video(tmp_path / "z") == by_video(tmp_path / "p")
    assert zipped.captions_written == plain.captions_written == 8
    assert any(
        "ignored 2 other member(s): annotation/readme.txt, annotation/category.txt" in note
        for note in zipped.notes
    )
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:-40])
    with pytest.raises(DataError, match=rf"{broken}: cannot read the zip .*unzip it"):
        convert_dataset("msrvtt", [broken], ConvertOptions(out=tmp_path / "b"))


def test_the_same_annotation_file_twice_is_refused(tmp_path: Path) -> None:
    files = official_pair(tmp_path)
    copy = tmp_path / "copy_of_test.json"
    shutil.copy(files[1], copy)
    for paths in ([files[0], files[1], files[1]], [*files, copy]):
        with pytest.raises(DataError, match="identical content.*doubled"):
            convert_dataset("msrvtt", paths, ConvertOptions(out=tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_a_stray_file_never_switches_the_protocol(tmp_path: Path) -> None:
    files = official_pair(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("video0\n")
    with pytest.raises(DataError, match=rf"{notes}: not an MSR-VTT annotation file"):
        convert_dataset("msrvtt", [*files, notes], ConvertOptions(out=tmp_path / "o"))


def test_a_null_caption_is_dropped_and_counted_never_the_text_none(tmp_path: Path) -> None:
    path = tmp_path / "MSRVTT_data.json"
    path.write_text(
        json.dumps(
            {
                "videos": [{"video_id": "video0", "split": "train"}],
                "sentences": [
                    {"video_id": "video0", "caption": None},
                    {"video_id": "video0", "caption": "a dog runs"},
                    {"video_id": "video0", "caption": "a dog\x1b[31m barks"},
                ],
            }
        )
    )
    summary = convert_dataset("msrvtt", [path], ConvertOptions(out=tmp_path / "o"))
    assert by_video(tmp_path / "o") == {"video0": ("train", ["a dog runs"])}
    assert summary.problems["empty_captions"] == ["video0"]
    assert summary.dropped_captions["empty_captions"] == 1
    assert summary.dropped_captions["control_character_captions"] == 1


def test_1k_a_validation_is_carved_after_features_drop_and_sizes_checked(tmp_path: Path) -> None:
    paths, caps = write_1k_a(tmp_path, ",")
    dim = 4
    have = [f"video{i}" for i in (0, 1, 2, 3, 4, 5)] + ["video20", "video21"]  # 4 train lost
    np.save(tmp_path / "feats.npy", np.ones((len(have), dim), np.float32))
    (tmp_path / "names.txt").write_text("\n".join(have))
    options = ConvertOptions(
        out=tmp_path / "o",
        protocol="1k-a",
        val_size=3,
        seed=7,
        features=[tmp_path / "feats.npy"],
        feature_format="npy-mean",
        feature_names=[tmp_path / "names.txt"],
    )
    summary = convert_dataset("msrvtt", paths, options)
    splits = {
        s: sorted(v for v, (sp, _) in by_video(tmp_path / "o").items() if sp == s)
        for s in ("train", "val", "test")
    }
    assert len(splits["val"]) == 3 and len(splits["train"]) == 3
    assert set(splits["val"]) | set(splits["train"]) <= set(have)
    assert summary.split_size_mismatch == {"test": {"expected": 1000, "found": 2}}
    options.val_size, options.out = 6, tmp_path / "o2"
    with pytest.raises(DataError, match="cannot carve 6 validation videos from the 6 training"):
        convert_dataset("msrvtt", paths, options)


def test_a_pickled_names_list_is_refused_and_never_run(tmp_path: Path) -> None:
    files = official_pair(tmp_path)
    marker = tmp_path / "pwned"
    np.save(tmp_path / "feats.npy", np.ones((4, 4), np.float32))
    names = tmp_path / "names.npy"
    np.save(names, np.array([_Planted(marker)] * 4, dtype=object), allow_pickle=True)
    options = ConvertOptions(
        out=tmp_path / "o",
        features=[tmp_path / "feats.npy"],
        feature_format="npy-mean",
        feature_names=[names],
    )
    with pytest.raises(DataError, match=rf"{names}: the id list holds pickled Python objects"):
        convert_dataset("msrvtt", files, options)
    assert not marker.exists()


def test_a_video_in_two_split_files_is_refused_by_name(tmp_path: Path) -> None:
    captions = [
        {"videoID": "vid1", "enCap": ["a man cooks"]},
        {"videoID": "vid2", "enCap": ["a cat sleeps"]},
    ]
    (tmp_path / "hgr.json").write_text(json.dumps(captions))
    (tmp_path / "trn_names.txt").write_text("vid1\nvid2\n")
    (tmp_path / "tst_names.txt").write_text("vid2\n")
    options = ConvertOptions(
        out=tmp_path / "o",
        split_files=[str(tmp_path / "trn_names.txt"), str(tmp_path / "tst_names.txt")],
    )
    with pytest.raises(DataError, match=r"1 video\(s\) are listed in two splits: vid2"):
        convert_dataset("vatex", [tmp_path / "hgr.json"], options)


def test_an_id_list_in_json_under_a_text_name_is_refused(tmp_path: Path) -> None:
    from mcsan.data.convert.sources import read_id_list

    path = tmp_path / "trn_names.txt"
    path.write_text('["vid1", "vid2"]\n')
    with pytest.raises(DataError, match=rf"{path}: holds JSON, not one id a line"):
        read_id_list(path)


REAL_ZIP = next(  # ../shared beside the repository (or beside a worktree's parent)
    (
        p
        for p in (
            Path(__file__).resolve().parents[i] / "shared/data/msrvtt/train_val_annotation.zip"
            for i in (4, 5)
        )
        if p.is_file()
    ),
    Path("../shared/data/msrvtt/train_val_annotation.zip"),
)


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason=f"{REAL_ZIP} absent (shared MSR-VTT zip)")
def test_the_official_msrvtt_zip_converts_with_its_sizes_checked(tmp_path: Path) -> None:
    summary = convert_dataset("msrvtt", [REAL_ZIP], ConvertOptions(out=tmp_path / "o"))
    assert {s: c["videos"] for s, c in summary.splits.items()} == {"train": 6513, "val": 497}
    assert summary.split_size_mismatch == {"test": {"expected": 2990, "found": 0}}
    assert "None" not in {r.caption for r in read_captions(tmp_path / "o")}
