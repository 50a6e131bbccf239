"""HGR release files (Chen et al., CVPR 2020, ``cshizhe/hgr_v2t``).

* ``ref_captions.json``: ``{video_id: [sentence, ...]}``;
* ``trn_names.npy``, ``val_names.npy``, ``tst_names.npy``: the video ids of each split
  (given in ``--annotations`` beside the JSON, or as ``--split-files``);
* features: frame-level HDF5 ``{name: (T, D)}`` or mean-pooled ``{trn,val,tst}_ft.npy``
  arrays whose rows follow the split's names file (paired by the split word in the file
  names when ``--feature-names`` is not given).
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


@register_format
class HGR(DatasetFormat):
    """HGR ref_captions.json + split name lists."""

    name = "hgr"
    description = "HGR: ref_captions.json + {trn,val,tst}_names.npy (HDF5 or mean-pooled .npy)"
    inputs = "--annotations ref_captions.json trn_names.npy val_names.npy tst_names.npy"

    def load_annotations(self, paths: Sequence[Path], options: ConvertOptions) -> Annotations:
        """Read ref_captions.json and assign splits from the names lists."""
        caption_files = [p for p in paths if p.suffix.lower() == ".json"]
        name_files = [p for p in paths if p.suffix.lower() != ".json"]
        if not caption_files:
            raise DataError(
                "HGR needs ref_captions.json in --annotations (a {video: [sentences]} JSON)"
            )
        captions: dict[str, list[str]] = {}
        for path in caption_files:
            data = load_json(path)
            if not isinstance(data, dict):
                raise DataError(f"{path}: expected a JSON object {{video_id: [sentences]}}")
            for video_id, value in data.items():
                captions.setdefault(str(video_id), []).extend(
                    sentence_list(value, path, str(video_id))
                )
        split_files = parse_split_files([*name_files, *options.split_files])
        if not split_files:
            raise DataError(
                "HGR needs the split name lists: pass trn_names.npy, val_names.npy and "
                "tst_names.npy in --annotations or --split-files"
            )
        split_of, conflicts = read_split_map(split_files)
        annotations = assign_splits(captions, split_of, conflicts)
        annotations.notes.append(f"splits from {', '.join(sorted(split_files))} name lists")
        annotations.feature_names = _pair_names(options.features, split_files)
        return annotations


def _pair_names(features: Sequence[Path], split_files: dict[str, list[Path]]) -> list[Path]:
    """The names list of each mean-pooled ``.npy`` feature file, matched by split word."""
    arrays = [Path(p) for p in features if Path(p).suffix.lower() == ".npy"]
    if not arrays or len(arrays) != len(features):
        return []
    names = []
    for array in arrays:
        split = split_from_filename(array)
        if split is None or len(split_files.get(split, [])) != 1:
            return []
        names.append(split_files[split][0])
    return names
