"""`mcsan info DIR`: counts, captions per video, feature specs and id gaps of a dataset."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    parser = subparsers.add_parser(
        "info",
        help="describe a native dataset: splits, captions per video, feature sets",
        description="Counts per split (videos, captions, captions per video min/mean/max), "
        "each feature set's spec, and video ids missing on either side.",
    )
    parser.add_argument("root", type=Path, metavar="DIR", help="native dataset folder")
    parser.add_argument("--list-missing", action="store_true",
                        help="print every missing id, not only the first few")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")
    parser.set_defaults(func=run)


def _ids_line(ids: list[str], every: bool) -> str:
    if every or len(ids) <= 5:
        return ", ".join(ids)
    return ", ".join(ids[:5]) + f" ... (+{len(ids) - 5}; --list-missing shows all)"


def _separate_twins(feature_sets: dict[str, dict[str, Any]], root: Path) -> None:
    """Move twin clips (listed in ``twins.jsonl``) out of "features without captions"."""
    from mcsan.inference.twins import TWINS_FILE, read_twins

    twin_ids = ({pair.twin_id for pair in read_twins(root)} if (root / TWINS_FILE).is_file()
                else set())  # fmt: skip
    for entry in feature_sets.values():
        orphans = entry["features_without_captions"]
        entry["twin_clips"] = [i for i in orphans if i in twin_ids]
        entry["features_without_captions"] = [i for i in orphans if i not in twin_ids]


def run(args: argparse.Namespace) -> int:
    """Print the description of ``args.root``."""
    from mcsan.data.convert.convert import describe_dataset

    info = describe_dataset(args.root)
    _separate_twins(info.feature_sets, args.root)
    if args.json:
        print(json.dumps(asdict(info), indent=2))
        return 0
    print(f"dataset {info.name} ({info.root})")
    print(f"  {'split':<8}{'videos':>8}{'captions':>10}   captions/video min/mean/max")
    for split, c in info.splits.items():
        print(f"  {split:<8}{c['videos']:>8}{c['captions']:>10}   "
              f"{c['captions_per_video_min']}/{c['captions_per_video_mean']:.2f}/"
              f"{c['captions_per_video_max']}")
    if not info.feature_sets:
        print("  no feature sets")
    for set_name, entry in info.feature_sets.items():
        frames = entry["frames"] or "variable"
        print(f"  feature set {set_name}: backbone {entry['backbone']}, frames {frames}, "
              f"size {entry['size']}, streams {entry['streams']}, {entry['videos']} videos")
        for key, label in (
            ("captioned_videos_without_features", "captioned videos without features"),
            ("features_without_captions", "features without captions"),
            ("twin_clips", "twin clips (in twins.jsonl; scored against their originals' captions)"),
        ):
            ids = entry[key]
            print(f"    {label}: {len(ids)}" + (f" ({_ids_line(ids, args.list_missing)})"
                                                 if ids else ""))
    return 0
