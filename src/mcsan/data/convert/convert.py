"""One registry of dataset formats and the conversion pipeline they share.

A format (one small class per module, registered in :mod:`mcsan.data.convert.registry`)
only knows how to read its own annotation files into ``(video_id, caption, split)``
records. Everything else is common and lives in :func:`run_conversion`:

    check the inputs (missing, given twice, zipped) -> load annotations -> drop empty
    captions, count (and optionally drop) duplicates -> import features -> drop captions
    of videos whose features are missing or bad -> carve a validation split if the
    protocol asks (1k-A) -> check the official split sizes and refuse a video in two
    splits -> write the native dataset -> summary + report

Nothing is dropped silently: every dropped caption, video or feature is named in
``conversion_report.json`` and counted in the returned :class:`ConversionSummary`; split
sizes are checked on what is finally written, after every drop.
"""

from __future__ import annotations

import os
import random
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcsan.core.errors import DataError
from mcsan.core.io import atomic_path, atomic_write_json, make_dir
from mcsan.data.convert import bigfile, hgr, msrvtt, vatex  # noqa: F401  (register the formats)
from mcsan.data.convert.inputs import check_distinct, opened_archives
from mcsan.data.convert.registry import (
    _REGISTRY,
    ConversionSummary,
    ConvertOptions,
    DatasetFormat,
)
from mcsan.data.native import (
    CaptionRecord,
    captions_path,
    card_path,
    check_split_overlap,
    clear_derived,
    feature_path,
    split_counts,
    write_captions,
    write_card,
)

REPORT_NAME = "conversion_report.json"


def available_formats() -> dict[str, str]:
    """Registered format names and their one-line descriptions."""
    return {name: cls.description for name, cls in sorted(_REGISTRY.items())}


def get_format(name: str) -> DatasetFormat:
    """An instance of the registered format ``name``."""
    if name not in _REGISTRY:
        raise DataError(f"unknown dataset format {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()


def convert_dataset(
    format_name: str, paths: Sequence[str | os.PathLike[str]], options: ConvertOptions
) -> ConversionSummary:
    """Convert annotation files (+ features) of format ``format_name`` into a native
    dataset at ``options.out``."""
    return run_conversion(get_format(format_name), [Path(p) for p in paths], options)


def clean_captions(
    records: Sequence[CaptionRecord], dedup: bool
) -> tuple[list[CaptionRecord], dict[str, list[str]]]:
    """Normalise whitespace (runs of spaces, tabs and newlines become one space; the ends
    are stripped); drop empty captions and those with control characters; find duplicates
    of a video (dropped if ``dedup``).

    Duplicates compare case- and whitespace-insensitively within one video and split.
    Returns the kept records and ``{"empty_captions": ids, "control_character_captions":
    ids, "duplicate_captions": ids, "whitespace_normalised_captions": ids}`` (the last
    kept, with their whitespace changed).
    """
    kept: list[CaptionRecord] = []
    empty: list[str] = []
    control: list[str] = []
    duplicates: list[str] = []
    normalised: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for record in records:
        text = " ".join(record.caption.split())
        if text and text != record.caption:
            normalised.append(record.video_id)
        if not text:
            empty.append(record.video_id)
            continue
        if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
            control.append(record.video_id)
            continue
        key = (record.video_id, record.split, text.lower())
        if key in seen:
            duplicates.append(record.video_id)
            if dedup:
                continue
        seen.add(key)
        kept.append(CaptionRecord(record.video_id, text, record.split))
    return kept, {"empty_captions": empty, "control_character_captions": control,
                  "duplicate_captions": duplicates, "whitespace_normalised_captions": normalised}


def check_split_sizes(
    records: Sequence[CaptionRecord], expected: dict[str, int]
) -> dict[str, dict[str, int]]:
    """Splits whose number of videos differs from ``expected``: {split: {expected, found}}."""
    videos: dict[str, set[str]] = defaultdict(set)
    for record in records:
        videos[record.split].add(record.video_id)
    return {
        split: {"expected": size, "found": len(videos.get(split, ()))}
        for split, size in expected.items()
        if len(videos.get(split, ())) != size
    }


def carve_validation(
    records: list[CaptionRecord], size: int, seed: int, notes: list[str]
) -> list[CaptionRecord]:
    """Move ``size`` training videos (seeded sample of the sorted ids) to ``val``.

    Runs after every drop, so the validation split has exactly ``size`` videos.
    """
    train_ids = sorted({r.video_id for r in records if r.split == "train"})
    if size >= len(train_ids):
        raise DataError(
            f"cannot carve {size} validation videos from the {len(train_ids)} training videos "
            "left after dropping those without captions or features; lower --val-size"
        )
    val_ids = set(random.Random(seed).sample(train_ids, size))
    notes.append(
        f"{len(val_ids)} validation videos carved from the {len(train_ids)} training videos "
        f"left after every drop (seed {seed}), disjoint from test"
    )
    return [
        CaptionRecord(r.video_id, r.caption, "val") if r.video_id in val_ids else r
        for r in records
    ]


def _prepare_out(out: Path, overwrite: bool) -> None:
    if card_path(out).exists() or captions_path(out).exists():
        if not overwrite:
            raise DataError(
                f"{out}: already holds a dataset; choose another --out or pass --overwrite"
            )
        clear_derived(out)  # features, the parse cache, the report: of the old captions
        for name in (captions_path(out), card_path(out)):
            name.unlink(missing_ok=True)
    make_dir(out)


def run_conversion(
    fmt: DatasetFormat, paths: list[Path], options: ConvertOptions
) -> ConversionSummary:
    """The shared pipeline behind :meth:`DatasetFormat.convert` (see the module doc)."""
    if options.protocol and options.protocol not in fmt.protocols:
        raise DataError(
            f"format {fmt.name} has no protocol {options.protocol!r}"
            + (f"; use one of {', '.join(fmt.protocols)}" if fmt.protocols else "")
        )
    check_distinct(paths)
    out = Path(options.out)
    archive_notes: list[str] = []
    with opened_archives(paths, fmt.archive_members, archive_notes) as opened:
        annotations = fmt.load_annotations(opened, options)
    captions_read = len(annotations.records) + sum(annotations.dropped_captions.values())
    dropped = dict(annotations.dropped_captions)
    problems: dict[str, list[str]] = {k: list(v) for k, v in annotations.issues.items()}

    records, caption_problems = clean_captions(annotations.records, options.dedup)
    problems.update(caption_problems)
    dropped["empty_captions"] = len(caption_problems["empty_captions"])
    dropped["control_character_captions"] = len(caption_problems["control_character_captions"])
    dropped["duplicate_captions"] = len(caption_problems["duplicate_captions"]) * options.dedup
    if not records:  # never an empty dataset and exit 0
        raise DataError(
            f"{', '.join(str(p) for p in paths)}: no usable caption to convert ({captions_read} "
            f"read; dropped: {({k: v for k, v in dropped.items() if v}) or 'none'}); check "
            "the annotation files"
        )
    _prepare_out(out, options.overwrite)

    summary_features: dict[str, Any] = {}
    if options.features:
        names = options.feature_names or annotations.feature_names
        records = _import_and_filter(
            records, options, names, out, problems, dropped, summary_features
        )
    notes = [*archive_notes, *annotations.notes]
    if annotations.carve_val:
        records = carve_validation(records, annotations.carve_val, options.seed, notes)
    mismatch = check_split_sizes(records, annotations.expected_sizes)
    check_split_overlap(records, "the converted annotations")
    if not options.features:
        notes.append("no --features given: captions only, no feature set written")

    write_captions(out, records)
    counts = split_counts(records)
    card: dict[str, Any] = {
        "name": options.name or out.name,
        "source_format": fmt.name,
        "splits": list(counts),
        "counts": counts,
        "captions": len(records),
        "feature_sets": {},
    }
    if summary_features:
        card["feature_sets"] = {options.set_name: summary_features["card"]}
    summary = ConversionSummary(
        format=fmt.name,
        out=str(out),
        captions_read=captions_read,
        captions_written=len(records),
        videos_written=len({r.video_id for r in records}),
        splits=counts,
        feature_set=options.set_name if summary_features else None,
        feature_spec=summary_features.get("card"),
        features_imported=summary_features.get("imported", 0),
        dropped_captions={k: v for k, v in dropped.items() if v},
        problems={k: v for k, v in problems.items() if v},
        split_size_mismatch=mismatch,
        notes=notes,
    )
    atomic_write_json(out / REPORT_NAME, summary.to_json())
    write_card(out, card)  # last: a dataset without a card is an unfinished conversion
    return summary


def _import_and_filter(
    records: list[CaptionRecord],
    options: ConvertOptions,
    feature_names: list[Path],
    out: Path,
    problems: dict[str, list[str]],
    dropped: dict[str, int],
    summary_features: dict[str, Any],
) -> list[CaptionRecord]:
    """Import the features of the captioned videos; drop captions of rejected videos."""
    from mcsan.data.convert.features import import_features
    from mcsan.data.convert.sources import open_features
    from mcsan.data.video.store import FeatureStore

    video_ids = list(dict.fromkeys(r.video_id for r in records))
    store = feature_path(out, options.set_name)
    with (
        open_features(options.features, options.feature_format, feature_names, video_ids) as src,
        atomic_path(store) as tmp,  # a crash leaves no half-written store behind
    ):
        result = import_features(
            src, tmp, video_ids, options.backbone, options.stream, options.frame_shape
        )
    captions_per_video = Counter(r.video_id for r in records)
    for reason, ids in result.rejected().items():
        problems[reason] = ids
        dropped[reason] = sum(captions_per_video[v] for v in ids)
    problems["features_without_captions"] = result.orphans
    problems["duplicate_feature_ids"] = result.duplicate_feature_ids
    spec = result.spec
    summary_features["imported"] = len(result.imported)
    with FeatureStore.open(store) as written:
        identity = written.identity
    summary_features["card"] = {"path": str(store.relative_to(out)), **spec.to_json(),
                                "identity": identity}  # fmt: skip
    imported = set(result.imported)
    return [r for r in records if r.video_id in imported]


@dataclass
class DatasetInfo:
    """What ``mcsan info`` shows about a native dataset."""

    root: str
    name: str
    splits: dict[str, dict[str, float]]
    feature_sets: dict[str, dict[str, Any]]


def describe_dataset(root: str | os.PathLike[str]) -> DatasetInfo:
    """Counts per split, captions per video (min/mean/max), feature specs and id gaps."""
    from mcsan.data.native import read_captions, read_card
    from mcsan.data.video.store import FeatureStore

    card = read_card(root)
    records = read_captions(root)
    per_video: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        per_video[record.split][record.video_id] += 1
    splits: dict[str, dict[str, float]] = {}
    for split, counter in sorted(per_video.items()):
        values = list(counter.values())
        splits[split] = {
            "videos": len(values),
            "captions": sum(values),
            "captions_per_video_min": min(values),
            "captions_per_video_mean": round(sum(values) / len(values), 3),
            "captions_per_video_max": max(values),
        }
    caption_ids = {r.video_id for r in records}
    feature_sets: dict[str, dict[str, Any]] = {}
    for set_name, entry in (card.get("feature_sets") or {}).items():
        path = Path(root) / entry.get("path", f"features/{set_name}.h5")
        with FeatureStore.open(path) as store:
            ids = set(store.ids())
            spec = store.spec
        feature_sets[set_name] = {
            "path": str(path),
            **spec.to_json(),
            "videos": len(ids),
            "captioned_videos_without_features": sorted(caption_ids - ids),
            "features_without_captions": sorted(ids - caption_ids),
        }
    return DatasetInfo(str(root), str(card.get("name", Path(root).name)), splits, feature_sets)

