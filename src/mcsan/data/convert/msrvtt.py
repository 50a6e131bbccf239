"""MSR-VTT: the official JSON files and the 1k-A protocol CSVs.

Annotation files are recognised by content, not by name:

* JSON with ``videos`` ([{video_id, split: train|validate|test}]) and ``sentences``
  ([{video_id, caption}]): ``train_val_videodatainfo.json``, ``test_videodatainfo.json``
  or the combined ``MSRVTT_data.json``;
* CSV with a ``sentence`` column: ``MSRVTT_JSFUSION_test.csv`` (``key, vid_key, video_id,
  sentence``; comma- or semicolon-separated), the 1k-A test set, one caption a video;
* CSV with only ``video_id``: ``MSRVTT_train.9k.csv`` / ``MSRVTT_train.7k.csv``.

The protocol is never guessed from the files: ``full`` unless ``--protocol 1k-a`` is given,
and a file that does not belong to the protocol (a CSV under ``full``, any ``.txt``) is
refused by name. Protocol ``full`` keeps the official split (6,513 / 497 / 2,990 videos,
checked after every drop). Protocol ``1k-a`` trains on the CSV's videos with their JSON
captions and tests on the JSFUSION captions; it has no validation split, so the pipeline
carves ``val_size`` training videos out as validation *after* videos without features are
dropped (the sorted remaining training ids, sampled with ``random.Random(seed)``), never
a test video. A JSON ``null`` caption is dropped and counted as an empty caption.

Files that overlap (``MSRVTT_data.json`` given together with ``test_videodatainfo.json``,
which it contains) are deduplicated: a video's sentences are taken from the first file
that has them; those of later files are dropped and counted as
``videos_in_two_annotation_files``, never doubled.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from mcsan.core.errors import DataError
from mcsan.core.io import read_text_lines
from mcsan.data.convert.common import load_json
from mcsan.data.convert.registry import (
    Annotations,
    ConvertOptions,
    DatasetFormat,
    normalise_split,
    register_format,
)
from mcsan.data.native import CaptionRecord

FULL_SPLIT_SIZES = {"train": 6513, "val": 497, "test": 2990}
ONE_K_A_TEST_SIZE = 1000


def read_csv_table(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a comma-, semicolon- or tab-separated file with a header line.

    The delimiter is the one that splits the header into all ``required`` columns;
    extra fields of a row (an unquoted delimiter inside the last column) are joined back.
    """
    lines = list(read_text_lines(path, "CSV file"))
    if not lines:
        raise DataError(f"{path}: empty CSV file")
    for delimiter in (",", ";", "\t"):
        header = [c.strip() for c in next(csv.reader([lines[0]], delimiter=delimiter))]
        if all(c in header for c in required):
            break
    else:
        raise DataError(
            f"{path}: header {lines[0]!r} lacks the columns {', '.join(required)} "
            "(comma, semicolon or tab separated)"
        )
    rows = []
    for number, fields in enumerate(csv.reader(lines[1:], delimiter=delimiter), start=2):
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header):
            fields = fields[: len(header) - 1] + [delimiter.join(fields[len(header) - 1 :])]
        if len(fields) < len(header):
            raise DataError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)}")
        rows.append({h: f.strip() for h, f in zip(header, fields, strict=True)})
    return rows


def _csv_header(path: Path) -> str:
    return next(iter(read_text_lines(path, "CSV file")), "").lower()


@register_format
class MSRVTT(DatasetFormat):
    """MSR-VTT (official JSON; 1k-A CSVs)."""

    name = "msrvtt"
    description = "MSR-VTT: *_videodatainfo.json or MSRVTT_data.json; 1k-A train/JSFUSION CSVs"
    inputs = (
        "full: train_val_videodatainfo.json test_videodatainfo.json (or MSRVTT_data.json); "
        "1k-a: MSRVTT_data.json MSRVTT_train.9k.csv MSRVTT_JSFUSION_test.csv"
    )
    protocols = ("full", "1k-a")
    archive_members = (".json", ".csv")  # the official zip also holds category/readme.txt

    def load_annotations(self, paths: Sequence[Path], options: ConvertOptions) -> Annotations:
        """Read the JSON and CSV files and build the split the protocol asks for."""
        infos = [p for p in paths if p.suffix.lower() == ".json"]
        csvs = [p for p in paths if p.suffix.lower() == ".csv"]
        for path in paths:
            if path not in infos and path not in csvs:
                raise DataError(
                    f"{path}: not an MSR-VTT annotation file (expected the official .json "
                    "files, or for --protocol 1k-a the .csv files); remove it from --annotations"
                )
        protocol = options.protocol or "full"
        if protocol == "full":
            if csvs:
                raise DataError(
                    f"{csvs[0]}: CSV files belong to the 1k-A protocol; pass --protocol 1k-a "
                    "or give only the JSON files"
                )
            return self._full(infos)
        test_csvs = [p for p in csvs if "sentence" in _csv_header(p)]
        train_csvs = [p for p in csvs if p not in test_csvs]
        if not (infos and train_csvs and test_csvs):
            raise DataError(
                "1k-A needs the captions JSON (MSRVTT_data.json or train_val_videodatainfo"
                ".json), MSRVTT_train.9k.csv and MSRVTT_JSFUSION_test.csv in --annotations; "
                f"got {', '.join(str(p) for p in paths)}"
            )
        return self._one_k_a(infos, train_csvs, test_csvs, options)

    def _read_infos(
        self, infos: Sequence[Path]
    ) -> tuple[dict[str, str], dict[str, list[str]], dict[str, int]]:
        """{video_id: split}, {video_id: [captions]} from the official JSON files, and
        {video_id: captions dropped} for videos whose sentences a later file repeats."""
        split_of: dict[str, str] = {}
        captions: dict[str, list[str]] = {}
        repeated: dict[str, int] = {}
        for path in infos:
            found: dict[str, list[str]] = {}
            data = load_json(path)
            if not isinstance(data, dict) or "sentences" not in data:
                raise DataError(
                    f"{path}: not an MSR-VTT info file (needs 'videos' and 'sentences' keys)"
                )
            try:
                for video in data.get("videos", []):
                    split = normalise_split(str(video["split"]), str(path))
                    split_of[str(video["video_id"])] = split
                for sentence in data["sentences"]:
                    caption = sentence["caption"]  # null or a number: dropped as empty
                    found.setdefault(str(sentence["video_id"]), []).append(
                        caption if isinstance(caption, str) else ""
                    )
            except (KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}: an entry lacks {exc}; 'videos' entries need video_id and split, "
                    "'sentences' entries need video_id and caption"
                ) from exc
            for video_id, sentences in found.items():
                if video_id in captions:  # an earlier file has this video's sentences
                    repeated[video_id] = repeated.get(video_id, 0) + len(sentences)
                else:
                    captions[video_id] = sentences
        return split_of, captions, repeated

    def _full(self, infos: Sequence[Path]) -> Annotations:
        split_of, captions, repeated = self._read_infos(infos)
        records: list[CaptionRecord] = []
        unlisted: list[str] = []
        dropped = 0
        for video_id, sentences in captions.items():
            if video_id not in split_of:
                unlisted.append(video_id)
                dropped += len(sentences)
                continue
            records.extend(CaptionRecord(video_id, s, split_of[video_id]) for s in sentences)
        return Annotations(
            records=records,
            expected_sizes=dict(FULL_SPLIT_SIZES),
            issues={
                "captions_of_unlisted_videos": unlisted,
                "split_ids_without_captions": [v for v in split_of if v not in captions],
                "videos_in_two_annotation_files": list(repeated),
            },
            dropped_captions={"captions_of_unlisted_videos": dropped,
                              "videos_in_two_annotation_files": sum(repeated.values())},
            notes=["protocol full: official MSR-VTT split"],
        )

    def _one_k_a(
        self,
        infos: Sequence[Path],
        train_csvs: Sequence[Path],
        test_csvs: Sequence[Path],
        options: ConvertOptions,
    ) -> Annotations:
        _, captions, repeated = self._read_infos(infos)
        test: dict[str, str] = {}
        extra_test: list[str] = []
        for path in test_csvs:
            for row in read_csv_table(path, ("video_id", "sentence")):
                if row["video_id"] in test:
                    extra_test.append(row["video_id"])
                else:
                    test[row["video_id"]] = row["sentence"]
        train_ids = list(dict.fromkeys(
            row["video_id"] for p in train_csvs for row in read_csv_table(p, ("video_id",))
        ))
        in_test = [v for v in train_ids if v in test]
        without_captions = [v for v in train_ids if v not in test and v not in captions]
        train_ids = [v for v in train_ids if v not in test and v in captions]
        listed = set(train_ids) | set(test) | set(in_test) | set(without_captions)
        outside = [v for v in captions if v not in listed]
        records = [CaptionRecord(v, s, "train") for v in train_ids for s in captions[v]]
        records.extend(CaptionRecord(v, s, "test") for v, s in test.items())
        return Annotations(
            records=records,
            expected_sizes={"test": ONE_K_A_TEST_SIZE},
            issues={
                "extra_test_captions": extra_test,
                "train_ids_in_test": in_test,
                "split_ids_without_captions": without_captions,
                "videos_in_two_annotation_files": list(repeated),
            },
            dropped_captions={
                "videos_in_two_annotation_files": sum(repeated.values()),
                "extra_test_captions": len(extra_test),
                "train_ids_in_test": sum(len(captions.get(v, [])) for v in in_test),
            },
            carve_val=options.val_size,
            notes=[
                "1k-a test captions are the JSFUSION sentences (one per video); "
                f"{len(outside)} captioned videos of the JSON are in neither CSV and unused",
            ],
        )
