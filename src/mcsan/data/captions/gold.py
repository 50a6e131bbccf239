"""Hand-made gold for captions, and precision / recall / F1 of a parse against it.

Gold file format (UTF-8 text, ``#`` starts a comment line)::

    caption || entity lemmas || action lemmas || subject|predicate|object ; ...

Entities and actions are space-separated lemmas. Scores are micro-averaged over the
captions, counting each item as often as it occurs (multisets). Relations are scored two
ways: ``relation_strict`` (the whole key must match) and ``relation`` where a preposition
folded into the predicate counts as right: a triplet whose predicate is "verb preposition"
("man | talk about | car") is also read as (verb, preposition, object)
("talk | about | car"), and a gold and a predicted triplet match when either reading does.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcsan.core.errors import DataError
from mcsan.data.captions.parse import ParsedCaption


@dataclass(frozen=True)
class GoldCaption:
    """One caption with its gold entities, actions and relation keys."""

    caption: str
    entities: tuple[str, ...]
    actions: tuple[str, ...]
    relations: tuple[str, ...]


def read_gold(path: str | os.PathLike[str]) -> list[GoldCaption]:
    """Read a gold file (format in the module docstring); bad lines raise ``DataError``."""
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split("||")]
        relations = (
            tuple(r.strip() for r in parts[3].split(";") if r.strip()) if len(parts) == 4 else ()
        )
        if len(parts) != 4 or any(r.count("|") != 2 for r in relations):
            raise DataError(
                f"{path}:{number}: expected 'caption || entities || actions || s|p|o ; ...'"
            )
        out.append(
            GoldCaption(parts[0], tuple(parts[1].split()), tuple(parts[2].split()), relations)
        )
    return out


def _folded(key: str) -> str:
    """(s, "verb prep", o) read as (verb, prep, o); other keys unchanged."""
    subject, predicate, obj = key.split("|")
    words = predicate.split()
    if len(words) >= 2:
        return f"{words[0]}|{' '.join(words[1:])}|{obj}"
    return key


def _match_relations(predicted: list[str], gold: list[str]) -> int:
    """Matches between two triplet multisets, exact readings first, then folded ones."""
    pred, want = Counter(predicted), Counter(gold)
    exact = pred & want
    pred, want = pred - exact, want - exact
    folded = Counter(_folded(k) for k in pred.elements()) & Counter(
        _folded(k) for k in want.elements()
    )
    return sum(exact.values()) + sum(folded.values())


def _prf(hits: int, predicted: int, gold: int) -> dict[str, float]:
    precision = hits / predicted if predicted else 1.0
    recall = hits / gold if gold else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def score(
    parsed: Sequence[ParsedCaption], gold: Sequence[GoldCaption]
) -> dict[str, dict[str, float]]:
    """Micro precision/recall/F1 per level (``entity``, ``action``, ``relation``,
    ``relation_strict``) of ``parsed`` against ``gold`` (same order)."""
    if len(parsed) != len(gold):
        raise DataError(f"{len(parsed)} parsed captions for {len(gold)} gold captions")
    totals = {level: [0, 0, 0] for level in ("entity", "action", "relation", "relation_strict")}
    for record, truth in zip(parsed, gold, strict=True):
        pairs = {
            "entity": ([s.lemma for s in record.entities], list(truth.entities)),
            "action": ([s.lemma for s in record.actions], list(truth.actions)),
        }
        for level, (pred, want) in pairs.items():
            totals[level][0] += sum((Counter(pred) & Counter(want)).values())
            totals[level][1] += len(pred)
            totals[level][2] += len(want)
        keys = [r.key for r in record.relations]
        want = list(truth.relations)
        totals["relation"][0] += _match_relations(keys, want)
        totals["relation_strict"][0] += sum((Counter(keys) & Counter(want)).values())
        for level in ("relation", "relation_strict"):
            totals[level][1] += len(keys)
            totals[level][2] += len(want)
    return {level: _prf(*counts) for level, counts in totals.items()}
