"""Dual Encoding collections (Dong et al.): caption text files + BigFile features.

Captions: ``<collection>.caption.txt`` with one ``<caption id> <sentence>`` line per
caption, the caption id being ``<video_id>#<k>`` or ``<video_id>#enc#<k>`` (any ``#``
tags after the video id). Split: from ``--split-files`` id lists when given, else from
the split word in each caption file's name (``msrvtt10ktrain.caption.txt`` -> train).
Features: ``FeatureData/<name>/`` with ``feature.bin``, ``shape.txt``, ``id.txt``
(frame rows ``<video_id>_<k>``, grouped per video in numeric frame order).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mcsan.core.errors import DataError
from mcsan.core.io import read_text_lines
from mcsan.data.convert.common import (
    assign_splits,
    parse_split_files,
    read_split_map,
    split_from_filename,
)
from mcsan.data.convert.registry import Annotations, ConvertOptions, DatasetFormat, register_format


def read_caption_lines(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    """{video_id: [captions]} from a ``vid#k sentence`` file, and its malformed lines.

    A malformed line (first token without ``#``) is named as ``file:line``. A caption id
    with no sentence gives an empty caption, which the pipeline counts and drops.
    """
    captions: dict[str, list[str]] = {}
    malformed: list[str] = []
    for number, line in enumerate(read_text_lines(path, "caption file"), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(None, 1)
        caption_id = parts[0]
        video_id, sep, _ = caption_id.partition("#")
        if not sep or not video_id:
            malformed.append(f"{path.name}:{number}")
            continue
        captions.setdefault(video_id, []).append(parts[1] if len(parts) > 1 else "")
    return captions, malformed


@register_format
class BigFileCollection(DatasetFormat):
    """Dual Encoding caption files (``vid#k sentence``) and BigFile features."""

    name = "bigfile"
    description = "Dual Encoding: <collection>.caption.txt (vid#k lines) + BigFile features"
    inputs = (
        "--annotations msrvtt10ktrain.caption.txt msrvtt10kval.caption.txt "
        "msrvtt10ktest.caption.txt --features .../FeatureData/<name> (one per collection)"
    )

    def load_annotations(self, paths: Sequence[Path], options: ConvertOptions) -> Annotations:
        """Read the caption files; split from --split-files or the file names."""
        captions: dict[str, list[str]] = {}
        split_of: dict[str, str] = {}
        malformed: list[str] = []
        for path in paths:
            file_captions, bad = read_caption_lines(path)
            malformed.extend(bad)
            split = split_from_filename(path)
            if split is None and not options.split_files:
                raise DataError(
                    f"{path}: its name spells no split (train/val/test); rename it or pass "
                    "--split-files with the video ids of each split"
                )
            for video_id, sentences in file_captions.items():
                captions.setdefault(video_id, []).extend(sentences)
                if split is not None:
                    split_of.setdefault(video_id, split)
        conflicts: list[str] = []
        if options.split_files:
            split_of, conflicts = read_split_map(parse_split_files(options.split_files))
        annotations = assign_splits(captions, split_of, conflicts)
        annotations.issues["malformed_caption_lines"] = malformed
        annotations.dropped_captions["malformed_caption_lines"] = len(malformed)
        return annotations
