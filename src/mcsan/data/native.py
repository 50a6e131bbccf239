"""The native dataset format that every adapter writes and every stage reads.

    <root>/dataset.yaml          name, splits, feature sets and their spec, counts
    <root>/captions.jsonl        {"video_id", "caption", "split"} one caption a line
    <root>/features/<set>.h5     a FeatureStore (see mcsan.data.video.store)
    <root>/videos/               optional raw clips
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mcsan.core.errors import DataError
from mcsan.core.io import atomic_write_text, numbered_jsonl, read_text_lines, write_jsonl
from mcsan.core.typed_yaml import RepeatedKeyError, strict_yaml

CARD_NAME = "dataset.yaml"
CAPTIONS_NAME = "captions.jsonl"
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class CaptionRecord:
    """One caption of one video in one split."""

    video_id: str
    caption: str
    split: str

    def to_json(self) -> dict[str, str]:
        """The record as written to captions.jsonl."""
        return {"video_id": self.video_id, "caption": self.caption, "split": self.split}


def captions_path(root: str | os.PathLike[str]) -> Path:
    """Path of a dataset's captions.jsonl."""
    return Path(root) / CAPTIONS_NAME


def card_path(root: str | os.PathLike[str]) -> Path:
    """Path of a dataset's dataset.yaml."""
    return Path(root) / CARD_NAME


def feature_path(root: str | os.PathLike[str], set_name: str) -> Path:
    """Path of feature set ``set_name`` of a dataset."""
    return Path(root) / "features" / f"{set_name}.h5"


def videos_dir(root: str | os.PathLike[str]) -> Path:
    """Folder of a dataset's raw clips."""
    return Path(root) / "videos"


def write_captions(root: str | os.PathLike[str], records: Iterable[CaptionRecord]) -> int:
    """Write captions.jsonl atomically; return the number of captions."""
    return write_jsonl(captions_path(root), (r.to_json() for r in records))


def read_captions(root: str | os.PathLike[str]) -> list[CaptionRecord]:
    """Read captions.jsonl; a bad record (missing field, null or empty text) is refused.

    The error names the file, the line and the video, and the fix. A video listed in two
    splits (a train/test leak) is refused too, naming the videos.
    """
    path = captions_path(root)
    records = []
    for number, raw in numbered_jsonl(path):
        missing = [key for key in ("video_id", "caption", "split") if key not in raw]
        if missing:
            raise DataError(
                f"{path}:{number}: record has no field {missing[0]!r}; every line needs "
                "video_id, caption and split"
            )
        video_id, caption, split = raw["video_id"], raw["caption"], raw["split"]
        for key, value in (("video_id", video_id), ("split", split)):
            if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
                raise DataError(
                    f"{path}:{number}: {key} is {value!r}; give a non-empty string"
                )
        problem = _caption_problem(caption)
        if problem:
            raise DataError(
                f"{path}:{number}: caption of video {video_id!r} is {problem}; fix or remove "
                "that line (`mcsan convert` drops such captions and counts them)"
            )
        records.append(CaptionRecord(str(video_id), caption, str(split)))
    check_split_overlap(records, path)
    return records


def _caption_problem(caption: object) -> str | None:
    if caption is None:
        return "null"
    if not isinstance(caption, str):
        return f"not a string ({type(caption).__name__})"
    if not caption.strip():
        return "empty"
    control = [ch for ch in caption.strip() if unicodedata.category(ch) in ("Cc", "Cs")]
    if control:
        return f"text with control character {control[0]!r}"
    return None


def split_overlaps(records: Iterable[CaptionRecord]) -> dict[str, list[str]]:
    """Videos listed in more than one split: {video_id: [splits]} (empty when clean)."""
    splits: dict[str, set[str]] = {}
    for record in records:
        splits.setdefault(record.video_id, set()).add(record.split)
    return {vid: sorted(s) for vid, s in sorted(splits.items()) if len(s) > 1}


def check_split_overlap(records: Iterable[CaptionRecord], source: str | os.PathLike[str]) -> None:
    """Refuse a train/test leak: raise DataError naming videos listed in two splits."""
    overlaps = split_overlaps(records)
    if overlaps:
        shown = ", ".join(f"{vid} ({'+'.join(s)})" for vid, s in list(overlaps.items())[:10])
        more = f" and {len(overlaps) - 10} more" if len(overlaps) > 10 else ""
        raise DataError(
            f"{source}: {len(overlaps)} video(s) are listed in more than one split: "
            f"{shown}{more}; that leaks test videos into training. Give each video one split "
            "(fix the split files and re-run `mcsan convert`)"
        )


def split_counts(records: Iterable[CaptionRecord]) -> dict[str, dict[str, int]]:
    """Videos and captions per split."""
    videos: dict[str, set[str]] = {}
    captions: Counter[str] = Counter()
    for record in records:
        videos.setdefault(record.split, set()).add(record.video_id)
        captions[record.split] += 1
    return {s: {"videos": len(v), "captions": captions[s]} for s, v in sorted(videos.items())}


def read_card(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read dataset.yaml as a dict."""
    path = card_path(root)
    if not path.is_file():
        raise DataError(
            f"{path}: no dataset card; is {root} a native dataset? Create one with "
            "`mcsan synth` or `mcsan convert`"
        )
    try:
        data = strict_yaml("\n".join(read_text_lines(path, "dataset card"))) or {}
    except RepeatedKeyError as exc:
        raise DataError(f"{path}:{exc}") from exc
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({exc}); fix or rewrite the card") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping at the top level")
    check_card(data, path)
    return data


def check_card(card: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse a card whose fields have the wrong shape, naming the key."""
    sets = card.get("feature_sets") or {}
    problem = None
    if "name" in card and not isinstance(card["name"], str | int):
        problem = "'name' must be a string"
    elif not isinstance(sets, dict):
        problem = "'feature_sets' must be a mapping {set name: {path, ...}}"
    else:
        for name, entry in sets.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("path", ""), str):
                problem = f"'feature_sets.{name}' must be a mapping with a string 'path'"
                break
    if problem:
        raise DataError(f"{path}: {problem}; fix the card or re-create it with `mcsan convert`")


def write_card(root: str | os.PathLike[str], card: dict[str, Any]) -> None:
    """Write dataset.yaml atomically."""
    atomic_write_text(card_path(root), yaml.safe_dump(card, sort_keys=False))


def update_card(root: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into dataset.yaml (creating it if missing) and return the card.

    A field whose value is a dict is merged one level deep (for ``feature_sets``).
    """
    path = card_path(root)
    card = read_card(root) if path.is_file() else {}
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(card.get(key), dict):
            card[key] = {**card[key], **value}
        else:
            card[key] = value
    write_card(root, card)
    return card


def check_card_identity(
    root: str | os.PathLike[str], set_name: str, store: Path, identity: str | None
) -> None:
    """Refuse a feature file that is not the one the dataset card records (a swapped or
    foreign file of the same spec and ids): FeatureError naming both."""
    from mcsan.data.video.identity import check_identity

    card = card_path(root)
    entry = (read_card(root).get("feature_sets") or {}).get(set_name) if card.is_file() else None
    check_identity(
        identity, (entry or {}).get("identity") if isinstance(entry, dict) else None, store,
        f"the dataset card {card}",
        "if you re-extracted it on purpose, run `mcsan extract` into it again (or `mcsan "
        "convert --overwrite`) to record the new identity; else restore the original file",
    )  # fmt: skip


DERIVED = ("features", "cache", "conversion_report.json")
"""What a dataset's clips and captions give rise to (feature sets, the parse cache, the
conversion report): invalid once they are replaced."""


def clear_derived(root: str | os.PathLike[str]) -> list[str]:
    """Remove the files derived from a dataset's clips and captions (and the feature sets
    the card lists); return the names removed."""
    import shutil

    base, removed = Path(root), []
    for name in DERIVED:
        path = base / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    if card_path(base).is_file() and read_card(base).get("feature_sets"):
        update_card(base, feature_sets=None)
    return removed
