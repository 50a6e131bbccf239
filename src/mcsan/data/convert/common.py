"""Helpers the format readers share: JSON loading, split files, split assignment."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mcsan.core.errors import DataError
from mcsan.core.io import read_json
from mcsan.data.convert.registry import Annotations, normalise_split
from mcsan.data.convert.sources import read_id_list
from mcsan.data.native import CaptionRecord

_SPLIT_WORD = re.compile(r"(train|trn|validation|validate|val|test|tst)", re.IGNORECASE)


def load_json(path: Path) -> Any:
    """Parse an annotation JSON file; a syntax error names the file and position."""
    return read_json(path, "annotation file", "pass the file your data set distributes")


def split_from_filename(path: Path) -> str | None:
    """The split a file name spells (``trn_names.npy`` -> train), or None if unclear."""
    found = {normalise_split(m.lower()) for m in _SPLIT_WORD.findall(path.name)}
    return found.pop() if len(found) == 1 else None


def parse_split_files(entries: Iterable[str | Path]) -> dict[str, list[Path]]:
    """``SPLIT=PATH`` or ``PATH`` (split read from the file name) -> {split: [paths]}."""
    result: dict[str, list[Path]] = {}
    for entry in entries:
        text = str(entry)
        split_name, sep, rest = text.partition("=")
        if sep and split_name.strip().lower() in ("train", "val", "test", "trn", "tst",
                                                   "validate", "validation"):
            split, path = normalise_split(split_name), Path(rest)
        else:
            path = Path(text)
            inferred = split_from_filename(path)
            if inferred is None:
                raise DataError(
                    f"{path}: cannot tell its split from the name; write it as "
                    f"train={path}, val={path} or test={path}"
                )
            split = inferred
        if not path.is_file():
            raise DataError(f"{path}: split file not found; check --split-files")
        result.setdefault(split, []).append(path)
    return result


def read_split_map(split_files: Mapping[str, Sequence[Path]]) -> tuple[dict[str, str], list[str]]:
    """Read id-list files into {video_id: split}; a video in two splits is refused.

    That would leak test videos into training; the error names the videos and files.
    (The second value, the conflicting ids, is always empty; kept for the callers.)
    """
    check_no_pickled_lists([p for paths in split_files.values() for p in paths])
    split_of: dict[str, str] = {}
    file_of: dict[str, Path] = {}
    conflicts: list[str] = []
    for split, paths in split_files.items():
        for path in paths:
            for video_id in read_id_list(path):
                if split_of.get(video_id, split) != split:
                    conflicts.append(f"{video_id} ({file_of[video_id]} and {path})")
                split_of.setdefault(video_id, split)
                file_of.setdefault(video_id, path)
    if conflicts:
        more = f" and {len(conflicts) - 10} more" if len(conflicts) > 10 else ""
        shown = ", ".join(conflicts[:10]) + more
        raise DataError(
            f"{len(conflicts)} video(s) are listed in two splits: {shown}; that leaks test "
            "videos into training. Give each video one split in --split-files"
        )
    return split_of, []


def assign_splits(
    captions: Mapping[str, Sequence[str]],
    split_of: Mapping[str, str],
    conflicts: Sequence[str] = (),
) -> Annotations:
    """Caption records for each captioned video that has a split.

    Captioned videos in no split are reported (``videos_without_split``) and their
    captions counted as dropped; listed ids without captions are reported too.
    """
    records: list[CaptionRecord] = []
    unassigned: list[str] = []
    dropped = 0
    for video_id, sentences in captions.items():
        split = split_of.get(video_id)
        if split is None:
            unassigned.append(video_id)
            dropped += len(sentences)
            continue
        records.extend(CaptionRecord(video_id, s, split) for s in sentences)
    uncaptioned = [v for v in split_of if v not in captions]
    return Annotations(
        records=records,
        issues={
            "videos_without_split": unassigned,
            "split_ids_without_captions": uncaptioned,
            "videos_in_two_splits": list(conflicts),
        },
        dropped_captions={"videos_without_split": dropped},
    )


def sentence_list(value: Any, source: Path, video_id: str) -> list[str]:
    """A video's captions as a list of strings (a single string becomes one caption)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise DataError(
        f"{source}: captions of video {video_id} are {type(value).__name__}, "
        "expected a list of strings"
    )


def check_no_pickled_lists(paths: Sequence[Path]) -> None:
    """Refuse, in one error naming every one of them, the ``.npy`` id lists that hold
    pickled Python objects (HGR's ``*_names.npy`` as released), with how to re-save each.
    Only the header is read: nothing is unpickled."""
    import numpy as np

    pickled = []
    for path in paths:
        if path.suffix.lower() != ".npy" or not path.is_file():
            continue
        try:
            with path.open("rb") as handle:
                major, _ = np.lib.format.read_magic(handle)
                read = (np.lib.format.read_array_header_1_0 if major == 1
                        else np.lib.format.read_array_header_2_0)  # fmt: skip
                _, _, dtype = read(handle)
        except (ValueError, OSError, EOFError):
            continue  # not a .npy: read_id_list names the problem
        if dtype.hasobject:
            pickled.append(path)
    if pickled:
        texts = ", ".join(str(p.with_suffix(".txt")) for p in pickled)
        raise DataError(
            f"{len(pickled)} id list(s) hold pickled Python objects, which mcsan never loads "
            f"(unpickling runs code): {', '.join(str(p) for p in pickled)}. If you trust "
            "them, load each in Python with numpy's allow_pickle option and save it as a "
            "text list (np.savetxt(TXT, array.astype(str), fmt='%s')), then pass the text "
            f"files instead: {texts}"
        )
