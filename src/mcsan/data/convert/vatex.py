"""VATEX: JSON lists of ``{"videoID", "enCap": [...], "chCap": [...]}``.

Files: ``vatex_training_v1.0.json``, ``vatex_validation_v1.0.json``,
``vatex_public_test_english_v1.1.json``. Chinese captions (``chCap``) are ignored.

Split: the HGR split (25,991 / 1,500 / 1,500 videos) from id-list files passed as
``--split-files`` (``trn_names.npy val_names.npy tst_names.npy``, or ``.txt``/``.json``
lists, or ``SPLIT=PATH``). Without split files a video takes the split that its
annotation file's name spells (training -> train, validation -> val, test -> test).

Entries without English captions (no or an empty ``enCap``) are counted and named as
``videos_without_english_captions``; a file none of whose entries has one (the private
test list, ``videoID`` only) is refused: it would convert to nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mcsan.core.errors import DataError
from mcsan.data.convert.common import (
    assign_splits,
    load_json,
    parse_split_files,
    read_split_map,
    sentence_list,
    split_from_filename,
)
from mcsan.data.convert.registry import Annotations, ConvertOptions, DatasetFormat, register_format

HGR_SPLIT_SIZES = {"train": 25991, "val": 1500, "test": 1500}


@register_format
class VATEX(DatasetFormat):
    """VATEX English captions with the HGR split."""

    name = "vatex"
    description = "VATEX: vatex_*.json lists of {videoID, enCap}; HGR split from id lists"
    inputs = (
        "--annotations vatex_training_v1.0.json vatex_validation_v1.0.json "
        "--split-files trn_names.npy val_names.npy tst_names.npy"
    )

    def load_annotations(self, paths: Sequence[Path], options: ConvertOptions) -> Annotations:
        """Read the enCap lists and assign the HGR split (or the files' own split)."""
        captions: dict[str, list[str]] = {}
        file_split: dict[str, str | None] = {}
        no_english: list[str] = []
        for path in paths:
            data = load_json(path)
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of {{videoID, enCap}} objects")
            split = split_from_filename(path)
            without = []
            for number, item in enumerate(data):
                if not isinstance(item, dict) or "videoID" not in item:
                    raise DataError(f"{path}: entry {number} has no 'videoID'")
                video_id = str(item["videoID"])
                english = sentence_list(item.get("enCap", []), path, video_id)
                if not english:
                    without.append(video_id)
                    continue
                captions.setdefault(video_id, []).extend(english)
                file_split.setdefault(video_id, split)
            if data and len(without) == len(data):
                raise DataError(
                    f"{path}: none of its {len(data)} entries has English captions ('enCap'); "
                    "it is probably the private test list (videoID only), which has nothing "
                    "to convert: leave it out of --annotations"
                )
            no_english.extend(without)
        if options.split_files:
            split_of, conflicts = read_split_map(parse_split_files(options.split_files))
            annotations = assign_splits(captions, split_of, conflicts)
            annotations.issues["videos_without_english_captions"] = no_english
            annotations.expected_sizes = dict(HGR_SPLIT_SIZES)
            annotations.notes.append("split: HGR id lists from --split-files")
            return annotations
        split_of = {v: s for v, s in file_split.items() if s is not None}
        annotations = assign_splits(captions, split_of)
        annotations.issues["videos_without_english_captions"] = no_english
        annotations.notes.append(
            "split: from the annotation file names (no --split-files); the HGR split "
            "25,991/1,500/1,500 needs its id lists"
        )
        return annotations
