"""The native dataset format that every adapter writes and every stage reads.

    <root>/dataset.yaml          name, splits, feature sets and their spec, counts
    <root>/captions.jsonl        {"video_id", "caption", "split"} one caption a line
    <root>/features/<set>.h5     a FeatureStore (see mcsan.data.video.store)
    <root>/videos/               optional raw clips
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mcsan.errors import DataError
from mcsan.io import atomic_write_text, read_jsonl, write_jsonl

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
    """Read captions.jsonl; a record missing a field is an error naming file and line."""
    path = captions_path(root)
    records = []
    for number, raw in enumerate(read_jsonl(path), start=1):
        try:
            records.append(
                CaptionRecord(str(raw["video_id"]), str(raw["caption"]), str(raw["split"]))
            )
        except KeyError as exc:
            raise DataError(
                f"{path}: record {number} has no field {exc.args[0]!r}; every line needs "
                "video_id, caption and split"
            ) from exc
    return records


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
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping at the top level")
    return data


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
