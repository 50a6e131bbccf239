"""`mcsan convert`: turn benchmark files (MSR-VTT, VATEX, HGR, BigFile) into a native dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mcsan.core.validate import non_negative_int, positive_int

FEATURE_FORMAT_CHOICES = ("auto", "npy-dir", "hdf5", "bigfile", "npy-mean")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` subcommand."""
    from mcsan.data.convert.convert import available_formats, get_format

    formats = available_formats()
    listing = "\n".join(
        f"  {name:<8} {text}\n           e.g. {get_format(name).inputs}"
        for name, text in formats.items()
    )
    parser = subparsers.add_parser(
        "convert",
        help="convert MSR-VTT / VATEX / HGR / BigFile files into a native dataset",
        description="Convert a benchmark's annotation and feature files into the native "
        "format (captions.jsonl, dataset.yaml, features/<set>.h5). Every dropped caption, "
        "video or feature is counted and named in <out>/conversion_report.json.",
        epilog=f"formats:\n{listing}\n\nSee docs/DATA.md for step-by-step recipes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("format", choices=sorted(formats), metavar="FORMAT",
                        help=f"dataset format: {', '.join(sorted(formats))}")
    parser.add_argument("--annotations", nargs="+", required=True, type=Path, metavar="PATH",
                        help="annotation files of the format (recognised by content/name)")
    parser.add_argument("--features", nargs="+", default=[], type=Path, metavar="PATH",
                        help="feature file(s)/folder(s); omit to convert captions only")
    parser.add_argument("--feature-format", choices=FEATURE_FORMAT_CHOICES, default="auto",
                        help="layout of --features (default: guessed from each path)")
    parser.add_argument("--feature-names", nargs="+", default=[], type=Path, metavar="PATH",
                        help="names list (.npy/.txt/.json) of each mean-pooled .npy, in order")
    parser.add_argument("--backbone", default="unknown",
                        help="backbone that made the features, e.g. resnet152, i3d, clip-vit-b32")
    parser.add_argument("--feature-set", default=None,
                        help="name of the feature set written (default: the backbone)")
    parser.add_argument("--stream", default="frame", help="stream name (default: frame)")
    parser.add_argument("--dim", type=positive_int, default=None,
                        help="expected feature dimension D (default: the most common one)")
    parser.add_argument("--split-files", nargs="+", default=[], metavar="[SPLIT=]PATH",
                        help="video id lists per split (HGR trn/val/tst_names.npy, .txt, .json); "
                        "the split comes from the file name or a SPLIT= prefix")
    parser.add_argument("--protocol", default=None, choices=("full", "1k-a"),
                        help="msrvtt: full (official 6513/497/2990; the default) or 1k-a; "
                        "never guessed from the files")
    parser.add_argument("--val-size", type=non_negative_int, default=500,
                        help="1k-a: training videos carved out as validation (default 500)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the validation carve"
    )
    parser.add_argument("--dedup", action="store_true",
                        help="drop repeated captions of a video (always counted)")
    parser.add_argument("--name", default=None, help="dataset name (default: --out's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset in --out")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--out", required=True, type=Path, help="output dataset folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert and print the summary."""
    from mcsan.data.convert.convert import ConvertOptions, convert_dataset

    options = ConvertOptions(
        out=args.out,
        features=list(args.features),
        feature_format=args.feature_format,
        feature_names=list(args.feature_names),
        backbone=args.backbone,
        feature_set=args.feature_set,
        stream=args.stream,
        frame_shape=(args.dim,) if args.dim else None,
        split_files=list(args.split_files),
        protocol=args.protocol,
        val_size=args.val_size,
        seed=args.seed,
        dedup=args.dedup,
        name=args.name,
        overwrite=args.overwrite,
    )
    summary = convert_dataset(args.format, args.annotations, options)
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
        return 0
    print(f"converted {summary.format} -> {summary.out}")
    print(f"  captions: {summary.captions_read} read, {summary.captions_written} written, "
          f"{summary.videos_written} videos")
    for split, counts in summary.splits.items():
        print(f"  {split:<6} {counts['videos']:>7} videos {counts['captions']:>8} captions")
    if summary.feature_set:
        spec = summary.feature_spec or {}
        print(f"  features: set {summary.feature_set!r}, {summary.features_imported} videos, "
              f"backbone {spec.get('backbone')}, frames {spec.get('frames') or 'variable'}, "
              f"streams {spec.get('streams')}")
    for reason, count in summary.dropped_captions.items():
        print(f"  dropped {count} captions: {reason}")
    for reason, count in summary.problem_counts().items():
        ids = summary.problems[reason]
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        print(f"  {reason}: {count} ({shown})")
    for split, sizes in summary.split_size_mismatch.items():
        print(f"  split size mismatch: {split} has {sizes['found']} videos, the official "
              f"split has {sizes['expected']}")
    for note in summary.notes:
        print(f"  note: {note}")
    print(f"  report: {Path(summary.out) / 'conversion_report.json'}")
    return 0
