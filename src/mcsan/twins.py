"""Twin accuracy: does a model tell a clip from its one-level twin?

A twin set (``twins.jsonl`` of the embedded default) pairs a test clip with clips rendered
with everything equal except one level: an entity (an object's colour or shape), an action,
or a relation (changed or its roles swapped). For each (original, twin) pair and each
caption of the original, the model is right when it scores the original strictly above the
twin (a tie counts as wrong). Twin accuracy of a level is the share of right decisions over
all such (caption, twin) pairs of that level: 50% is chance, 100% means the model always
sees the difference at that level.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcsan.data.native import read_captions
from mcsan.errors import DataError
from mcsan.io import read_jsonl

TWINS_FILE = "twins.jsonl"


class Scorer(Protocol):
    """What twin accuracy needs of a model (``mcsan.inference.Retriever`` fits)."""

    def encode_captions(self, captions: Sequence[str]) -> dict[str, np.ndarray]: ...

    def encode_features(
        self, features: Sequence[Mapping[str, np.ndarray]]
    ) -> dict[str, np.ndarray]: ...

    def score(
        self, text_emb: Mapping[str, np.ndarray], video_emb: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class TwinPair:
    """One original clip and one twin that differs from it at ``level``."""

    original_id: str
    twin_id: str
    level: str


def read_twins(root: str | os.PathLike[str]) -> list[TwinPair]:
    """The twin pairs of a dataset (``<root>/twins.jsonl``); DataError if absent or malformed."""
    path = Path(root) / TWINS_FILE
    pairs = []
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            pairs.append(TwinPair(record["original_id"], record["twin_id"], record["level"]))
        except KeyError as exc:
            raise DataError(
                f"{path}: record {number} lacks {exc.args[0]!r}; regenerate with `mcsan synth`"
            ) from exc
    return pairs


def twin_accuracy(
    scorer: Scorer,
    root: str | os.PathLike[str],
    features: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, dict[str, Any]]:
    """Twin accuracy per twin level (and ``"all"``), from the fused score of ``scorer``.

    ``features`` maps every original and twin id to its ``{stream: (T, ...)}`` arrays.
    Returns ``{level: {"accuracy": percent, "pairs": n_decisions, "twins": n_twins}}``.
    """
    pairs = read_twins(root)
    captions: dict[str, list[str]] = defaultdict(list)
    for record in read_captions(root):
        captions[record.video_id].append(record.caption)
    missing = sorted(
        {vid for p in pairs for vid in (p.original_id, p.twin_id) if vid not in features}
    )
    if missing:
        raise DataError(
            f"{root}: no features for {len(missing)} twin-set clips (first: {missing[0]}); "
            "extract features of every clip in videos/"
        )
    originals = sorted({p.original_id for p in pairs if captions.get(p.original_id)})
    if not originals:
        raise DataError(f"{root}: no twin original has captions; the twin set is unusable")
    clip_ids = sorted({*originals, *(p.twin_id for p in pairs if p.original_id in originals)})
    column = {vid: j for j, vid in enumerate(clip_ids)}
    video_emb = scorer.encode_features([features[vid] for vid in clip_ids])
    texts = [c for vid in originals for c in captions[vid]]
    rows: dict[str, list[int]] = {}
    start = 0
    for vid in originals:
        rows[vid] = list(range(start, start + len(captions[vid])))
        start += len(captions[vid])
    fused = scorer.score(scorer.encode_captions(texts), video_emb)["fused"]

    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    twins: dict[str, int] = defaultdict(int)
    for pair in pairs:
        if pair.original_id not in rows:
            continue
        r = rows[pair.original_id]
        wins = fused[r, column[pair.original_id]] > fused[r, column[pair.twin_id]]
        for level in (pair.level, "all"):
            right[level] += int(wins.sum())
            total[level] += len(r)
            twins[level] += 1
    return {
        level: {
            "accuracy": 100.0 * right[level] / total[level],
            "pairs": total[level],
            "twins": twins[level],
        }
        for level in sorted(total, key=lambda name: (name == "all", name))
    }
