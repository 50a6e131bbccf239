"""Real-caption mode of ``bench_text.py``: the MSR-VTT train/val captions through ``mcsan parse``.

Converts the shared annotation archive to a native captions.jsonl (train / val splits from
the archive), runs ``mcsan parse`` on it in a child process (so peak RSS and CPU time are
the command's own), then streams the output back to count coverage, the error classes of
issue 15, and the relation-label coverage and imbalance of each label design.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from mcsan.core.io import read_jsonl
from mcsan.data.captions.attributes import RELATION_FORMS, AttributeVocabs, label_statistics
from mcsan.data.captions.parse import ParsedCaption
from mcsan.data.captions.repairs_real import ing_base

CONTRACTION_ACTIONS = frozenset({"s", "re", "t", "m"})
DETERMINERS = frozenset(
    "a an the this that these those his her its their my your our some any each every".split()
)
DESIGNS: dict[str, tuple[str, ...]] = {
    "triplets only (before)": ("triplet",),
    "triplet + predicate": ("triplet", "predicate"),
    "factored triplets": ("triplet", "predicate_object", "subject_predicate", "predicate"),
    "factored + intransitive": (
        "triplet",
        "predicate_object",
        "subject_predicate",
        "predicate",
        "intransitive",
    ),
    "factored + intransitive + preposition (default)": RELATION_FORMS,
}


def write_native(archive: Path, out: Path, limit: int | None) -> int:
    """The archive's captions as a native captions.jsonl (``validate`` becomes ``val``)."""
    with zipfile.ZipFile(archive) as bundle:
        data = json.loads(bundle.read("train_val_videodatainfo.json"))
    split = {
        v["video_id"]: ("val" if v["split"] == "validate" else v["split"]) for v in data["videos"]
    }
    sentences = data["sentences"][:limit] if limit else data["sentences"]
    with out.open("w", encoding="utf-8") as handle:
        for s in sentences:
            record = {
                "video_id": s["video_id"],
                "caption": s["caption"],
                "split": split[s["video_id"]],
            }
            handle.write(json.dumps(record) + "\n")
    return len(sentences)


def run_parse(captions: Path, out: Path, cache: Path | None) -> dict[str, float]:
    """Run ``mcsan parse`` as a child; its wall time, CPU seconds and peak RSS (MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        sys.executable,
        "-m",
        "mcsan.cli",
        "parse",
        "--captions",
        str(captions),
        "--out",
        str(out),
    ]
    if cache is not None:
        command += ["--cache", str(cache)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "stdout": done.stdout,
    }


def _records(path: Path, split: str | None = None) -> Iterator[ParsedCaption]:
    for record in read_jsonl(path):
        if split is None or record.get("split") == split:
            yield ParsedCaption.from_json(record)


def _has_verb_word(record: ParsedCaption, verbs: frozenset[str]) -> bool:
    """A verb is seen when the parser found one, or a word is an -ing verb form, or a word
    is an -s / base form of a verb the parser found as an action somewhere in the file."""
    if record.actions:
        return True
    return any(ing_base(t, verbs) for t in record.tokens) or any(
        t in verbs or (t.endswith("s") and t[:-1] in verbs) for t in record.tokens
    )


def error_counts(path: Path, action_lemmas: frozenset[str]) -> dict[str, float]:
    """Counts of the issue's error classes and level coverage over all records of ``path``."""
    lexicon = _verb_lexicon()
    c: Counter[str] = Counter()
    for record in _records(path):
        actions = {a.lemma for a in record.actions}
        c["captions"] += 1
        c["with_entity"] += bool(record.entities)
        c["with_action"] += bool(record.actions)
        c["with_relation"] += bool(record.relations)
        c["action_contraction"] += bool(actions & CONTRACTION_ACTIONS)
        if "animated" in record.tokens or "animate" in record.tokens:
            c["animated_captions"] += 1
            c["animate_action"] += "animate" in actions
        starts = {e.start for e in record.entities}
        c["ing_entity"] += any(
            ing_base(record.tokens[e.start], lexicon)
            and e.start - 1 in starts
            and e.start + 1 not in starts
            for e in record.entities
        )
        args = [e.lemma for e in record.entities] + [
            x for r in record.relations for x in (r.subject.lemma, r.object.lemma)
        ]
        c["determiner_argument"] += any(a in DETERMINERS for a in args)
        if _has_verb_word(record, action_lemmas):
            c["with_verb"] += 1
            c["with_verb_and_action"] += bool(record.actions)
    return dict(c)


def _verb_lexicon() -> frozenset[str]:
    from mcsan.data.captions.parse import CaptionParser

    return CaptionParser().verbs


def action_lemmas(path: Path, min_count: int = 5) -> frozenset[str]:
    """Action lemmas the parser found at least ``min_count`` times in the file."""
    counts: Counter[str] = Counter()
    for record in _records(path):
        counts.update(a.lemma for a in record.actions)
    return frozenset(k for k, n in counts.items() if n >= min_count)


def label_designs(path: Path, size: int = 512) -> dict[str, dict[str, dict[str, float]]]:
    """Relation-label coverage and imbalance per design (vocabulary built on train)."""
    out = {}
    for name, forms in DESIGNS.items():
        vocabs = AttributeVocabs.build(_records(path, "train"), {"relation": size}, forms)
        row = {}
        for split in ("train", "val"):
            labels = [vocabs.labels(p) for p in _records(path, split)]
            row[split] = label_statistics(labels, {"relation": vocabs.sizes["relation"]})[
                "relation"
            ]
        out[name] = row
    return out


def all_levels(path: Path) -> dict[str, dict[str, float]]:
    """Label statistics of every level with the default sizes and design (train split)."""
    vocabs = AttributeVocabs.build(_records(path, "train"))
    labels = [vocabs.labels(p) for p in _records(path, "train")]
    return label_statistics(labels, vocabs.sizes)
