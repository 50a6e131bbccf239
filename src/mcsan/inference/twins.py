"""Twin accuracy: does a model tell a clip from its one-level twin?

A twin set (``twins.jsonl`` of the embedded default) pairs a test clip with clips rendered
with everything equal except one level: an entity (an object's colour or shape), an action,
or a relation (changed or its roles swapped). For each (original, twin) pair and each
caption of the original, the model is right when it scores the original strictly above the
twin (a tie counts as wrong). Twin accuracy of a level is the share of right decisions over
all such (caption, twin) pairs of that level: 50% is chance, 100% means the model always
sees the difference at that level.

Many captions of a clip do not mention what its twin changed ("a pink star" when the twin
changed the other object's action): for them both clips are equally right, which pulls the
accuracy towards 50%. When the dataset has ``captions_truth.jsonl`` (the embedded default
does), a second number, ``focused_accuracy``, counts only the captions that mention the
changed object, action or relation.

Each twin also has a kind (:func:`twin_kind`): "changed" (one fact differs), "swapped"
(subject and object of a relation exchanged, static or dynamic) or "binding" (two objects
exchange their colours or their actions, so the same words are true of both clips, bound
differently). Results are given per level, per ``level/kind`` and over all twins.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import DataError
from mcsan.core.io import read_jsonl
from mcsan.data.native import read_captions
from mcsan.inference.encoder import Encoder
from mcsan.world.twin_truth import TWIN_KINDS as TWIN_KINDS  # re-exported
from mcsan.world.twin_truth import TwinPair, mentions_change, twin_kind

TWINS_FILE = "twins.jsonl"
TRUTH_FILE = "captions_truth.jsonl"
MATCHER_SCORES = ("reranked", "first", "match")
"""Scores from the binding matcher (``model.rerank``): ``fused + weight * match`` (both clips
of a twin pair as one shortlist; the weights of the encoder's shortlist policy,
:mod:`mcsan.evaluate.shortlist`), the first stage ``first = fused + late_weight * late``
alone (:mod:`mcsan.evaluate.first_stage`), or the match score alone."""


def read_twins(root: str | os.PathLike[str]) -> list[TwinPair]:
    """The twin pairs of a dataset (``<root>/twins.jsonl``); DataError if absent or malformed."""
    path = Path(root) / TWINS_FILE
    pairs = []
    for number, record in enumerate(read_jsonl(path), start=1):
        try:
            pairs.append(
                TwinPair(
                    record["original_id"], record["twin_id"], record["level"],
                    dict(record.get("change") or {}),
                )
            )  # fmt: skip
        except KeyError as exc:
            raise DataError(
                f"{path}: record {number} lacks {exc.args[0]!r}; regenerate with `mcsan synth`"
            ) from exc
    return pairs


def _read_truth(root: Path) -> dict[str, list[dict[str, Any]]] | None:
    """Per-video caption ground truth in captions.jsonl order, or None when absent."""
    path = root / TRUTH_FILE
    if not path.is_file():
        return None
    truth: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_jsonl(path):
        truth[record["video_id"]].append(record)
    return truth


def twin_accuracy(
    encoder: Encoder,
    root: str | os.PathLike[str],
    features: Mapping[str, Mapping[str, np.ndarray]],
    score: str = "fused",
) -> dict[str, dict[str, Any]]:
    """Twin accuracy per twin level, per ``level/kind`` (kinds: :data:`TWIN_KINDS`) and
    over ``"all"``, from the fused score of ``encoder`` (or from one level's score alone,
    ``score="relation"`` etc.: which level tells the twins apart; or one of
    :data:`MATCHER_SCORES`).

    ``features`` maps every original and twin id to its ``{stream: (T, ...)}`` arrays.
    Returns ``{level: {"accuracy": percent, "pairs": n_decisions, "twins": n_twins}}``, plus
    ``focused_accuracy`` and ``focused_pairs`` when the caption ground truth is available.
    """
    return twin_accuracies(encoder, root, features, (score,))[score]


def twin_accuracies(
    encoder: Encoder,
    root: str | os.PathLike[str],
    features: Mapping[str, Mapping[str, np.ndarray]],
    scores: tuple[str, ...],
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`twin_accuracy` for each of ``scores``: the clips and captions are encoded once
    and the matcher scores each (caption, clip) pair once per set of terms (the first stage
    with all the matcher's terms and the re-ranked score share them)."""
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
    video_emb = encoder.encode_features([features[vid] for vid in clip_ids])
    texts = [c for vid in originals for c in captions[vid]]
    rows: dict[str, list[int]] = {}
    start = 0
    for vid in originals:
        rows[vid] = list(range(start, start + len(captions[vid])))
        start += len(captions[vid])
    level_scores = encoder.score(encoder.encode_captions(texts), video_emb)
    matcher = _PairMatcher(encoder, texts, [features[vid] for vid in clip_ids],
                           [(r, column[vid]) for pair in pairs if pair.original_id in rows
                            for r in rows[pair.original_id]
                            for vid in (pair.original_id, pair.twin_id)])  # fmt: skip
    truth = _read_truth(Path(root))
    results = {}
    for score in scores:
        if score in MATCHER_SCORES:
            chosen = matcher.scores(score, level_scores["fused"])
        elif score not in level_scores:
            raise DataError(f"no {score!r} score; the model scores {sorted(level_scores)}")
        else:
            chosen = level_scores[score]
        results[score] = _decisions(pairs, rows, column, chosen, captions, truth)
    return results


def _decisions(pairs: list[TwinPair], rows: Mapping[str, list[int]],
               column: Mapping[str, int], scores: np.ndarray,
               captions: Mapping[str, list[str]],
               truth: Mapping[str, list[dict[str, Any]]] | None
               ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The accuracies (:func:`_accuracies`) of ``scores`` (captions x clips) on the pairs."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pair in pairs:
        if pair.original_id not in rows:
            continue
        r = rows[pair.original_id]
        wins = scores[r, column[pair.original_id]] > scores[r, column[pair.twin_id]]
        focus = None
        known = truth.get(pair.original_id, []) if truth is not None else []
        if [t.get("caption") for t in known] == captions[pair.original_id]:
            focus = np.array([mentions_change(t, pair) for t in known], bool)
        for level in (pair.level, f"{pair.level}/{twin_kind(pair)}", "all"):
            tally = counts[level]
            tally["right"] += int(wins.sum())
            tally["pairs"] += len(r)
            tally["twins"] += 1
            if focus is not None:
                tally["focused_right"] += int(wins[focus].sum())
                tally["focused_pairs"] += int(focus.sum())
    return _accuracies(counts)


def _accuracies(counts: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Any]]:
    """Per level (twin levels, ``level/kind``, then ``all``): accuracy in percent over all
    captions and over the captions that mention the change (``focused_*``)."""
    results: dict[str, dict[str, Any]] = {}
    for level in sorted(counts, key=lambda name: (name == "all", name.split("/")[0], name)):
        tally = counts[level]
        results[level] = {
            "accuracy": 100.0 * tally["right"] / tally["pairs"],
            "pairs": tally["pairs"],
            "twins": tally["twins"],
        }
        if tally["focused_pairs"]:
            results[level]["focused_accuracy"] = (
                100.0 * tally["focused_right"] / tally["focused_pairs"]
            )
            results[level]["focused_pairs"] = tally["focused_pairs"]
    return results


class _PairMatcher:
    """The :data:`MATCHER_SCORES` of the (caption, clip) pairs the twin decisions read,
    each set of matcher terms scored once."""

    def __init__(self, encoder: Encoder, texts: list[str],
                 clips: list[Mapping[str, np.ndarray]], needed: list[tuple[int, int]]
                 ) -> None:  # fmt: skip
        self.encoder, self.texts, self.clips = encoder, texts, clips
        self.rows, self.cols = (np.array(x, dtype=np.int64) for x in zip(*needed, strict=True))
        self._by_terms: dict[tuple[str, ...] | None, np.ndarray] = {}

    def _match(self, terms: tuple[str, ...] | None) -> np.ndarray:
        """The mean of ``terms`` (None: all the matcher's) per needed pair, computed once."""
        if terms is not None and set(terms) == set(getattr(self.encoder, "match_terms", ())):
            terms = None  # the same mean as the whole matcher's
        if terms not in self._by_terms:
            self._by_terms[terms] = self.encoder.match_pairs(self.texts, self.clips, self.rows,
                                                             self.cols, terms)  # fmt: skip
        return self._by_terms[terms]

    def scores(self, score: str, fused: np.ndarray) -> np.ndarray:
        """``fused`` with the needed entries replaced by the re-ranked, first-stage (or
        match) score."""
        encoder = self.encoder
        if not getattr(encoder, "has_matcher", False):
            raise DataError(f"score {score!r} needs a model with a binding matcher "
                            "(train with --set model.rerank=true)")  # fmt: skip
        policy = encoder.shortlist
        out = np.zeros_like(fused) if score == "match" else np.array(fused, copy=True)
        if score == "first":
            late_terms = tuple(getattr(encoder, "late_terms", ()))
            if policy.late and late_terms:
                out[self.rows, self.cols] += policy.late_weight * self._match(late_terms)
            return out
        weight = 1.0 if score == "match" else policy.weight
        out[self.rows, self.cols] += weight * self._match(None)
        return out


def evaluate_twins(
    checkpoint: str | os.PathLike[str], root: str | os.PathLike[str], score: str = "fused"
) -> dict[str, dict[str, Any]]:
    """Twin accuracy of a trained checkpoint on the twin set of dataset ``root``, read from
    the feature set the checkpoint was trained with (``score``: see :func:`twin_accuracy`)."""
    return evaluate_twin_scores(checkpoint, root, (score,))[score]


def evaluate_twin_scores(
    checkpoint: str | os.PathLike[str], root: str | os.PathLike[str], scores: tuple[str, ...],
    rerank_weight: float | None = None, late_weight: float | None = None,
    late_terms: tuple[str, ...] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`evaluate_twins` for several ``scores`` (model and features loaded once);
    ``rerank_weight`` / ``late_weight`` / ``late_terms`` replace the checkpoint's for the
    ``reranked`` and ``first`` scores."""
    from mcsan.data.native import feature_path
    from mcsan.data.video.store import FeatureStore
    from mcsan.inference.retriever import Retriever

    retriever = Retriever.from_checkpoint(checkpoint)
    retriever = retriever.with_shortlist(retriever.shortlist.replaced(
        weight=rerank_weight, late_weight=late_weight, late_terms=late_terms))
    ids = sorted({vid for p in read_twins(root) for vid in (p.original_id, p.twin_id)})
    with FeatureStore.open(feature_path(root, retriever.feature_set)) as store:
        features = store.read_all(ids)
    return twin_accuracies(retriever, root, features, scores)


def wilson_interval(right: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (in %) for ``right`` successes out of ``n``."""
    if n <= 0:
        return (0.0, 100.0)
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (100 * (centre - half), 100 * (centre + half))


def twin_cell(entry: Mapping[str, Any] | None, key: str = "focused_accuracy",
              n_key: str = "focused_pairs") -> str:  # fmt: skip
    """``accuracy [low-high]`` (95% Wilson interval over caption-twin pairs), ``-`` if absent."""
    if entry is None or key not in entry:
        return "-"
    low, high = wilson_interval(entry[key] * entry[n_key] / 100, entry[n_key])
    return f"{entry[key]:.1f} [{low:.0f}-{high:.0f}]"


def format_twin_table(twins: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """Plain-text twin table: one row per twin kind, per score (e.g. fused, reranked) the
    accuracy on captions that mention the change and on all captions, with 95% intervals,
    then the twin and pair counts."""
    kinds = sorted({kind for acc in twins.values() for kind in acc},
                   key=lambda name: (name == "all", name))  # fmt: skip
    header = ["twin kind"]
    for name in twins:
        header += [f"{name}: mention", f"{name}: all"]
    header += ["twins", "pairs (mention/all)"]
    counts = next(iter(twins.values()), {})
    rows = []
    for kind in kinds:
        row = [kind]
        for acc in twins.values():
            row += [twin_cell(acc.get(kind)), twin_cell(acc.get(kind), "accuracy", "pairs")]
        entry = counts.get(kind, {})
        row += [str(entry.get("twins", "-")),
                f"{entry.get('focused_pairs', '-')}/{entry.get('pairs', '-')}"]  # fmt: skip
        rows.append(row)
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w)
                       for c, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *rows]]  # fmt: skip
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
