"""Caption parsing throughput and yield.

Measures, on the same ~3,000 generated captions (half shape-world, half MSR-VTT-style):
bare spaCy ``nlp.pipe`` (the floor), ``CaptionParser.parse`` (cold) and ``parse_with_cache``
(second run, every caption cached). Then, on the hand-written real-style captions of
``tests/test_text.py``, the share of captions with >= 1 action and >= 1 relation.

With ``--real ../shared/data/msrvtt/train_val_annotation.zip [--limit N]``: the real-caption
mode (:mod:`text_real`): ``mcsan parse`` on the MSR-VTT train/val captions in a child process
(throughput per wall and CPU second, peak RSS), coverage per level, the error classes of
issue 15, relation-label coverage and imbalance per label design, and F1 on the hand-made
gold of ``tests/data/captions/real_gold.txt``.

Run: ``.venv/bin/python benchmarks/bench_text.py [--n 3000] [--real ZIP] [--out /tmp/text.md]``;
results go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data" / "captions"))
sys.path.insert(0, str(ROOT / "benchmarks"))
GOLD = ROOT / "tests" / "data" / "captions" / "real_gold.txt"

COLOURS = "red green blue yellow orange purple pink white gray brown".split()
SHAPES = "ball circle cube square box star triangle".split()
SIZES = ["", "small ", "big ", "tiny "]
TWO_PLACE = [
    "is moving toward",
    "moves toward",
    "moves away from",
    "is colliding with",
    "collides with",
    "jumps over",
    "is to the left of",
    "is to the right of",
    "is above",
    "is below",
    "spins next to",
    "is in front of",
    "is on top of",
]
ONE_PLACE = ["is growing", "is shrinking", "is blinking", "is spinning", "is hopping", "spins"]
PASSIVE = ["is being approached by", "is pushed by", "is being hit by", "is followed by"]

PEOPLE = "a man|a woman|a girl|a boy|two men|a chef|a group of people|someone|a dog|kids".split("|")
REAL = [
    "{p} is playing {o} on the {place}",
    "{p} plays {o} in the {place}",
    "{p} is cooking {o} in a kitchen",
    "{p} in a {c} shirt is talking about {o}",
    "{p} cuts {o} and {o2}",
    "there is {p} holding {o}",
    "{p} is riding a horse in the {place}",
    "a video of {p} dancing",
    "cartoon show for kids",
    "{p} is being interviewed by a reporter",
    "{p} walks next to a {c} car",
]
OBJECTS = "guitar|a ball|onions|garlic|the piano|a phone|food|a cake|cars|soccer".split("|")
PLACES = "stage street park field beach room".split()


def _thing(rng: random.Random) -> str:
    return (
        f"{rng.choice(['a', 'the'])} {rng.choice(SIZES)}{rng.choice(COLOURS)} {rng.choice(SHAPES)}"
    )


def generate(n: int, seed: int = 0) -> list[str]:
    """``n`` captions: half shape-world (synthetic), half MSR-VTT-style templates."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            kind = rng.random()
            if kind < 0.6:
                out.append(f"{_thing(rng)} {rng.choice(TWO_PLACE)} {_thing(rng)}")
            elif kind < 0.8:
                out.append(f"{_thing(rng)} {rng.choice(ONE_PLACE)}")
            else:
                out.append(f"{_thing(rng)} {rng.choice(PASSIVE)} {_thing(rng)}")
        else:
            template = rng.choice(REAL)
            out.append(
                template.format(
                    p=rng.choice(PEOPLE),
                    o=rng.choice(OBJECTS),
                    o2=rng.choice(OBJECTS),
                    place=rng.choice(PLACES),
                    c=rng.choice(COLOURS),
                )
            )
    return out


def world_agreement(caption_parser, scenes: int = 400) -> tuple[int, dict[str, float]]:
    """Share of the synthetic world's captions whose parsed levels equal its ground truth."""
    from mcsan.world.describe import write_captions
    from mcsan.world.splits import assign_splits, make_holdout, sample_scene

    holdout, splits = make_holdout(0), assign_splits(scenes, 0)
    truths = [
        t
        for i in range(scenes)
        for t in write_captions(sample_scene(0, i, splits[i], holdout, 16), 0)
    ]
    parsed = caption_parser.parse([t.caption for t in truths])
    hits = {"entity": 0, "action": 0, "relation": 0}
    for truth, record in zip(truths, parsed, strict=True):
        hits["entity"] += sorted(e.lemma for e in record.entities) == sorted(truth.entities)
        hits["action"] += sorted(a.lemma for a in record.actions) == sorted(truth.actions)
        keys = sorted(r.key for r in record.relations)
        hits["relation"] += keys == sorted("|".join(x) for x in truth.relations)
    return len(truths), {level: n / len(truths) for level, n in hits.items()}


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def gold_scores(caption_parser) -> dict[str, dict[str, float]]:
    """Precision / recall / F1 per level on the hand-made real-style gold."""
    from mcsan.data.captions.gold import read_gold, score

    gold = read_gold(GOLD)
    return score(caption_parser.parse([g.caption for g in gold]), gold)


def _label_row(name: str, split: str, st: dict[str, float]) -> str:
    return (
        f"| {name} | {split} | {1 - st['empty_share']:.1%} | {st['positives_per_sample']:.2f} | "
        f"{st['label_frequency_min']}/{st['label_frequency_median']:g}/"
        f"{st['label_frequency_max']} | {st['rarest_half_share']:.1%} |"
    )


def real_mode(archive: Path, limit: int | None, cached: bool, keep: Path | None) -> list[str]:
    """Run the real-caption benchmark; the markdown lines of its report."""
    from text_real import (
        action_lemmas,
        all_levels,
        error_counts,
        label_designs,
        run_parse,
        write_native,
    )

    from mcsan.data.captions.parse import CaptionParser

    with tempfile.TemporaryDirectory() as tmp:
        native, out, cache = Path(tmp) / "captions.jsonl", Path(tmp) / "parsed.jsonl", None
        n = write_native(archive, native, limit)
        if cached:
            cache = Path(tmp) / "cache.jsonl"
        run = run_parse(native, out, cache)
        rerun = run_parse(native, out, cache) if cached else None
        counts = error_counts(out, action_lemmas(out))
        designs, levels = label_designs(out), all_levels(out)
        if keep is not None:
            shutil.copyfile(out, keep)
    caption_parser = CaptionParser()
    gold = gold_scores(caption_parser)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    c = counts
    lines = [
        "# Text: real captions (MSR-VTT train/val)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_text.py --real {archive}"
        + (f" --limit {limit}" if limit else "")
        + ("` --cache" if cached else "`")
        + "  ",
        f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} cores, no GPU, "
        f"load average {load:.1f}; model {caption_parser.signature}.",
        "",
        f"`mcsan parse` on {n:,} captions (child process, model load included): wall "
        f"{run['wall_s']:.1f} s ({_rate(n, run['wall_s']):,.0f} captions/s), CPU "
        f"{run['cpu_s']:.1f} s ({_rate(n, run['cpu_s']):,.0f} captions per CPU-s), "
        f"peak RSS {run['peak_rss_mb']:.0f} MB.",
    ]
    if rerun:
        lines.append(
            f"Rerun with every caption cached: wall {rerun['wall_s']:.1f} s, CPU "
            f"{rerun['cpu_s']:.1f} s, peak RSS {rerun['peak_rss_mb']:.0f} MB."
        )
    share = {k: v / max(c["captions"], 1) for k, v in c.items()}
    lines += [
        "",
        f"Coverage: >= 1 entity {share['with_entity']:.1%}, >= 1 action {share['with_action']:.1%}, "
        f">= 1 relation {share['with_relation']:.1%}; captions with a verb that have >= 1 action: "
        f"{c.get('with_verb_and_action', 0) / max(c.get('with_verb', 0), 1):.1%} "
        f"({c.get('with_verb', 0):,} captions with a verb).",
        "",
        "| error class | captions |",
        "|---|---:|",
        f"| action `s`/`re`/`t`/`m` | {c.get('action_contraction', 0)} |",
        f'| action `animate` (of {c.get("animated_captions", 0)} with "animated") | '
        f"{c.get('animate_action', 0)} ({c.get('animate_action', 0) / max(c.get('animated_captions', 0), 1):.1%}) |",
        f"| `-ing` verb form as an entity right after a noun ('people singing'), not a compound modifier | {c.get('ing_entity', 0)} |",
        f"| determiner / possessive as entity, subject or object | {c.get('determiner_argument', 0)} |",
        "",
        "Relation labels (K = 512, vocabulary from train; share of captions with >= 1 label, "
        "positives per caption, label frequency min/median/max, share of positives on the "
        "rarer half of the labels):",
        "",
        "| design | split | with label | pos/caption | freq min/med/max | rarer half |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, rows in designs.items():
        lines += [_label_row(name, split, st) for split, st in rows.items()]
    lines += [_label_row(f"default design: {level}", "train", st) for level, st in levels.items()]
    lines += [
        "",
        f"Hand-made gold ({GOLD.name}): "
        + ", ".join(f"{level} F1 {row['f1']:.3f}" for level, row in gold.items())
        + " (relation: a preposition folded into the predicate counts as right).",
        "",
    ]
    return lines


def main() -> None:
    """Run the benchmark and write the markdown results."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_text.md"))
    parser.add_argument("--real", type=Path, default=None, help="MSR-VTT train_val zip")
    parser.add_argument("--limit", type=int, default=None, help="first N real captions only")
    parser.add_argument("--cache", action="store_true", help="real mode: also time a cached rerun")
    parser.add_argument("--keep", type=Path, default=None, help="real mode: keep PARSED.jsonl")
    args = parser.parse_args()
    if args.real is not None:
        lines = real_mode(args.real, args.limit, args.cache, args.keep)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines), encoding="utf-8")
        print("\n".join(lines))
        return

    from test_parse import EXPECTED  # the hand-written captions

    from mcsan.data.captions.parse import CaptionParser, empty_level_counts, parse_with_cache

    captions = generate(args.n)
    t0 = time.perf_counter()
    caption_parser = CaptionParser()
    load_s = time.perf_counter() - t0
    nlp = caption_parser.nlp
    list(nlp.pipe(captions[:200], batch_size=256))  # warm-up

    def timed(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        return result, time.perf_counter() - wall, time.process_time() - cpu

    _, bare_s, bare_cpu = timed(lambda: list(nlp.pipe(captions, batch_size=256)))
    parsed, cold_s, cold_cpu = timed(lambda: caption_parser.parse(captions, batch_size=256))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.jsonl"
        _, first_s, first_cpu = timed(lambda: parse_with_cache(captions, cache, caption_parser))
        _, cached_s, cached_cpu = timed(lambda: parse_with_cache(captions, cache, caption_parser))
    empty = empty_level_counts(parsed)

    real = [case[0] for case in EXPECTED if case[4] == "real"]
    real_parsed = [p for p in caption_parser.parse(real) if p is not None]
    with_action = sum(bool(p.actions) for p in real_parsed) / len(real_parsed)
    with_relation = sum(bool(p.relations) for p in real_parsed) / len(real_parsed)
    synthetic = [p for p in parsed[::2] if p is not None]
    syn_rel = sum(bool(p.relations) for p in synthetic) / len(synthetic)

    world_n, world = world_agreement(caption_parser)
    n = len(captions)
    rows = [
        ("bare spaCy nlp.pipe (floor)", bare_s, bare_cpu),
        ("CaptionParser.parse (cold)", cold_s, cold_cpu),
        ("parse_with_cache, empty cache (parse + write)", first_s, first_cpu),
        ("parse_with_cache, all cached", cached_s, cached_cpu),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Text: caption parsing",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_text.py --n {n}`  ",
        f"Date: {datetime.date.today().isoformat()}; machine: {os.cpu_count()} cores, no GPU, "
        f"{platform.python_implementation()} {platform.python_version()}; model "
        f"{caption_parser.signature} (load {load_s:.1f} s, not in the timings).",
        "",
        f"{n} generated captions (half shape-world, half MSR-VTT-style templates), batch 256:",
        "",
        "| path | wall s | captions/s (wall) | CPU s | captions per CPU-s |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {sec:.2f} | {_rate(n, sec):,.0f} | {cpu:.2f} | {_rate(n, cpu):,.0f} |"
            for name, sec, cpu in rows
        ),
        "",
        f"Load average during the run: {load:.1f} (the 2 cores are shared with other work; "
        "wall-clock rates fall with load, CPU-time rates much less).",
        f"Rule overhead over bare spaCy: {100 * (cold_cpu / bare_cpu - 1):.0f}% CPU time.",
        f"Empty levels on the generated set: entity {empty['entity']}, action {empty['action']}, "
        f"relation {empty['relation']} of {n}; shape-world captions with >= 1 relation: "
        f"{syn_rel:.1%}.",
        "",
        f"Hand-written real-style captions of tests/test_text.py ({len(real_parsed)}): "
        f">= 1 action {with_action:.1%}, >= 1 relation {with_relation:.1%} (every one's content "
        "is pinned by the tests).",
        "",
        f"Synthetic world (mcsan.world, 400 scenes, {world_n} captions with ground truth): "
        f"parsed levels equal the truth for entity {world['entity']:.1%}, action "
        f"{world['action']:.1%}, relation {world['relation']:.1%} of captions.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
