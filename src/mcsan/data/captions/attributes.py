"""Per-level attribute vocabularies and multi-hot labels (stored sparsely as index lists).

Levels: ``entity`` (entity lemmas), ``action`` (action lemmas), ``relation``. A vocabulary
holds the top-K items of the training captions by *caption frequency* (the number of
captions that contain the item), ties broken alphabetically. A caption's labels are the
sorted indices of its items in the vocabularies; a video's labels are the union over its
captions.

Relation items are *factored*: each triplet (s, p, o) of a caption yields the full key
``"s|p|o"`` and its back-offs ``"*|p|o"`` (predicate and object), ``"s|p|*"`` (subject and
predicate) and ``"*|p|*"`` (predicate alone); a predicate that folds a preposition into its
verb ("dog | run in | park") also gives the preposition's forms ``"*|in|*"`` and
``"*|in|park"``, and an action that heads no triplet ("a man is talking") gives its
intransitive predicate ``"*|talk|*"``; all compete in one top-K ranking, so the
frequent predicates ("in", "talk about", "play") and pairs take the label slots that rare
full triplets would leave empty. Real captions' triplets are long-tailed: with full keys
only, most MSR-VTT captions had no relation label at all. Which forms are used is
``relation_forms`` of :meth:`AttributeVocabs.build`; a vocabulary saved before the
factored design holds full keys only and still loads and labels as it did.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mcsan import ATTRIBUTE_LEVELS
from mcsan.core.errors import DataError
from mcsan.core.io import atomic_write_json, read_json
from mcsan.data.captions.parse import ParsedCaption

DEFAULT_SIZES: dict[str, int] = {"entity": 512, "action": 256, "relation": 512}
"""Default vocabulary size per level, written only here (``DataConfig`` copies it)."""

Labels = dict[str, list[int]]

RELATION_FORMS: tuple[str, ...] = (
    "triplet",
    "predicate_object",
    "subject_predicate",
    "predicate",
    "preposition",
    "intransitive",
)
"""The relation item forms: ``s|p|o``, ``*|p|o``, ``s|p|*``, ``*|p|*`` of each triplet,
``*|prep|*`` and ``*|prep|o`` of a verb + preposition predicate, and ``*|verb|*`` of each
action that is no triplet's predicate."""

WILDCARD = "*"


def relation_items(subject: str, predicate: str, obj: str, forms: Sequence[str]) -> set[str]:
    """The relation items of one triplet in the given ``forms`` (see ``RELATION_FORMS``)."""
    star = WILDCARD
    made = {
        "intransitive": f"{star}|{predicate}|{star}",
        "triplet": f"{subject}|{predicate}|{obj}",
        "predicate_object": f"{star}|{predicate}|{obj}",
        "subject_predicate": f"{subject}|{predicate}|{star}",
        "predicate": f"{star}|{predicate}|{star}",
    }
    return {made[form] for form in forms if form in made and form != "intransitive"}


def caption_items(
    parsed: ParsedCaption, relation_forms: Sequence[str] = RELATION_FORMS
) -> dict[str, set[str]]:
    """The distinct attribute items of one caption, per level."""
    relations: set[str] = set()
    for relation in parsed.relations:
        relations |= relation_items(
            relation.subject.lemma, relation.predicate.lemma, relation.object.lemma, relation_forms
        )
    verbs = {a.start for a in parsed.actions}
    if "preposition" in relation_forms:
        for relation in parsed.relations:
            words = relation.predicate.lemma.split()
            if len(words) > 1 and relation.predicate.start in verbs:
                preposition = " ".join(words[1:])
                relations.add(f"{WILDCARD}|{preposition}|{WILDCARD}")
                relations.add(f"{WILDCARD}|{preposition}|{relation.object.lemma}")
    if "intransitive" in relation_forms:
        heads = {r.predicate.start for r in parsed.relations}
        for action in parsed.actions:
            if action.start not in heads:
                relations.add(f"{WILDCARD}|{action.lemma}|{WILDCARD}")
    return {
        "entity": {span.lemma for span in parsed.entities},
        "action": {span.lemma for span in parsed.actions},
        "relation": relations,
    }


class AttributeVocabs:
    """One attribute vocabulary per level (entity, action, relation)."""

    def __init__(
        self, items: Mapping[str, Sequence[str]], relation_forms: Sequence[str] = RELATION_FORMS
    ) -> None:
        """Create from ``{level: [item, ...]}`` in index order; captions are labelled with
        the relation item forms ``relation_forms`` (those the vocabulary was built with)."""
        unknown = set(items) - set(ATTRIBUTE_LEVELS)
        if unknown:
            raise DataError(
                f"unknown attribute level(s) {sorted(unknown)}; use {list(ATTRIBUTE_LEVELS)}"
            )
        bad = [form for form in relation_forms if form not in RELATION_FORMS]
        if bad or not relation_forms:
            raise DataError(
                f"relation forms {list(relation_forms)} are invalid; use a non-empty subset "
                f"of {list(RELATION_FORMS)}"
            )
        self.relation_forms = tuple(relation_forms)
        self._items = {level: tuple(items.get(level, ())) for level in ATTRIBUTE_LEVELS}
        self._index = {
            level: {item: i for i, item in enumerate(values)}
            for level, values in self._items.items()
        }

    @classmethod
    def build(
        cls,
        parsed_train: Iterable[ParsedCaption],
        sizes: Mapping[str, int] | None = None,
        relation_forms: Sequence[str] = RELATION_FORMS,
    ) -> AttributeVocabs:
        """Top-``sizes[level]`` items per level of the training captions (ties alphabetical).

        ``relation_forms``: which relation item forms compete for the relation slots
        (``("triplet",)`` is the full-key-only design).
        """
        cls({}, relation_forms)  # validates the forms before the pass over the captions
        sizes = dict(DEFAULT_SIZES if sizes is None else sizes)
        for level, size in sizes.items():
            if level not in ATTRIBUTE_LEVELS or int(size) < 1:
                raise DataError(
                    f"attribute size {level}={size} is invalid; levels are "
                    f"{list(ATTRIBUTE_LEVELS)} and sizes must be >= 1"
                )
        counts: dict[str, Counter[str]] = {level: Counter() for level in ATTRIBUTE_LEVELS}
        for parsed in parsed_train:
            for level, items in caption_items(parsed, relation_forms).items():
                counts[level].update(items)
        chosen = {
            level: sorted(counts[level], key=lambda item, c=counts[level]: (-c[item], item))[
                : int(sizes.get(level, DEFAULT_SIZES[level]))
            ]
            for level in ATTRIBUTE_LEVELS
        }
        return cls(chosen, relation_forms)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of items per level (the width of each multi-hot label vector)."""
        return {level: len(values) for level, values in self._items.items()}

    def items(self, level: str) -> tuple[str, ...]:
        """The items of ``level`` in index order."""
        return self._items[level]

    def labels(self, parsed: ParsedCaption) -> Labels:
        """Sorted label indices per level of one caption (items outside the vocabulary drop)."""
        out: Labels = {}
        for level, items in caption_items(parsed, self.relation_forms).items():
            index = self._index[level]
            out[level] = sorted(index[item] for item in items if item in index)
        return out

    def video_labels(self, parsed_captions: Iterable[ParsedCaption]) -> Labels:
        """Union of the labels of a video's captions, per level."""
        union: dict[str, set[int]] = {level: set() for level in ATTRIBUTE_LEVELS}
        for parsed in parsed_captions:
            for level, ids in self.labels(parsed).items():
                union[level].update(ids)
        return {level: sorted(ids) for level, ids in union.items()}

    def to_json(self) -> dict[str, Any]:
        """``{"levels": {level: [item, ...]}}``, plus ``"relation_forms"`` when they are not
        the default (so default vocabularies keep the format and digest they always had)."""
        data: dict[str, Any] = {
            "levels": {level: list(values) for level, values in self._items.items()}
        }
        if self.relation_forms != RELATION_FORMS:
            data["relation_forms"] = list(self.relation_forms)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AttributeVocabs:
        """Inverse of :meth:`to_json` (a dict without ``relation_forms``: the default forms;
        a vocabulary of full keys only, saved before the factored design, labels as before)."""
        return cls(data["levels"], data.get("relation_forms", RELATION_FORMS))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabularies as JSON (atomically)."""
        atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AttributeVocabs:
        """Read vocabularies written by :meth:`save`."""
        data = read_json(path, "attribute vocabulary", "build it first")
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not an attribute vocabulary ({exc}); rebuild it") from exc

    def sha256(self) -> str:
        """Hex digest of the items of every level (identifies the vocabularies)."""
        text = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def label_statistics(
    label_lists: Sequence[Mapping[str, Sequence[int]]], sizes: Mapping[str, int]
) -> dict[str, dict[str, float | int]]:
    """Imbalance statistics per level of multi-hot labels (what focal BCE has to cope with).

    For each level: ``samples``, ``size``, ``labels_used`` (labels with >= 1 positive),
    ``positives_per_sample`` (mean) and ``max_positives``, ``positive_rate`` (mean share of
    the K labels that are positive), ``empty_share`` (samples with no label),
    ``label_frequency_min/median/max`` (positives per label), and ``rarest_half_share`` (share
    of all positives held by the rarer half of the labels).
    """
    stats: dict[str, dict[str, float | int]] = {}
    samples = len(label_lists)
    for level, size in sizes.items():
        frequency = np.zeros(max(int(size), 0), dtype=np.int64)
        per_sample = np.zeros(samples, dtype=np.int64)
        for row, labels in enumerate(label_lists):
            ids = list(labels.get(level, ()))
            per_sample[row] = len(ids)
            if ids:
                np.add.at(frequency, ids, 1)
        total = int(frequency.sum())
        ordered = np.sort(frequency)
        rare_half = int(ordered[: size // 2].sum()) if size else 0
        stats[level] = {
            "samples": samples,
            "size": int(size),
            "labels_used": int((frequency > 0).sum()),
            "positives_per_sample": float(per_sample.mean()) if samples else 0.0,
            "max_positives": int(per_sample.max()) if samples else 0,
            "positive_rate": float(per_sample.mean() / size) if samples and size else 0.0,
            "empty_share": float((per_sample == 0).mean()) if samples else 0.0,
            "label_frequency_min": int(ordered[0]) if size else 0,
            "label_frequency_median": float(np.median(ordered)) if size else 0.0,
            "label_frequency_max": int(ordered[-1]) if size else 0,
            "rarest_half_share": rare_half / total if total else 0.0,
        }
    return stats
