"""The native caption reader refuses what would be trained on silently wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcsan.core.errors import DataError
from mcsan.data.native import captions_path, read_captions


def write(root: Path, *records: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    captions_path(root).write_text("\n".join(lines) + "\n")
    return captions_path(root)


GOOD = {"video_id": "v1", "caption": "a dog runs", "split": "train"}


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (None, "null"),
        ("", "empty"),
        ("   ", "empty"),
        (3, "not a string"),
        ("a dog\x00runs", "text with control character"),
    ],
)
def test_a_bad_caption_names_file_line_and_video(tmp_path: Path, bad, problem) -> None:
    path = write(tmp_path, GOOD, "", {"video_id": "v7", "caption": bad, "split": "train"})
    with pytest.raises(DataError, match=rf"{path}:3: caption of video 'v7' is {problem}"):
        read_captions(tmp_path)


def test_a_missing_field_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, {"video_id": "v2", "split": "test"})
    with pytest.raises(DataError, match=rf"{path}:2: record has no field 'caption'"):
        read_captions(tmp_path)


def test_a_video_in_train_and_test_is_refused_naming_it(tmp_path: Path) -> None:
    write(tmp_path, GOOD, {**GOOD, "video_id": "v2"}, {**GOOD, "split": "test"})
    with pytest.raises(DataError, match=r"1 video\(s\) .* more than one split: v1 \(test\+train\)"):
        read_captions(tmp_path)
    write(tmp_path, GOOD, {**GOOD, "video_id": "v2", "split": "test"})
    assert [r.split for r in read_captions(tmp_path)] == ["train", "test"]


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        ("feature_sets: [1, 2]\n", "'feature_sets' must be a mapping"),
        ("feature_sets: {tiny: 3}\n", "'feature_sets.tiny' must be a mapping with a string"),
        (
            "feature_sets: {tiny: {path: 5}}\n",
            "'feature_sets.tiny' must be a mapping with a string",
        ),
        ("name: [a]\n", "'name' must be a string"),
        ("splits: [unclosed\n", "not valid YAML"),
    ],
)
def test_a_malformed_card_is_refused_naming_the_key(tmp_path: Path, card: str, problem: str):
    from mcsan.data.native import card_path, read_card

    card_path(tmp_path).write_text(card)
    with pytest.raises(DataError, match=rf"{card_path(tmp_path)}: {problem}"):
        read_card(tmp_path)
