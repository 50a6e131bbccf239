"""`mcsan parse`: parse captions into the four levels and write one JSON record a caption.

FILE is a native ``captions.jsonl`` ({"video_id", "caption", "split"} a line) or plain text
with one caption a line. Output records follow :mod:`mcsan.data.captions.parse` (plus ``video_id`` and
``split`` for native input).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.core.errors import DataError, ParseError
from mcsan.core.validate import int_in


@dataclass
class CaptionLine:
    """One caption read from the input, with the line it came from."""

    line: int
    caption: str
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ReadResult:
    """Captions read from a file, and the lines skipped (line number, reason)."""

    captions: list[CaptionLine]
    skipped: list[tuple[int, str]]
    native: bool


DESCRIPTION = """\
Parse captions into the four levels (global, entities, actions, relation triplets) and
write one JSON record per caption.

Training does not need it: `mcsan train` (and ablate, demo) parses the captions of its
dataset itself and caches the parses in DATASET/cache/. Use `mcsan parse` to look at the
parses, to find captions the parser rejects (--skip-bad lists them) or to check the
balance of the attribute labels (--stats).

Input: a native captions.jsonl ({"video_id", "caption", "split"} per line) or a plain text
file with one caption per line. Output: JSONL records with the caption's levels (plus
video_id and split for native input).
"""


def register(subparsers: Any) -> None:
    """Add the `parse` subcommand."""
    parser = subparsers.add_parser(
        "parse",
        help="parse captions into entities, actions and relation triplets (optional)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--captions", required=True, type=Path, help="captions.jsonl or .txt")
    parser.add_argument("--out", required=True, type=Path, help="output PARSED.jsonl")
    parser.add_argument("--skip-bad", action="store_true", help="skip and report bad captions")
    parser.add_argument("--stats", action="store_true", help="print attribute label imbalance")
    parser.add_argument("--cache", type=Path, default=None, help="parse cache (JSONL)")
    parser.add_argument("--model", default=None, help="spaCy model package or path")
    parser.add_argument("--batch-size", type=int_in(1, 65536), default=256)
    parser.add_argument(
        "--sizes",
        default=None,
        help="attribute vocabulary sizes for --stats (level=K,...; default: those of "
        "data.attribute_sizes in a run config)",
    )
    parser.set_defaults(func=run)


def read_caption_file(path: Path, skip_bad: bool) -> ReadResult:
    """Read captions from a native captions.jsonl or a plain-text file, naming bad lines."""
    from mcsan.data.captions.parse import caption_problem

    if not path.is_file():
        raise DataError(f"{path}: captions file not found; check the path")
    raw_lines = path.read_bytes().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    first = next((line.strip() for line in raw_lines if line.strip()), b"")
    if path.suffix.lower() == ".json" or first.startswith(b"["):
        raise DataError(
            f"{path}: a JSON document, not captions: give JSON lines (one "
            '{"caption": ...} object a line, .jsonl) or plain text with one caption a line'
        )
    native = path.suffix == ".jsonl" or first.startswith(b"{")
    captions: list[CaptionLine] = []
    skipped: list[tuple[int, str]] = []

    def bad(number: int, reason: str) -> None:
        if not skip_bad:
            raise ParseError(f"{path}:{number}: {reason}; fix that line or pass --skip-bad")
        skipped.append((number, reason))

    for number, raw in enumerate(raw_lines, start=1):
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            bad(number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
            continue
        extra: dict[str, str] = {}
        if native:
            if not text.strip():
                continue
            try:
                record = json.loads(text)
                caption = record["caption"]
                extra = {k: str(record[k]) for k in ("video_id", "split") if k in record}
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    f"{path}:{number}: not a caption record ({exc}); each line needs a JSON "
                    'object with "caption"'
                ) from exc
        else:
            caption = text
        problem = caption_problem(caption)
        if problem:
            bad(number, f"caption is {problem}")
            continue
        captions.append(CaptionLine(number, caption, extra))
    return ReadResult(captions, skipped, native)


def _parse_sizes(text: str) -> dict[str, int]:
    sizes = {}
    for part in filter(None, text.split(",")):
        level, _, value = part.partition("=")
        try:
            sizes[level.strip()] = int(value)
        except ValueError as exc:
            raise DataError(f"--sizes {text!r}: expected level=K pairs like entity=512") from exc
    return sizes


def _print_stats(out: Path, sizes: dict[str, int] | None) -> None:
    """Label coverage and imbalance per level, read back from the written records (streamed:
    one pass builds the vocabularies, a second labels the captions)."""
    from mcsan.core.io import read_jsonl
    from mcsan.data.captions.attributes import AttributeVocabs, label_statistics
    from mcsan.data.captions.parse import ParsedCaption

    def records(split: str | None) -> Iterator[ParsedCaption]:
        for record in read_jsonl(out):
            if split is None or record.get("split") == split:
                yield ParsedCaption.from_json(record)

    split = "train" if any(True for _ in records("train")) else None
    vocabs = AttributeVocabs.build(records(split), sizes)
    stats = label_statistics([vocabs.labels(p) for p in records(split)], vocabs.sizes)
    source = "train split" if split else "all captions"
    print(f"attribute labels ({source}; top-K by caption frequency):")
    header = f"  {'level':9}{'K':>6}{'used':>6}{'pos/sample':>11}{'empty':>8}"
    print(header + f"{'freq min/med/max':>20}{'rarest half':>13}")
    for level, row in stats.items():
        freq = (
            f"{row['label_frequency_min']}/{row['label_frequency_median']:g}/"
            f"{row['label_frequency_max']}"
        )
        print(
            f"  {level:9}{row['size']:>6}{row['labels_used']:>6}"
            f"{row['positives_per_sample']:>11.2f}{row['empty_share']:>8.1%}"
            f"{freq:>20}{row['rarest_half_share']:>13.2%}"
        )


def run(args: argparse.Namespace) -> int:
    """Parse the captions file and stream the records to PARSED.jsonl; print a summary."""
    from mcsan.core.io import atomic_path
    from mcsan.data.captions.parse import CaptionParser, iter_parse_with_cache

    sizes = _parse_sizes(args.sizes) if args.sizes else None
    read = read_caption_file(args.captions, args.skip_bad)
    texts = [c.caption for c in read.captions]
    started = time.perf_counter()
    parser = CaptionParser(args.model)
    loaded = time.perf_counter()
    report: dict[str, int] = {}
    if args.cache is not None:
        parsed = iter_parse_with_cache(texts, args.cache, parser, args.batch_size, report=report)
    else:
        parsed = parser.iter_parse(texts, batch_size=args.batch_size)
    empty = {"entity": 0, "action": 0, "relation": 0}
    with atomic_path(args.out) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for line, record in zip(read.captions, parsed, strict=True):
            handle.write(json.dumps({**record.to_json(), **line.extra}, ensure_ascii=False) + "\n")
            empty["entity"] += not record.entities
            empty["action"] += not record.actions
            empty["relation"] += not record.relations
    seconds = time.perf_counter() - loaded
    count = len(read.captions)

    print(f"parsed {count} captions from {args.captions} -> {args.out}")
    if read.skipped:
        shown = ", ".join(f"line {n} ({why})" for n, why in read.skipped[:5])
        more = f" and {len(read.skipped) - 5} more" if len(read.skipped) > 5 else ""
        print(f"skipped {len(read.skipped)} bad captions: {shown}{more}")
    if report:
        print(f"cache {args.cache}: {report['cached']} reused, {report['parsed']} newly parsed")
    total = max(count, 1)
    print(
        "empty levels: " + ", ".join(f"{level} {n} ({n / total:.1%})" for level, n in empty.items())
    )
    rate = count / seconds if seconds > 0 else float("inf")
    print(
        f"time: model load {loaded - started:.1f} s, parse {seconds:.2f} s ({rate:,.0f} captions/s)"
    )
    if args.stats and count:
        _print_stats(args.out, sizes)
    return 0
