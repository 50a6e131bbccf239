"""The oracle ceiling of retrieval on a world: which clips each caption is true of.

A caption of the world states facts about the clip it was written for (its ground truth in
captions_truth.jsonl): objects named by shape noun, with their colour and size when said;
the action of a referred object; relations between referred objects. It is true of every
clip whose structure (structure.jsonl) has distinct objects, one per referred object, that
fit each stated fact. Relations are checked on the clip's trajectories
(:func:`mcsan.world.scene.relation_holds`, the check that made the world), so "a ball is to
the left of a cube" is true of a clip where it holds even if the clip's structure lists
another relation for that pair. A collision is also an approach (the world's twins never
turn one into the other for that reason: "is approaching" stays true of a collision).

A perfect model ranks the clips a caption is true of first, in random order (it cannot tell
them apart). Its expected t2v R@K for a caption true of ``n`` clips is ``min(1, K / n)``;
:func:`oracle_recalls` averages that over captions, the ceiling reported beside the model
rows of a world's evaluation.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.io import read_jsonl
from mcsan.world.lexicon import SHAPE_NOUNS, SIZE_WORDS
from mcsan.world.scene import Scene, WorldObject, relation_holds

NOUN_SHAPE = {noun: shape for shape, nouns in SHAPE_NOUNS.items() for noun in nouns}
SIZE_OF_WORD = {word: size for size, words in SIZE_WORDS.items() for word in words}
ORACLE_KS: tuple[int, ...] = (1, 5, 10)
IMPLIED_BY: dict[str, tuple[str, ...]] = {"approach": ("collide",)}
"""A relation is also true where one of these holds."""


@dataclass(frozen=True)
class Referent:
    """What a caption says of one object: its shape, and its colour, size and action when
    said (None: not said)."""

    shape: str
    colour: str | None = None
    size: str | None = None
    action: str | None = None

    def fits(self, obj: WorldObject) -> bool:
        """Whether ``obj`` has every stated property."""
        return (self.shape in (None, obj.shape) and self.colour in (None, obj.colour)
                and self.size in (None, obj.size) and self.action in (None, obj.action))  # fmt: skip


@dataclass(frozen=True)
class CaptionFacts:
    """Everything a caption states: its referents and relations between them (indices into
    ``referents``)."""

    referents: tuple[Referent, ...]
    relations: tuple[tuple[int, str, int], ...] = ()

    @classmethod
    def from_truth(cls, truth: Mapping[str, Any]) -> CaptionFacts:
        """From a captions_truth.jsonl record (``refs``, ``object_actions``,
        ``relation_ids``); refs to the same object of its clip are one referent."""
        said: dict[int, dict[str, Any]] = {}
        for ref in truth.get("refs", []):
            slot = said.setdefault(int(ref["object"]), {})
            slot["shape"] = NOUN_SHAPE[ref["noun"]]
            if ref.get("colour"):
                slot["colour"] = ref["colour"]
            if ref.get("size"):
                slot["size"] = SIZE_OF_WORD[ref["size"]]
        for index, action in truth.get("object_actions", []):
            said.setdefault(int(index), {})["action"] = action
        for subject, _, obj in truth.get("relation_ids", []):
            said.setdefault(int(subject), {})
            said.setdefault(int(obj), {})
        order = {index: k for k, index in enumerate(said)}
        referents = tuple(Referent(**{"shape": None, **slot}) for slot in said.values())
        relations = tuple((order[int(s)], p, order[int(o)])
                          for s, p, o in truth.get("relation_ids", []))  # fmt: skip
        return cls(referents, relations)


@dataclass
class ClipFacts:
    """One clip's objects and a cache of which relations hold between them."""

    scene: Scene
    frames: int
    _relations: dict[tuple[int, str, int], bool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_structure(cls, record: Mapping[str, Any], frames: int) -> ClipFacts:
        """From a structure.jsonl record (its objects' appearance, action and motion)."""
        objects = tuple(
            WorldObject(o["colour"], o["shape"], o["size"], o["texture"], o["action"], o["x"],
                        o["y"], **o["motion"])
            for o in record["objects"]
        )  # fmt: skip
        relations = tuple((r["subject"], r["predicate"], r["object"]) for r in record["relations"])
        return cls(Scene(record["video_id"], int(record.get("index", 0)), 0, {}, objects,
                         relations), frames)  # fmt: skip

    @property
    def video_id(self) -> str:
        """The clip's id."""
        return self.scene.video_id

    def holds(self, subject: int, predicate: str, obj: int) -> bool:
        """Whether the relation holds: listed in the structure or true of the trajectories."""
        key = (subject, predicate, obj)
        if key not in self._relations:
            self._relations[key] = key in self.scene.relations or relation_holds(
                self.scene, key, self.frames) or any(
                self.holds(subject, other, obj) for other in IMPLIED_BY.get(predicate, ()))  # fmt: skip
        return self._relations[key]

    def satisfies(self, facts: CaptionFacts) -> bool:
        """Whether distinct objects of the clip fit the caption's referents and relations."""
        objects = self.scene.objects
        options = [[i for i, obj in enumerate(objects) if ref.fits(obj)] for ref in facts.referents]
        for pick in itertools.product(*options):
            if len(set(pick)) == len(pick) and all(
                    self.holds(pick[s], p, pick[o]) for s, p, o in facts.relations):
                return True
        return False


def consistent_clips(facts: CaptionFacts, clips: Sequence[ClipFacts]) -> list[int]:
    """Positions in ``clips`` of the clips the caption is true of."""
    return [i for i, clip in enumerate(clips) if clip.satisfies(facts)]


class _ObjectTable:
    """Every object of a collection as arrays, to find candidate clips fast."""

    def __init__(self, clips: Sequence[ClipFacts]) -> None:
        rows = [(c, o) for c, clip in enumerate(clips) for o in clip.scene.objects]
        self.clip = np.array([c for c, _ in rows], dtype=np.int64)
        self.values = {name: np.array([getattr(o, name) for _, o in rows], dtype=object)
                       for name in ("shape", "colour", "size", "action")}  # fmt: skip

    def clips_with(self, ref: Referent) -> set[int]:
        """Clips with at least one object that fits ``ref``."""
        mask = np.ones(len(self.clip), dtype=bool)
        for name in ("shape", "colour", "size", "action"):
            wanted = getattr(ref, name)
            if wanted is not None:
                mask &= self.values[name] == wanted
        return set(self.clip[mask].tolist())


def consistent_counts(truths: Sequence[Mapping[str, Any]], clips: Sequence[ClipFacts]
                      ) -> np.ndarray:  # fmt: skip
    """For each caption truth, how many of ``clips`` it is true of (int64). Captions stating
    the same facts are checked once; only clips holding a fitting object for every referent
    are checked in full."""
    table = _ObjectTable(clips)
    counts: dict[CaptionFacts, int] = {}
    out = np.zeros(len(truths), dtype=np.int64)
    for row, truth in enumerate(truths):
        facts = CaptionFacts.from_truth(truth)
        if facts not in counts:
            candidates = set(range(len(clips)))
            for ref in facts.referents:
                candidates &= table.clips_with(ref)
            counts[facts] = sum(clips[c].satisfies(facts) for c in candidates)
        out[row] = counts[facts]
    return out


def oracle_recalls(counts: Iterable[int], ks: Sequence[int] = ORACLE_KS) -> dict[str, float]:
    """Expected t2v R@K (percent) of a perfect model: mean over captions of ``min(1, K/n)``,
    ``n`` the clips a caption is true of (its own among them)."""
    n = np.maximum(np.asarray(list(counts), dtype=np.float64), 1.0)
    if n.size == 0:
        return {f"t2v_r{k}": 0.0 for k in ks}
    return {f"t2v_r{k}": float(100.0 * np.minimum(1.0, k / n).mean()) for k in ks}


def is_world(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` holds a world's ground truth (structure and caption truth)."""
    from mcsan.world.generate import STRUCTURE_NAME, TRUTH_NAME

    return (Path(root) / STRUCTURE_NAME).is_file() and (Path(root) / TRUTH_NAME).is_file()


def world_oracle(root: str | os.PathLike[str], queries: Sequence[tuple[str, str]],
                 clip_ids: Sequence[str]) -> dict[str, Any] | None:  # fmt: skip
    """The oracle ceiling of the queries ``(video_id, caption)`` against the clips
    ``clip_ids`` of the world at ``root``; None when ``root`` is not a world or a query has
    no ground truth there. Returns ``{"t2v_r1", "t2v_r5", "t2v_r10", "captions", "clips",
    "mean_consistent", "median_consistent"}``."""
    from mcsan.data.native import read_card
    from mcsan.world.generate import STRUCTURE_NAME, TRUTH_NAME

    if not is_world(root):
        return None
    root = Path(root)
    frames = int(read_card(root).get("frames", 16))
    wanted = set(clip_ids)
    structure = {r["video_id"]: r for r in read_jsonl(root / STRUCTURE_NAME)
                 if r["video_id"] in wanted}  # fmt: skip
    truth = {(r["video_id"], r["caption"]): r for r in read_jsonl(root / TRUTH_NAME)
             if r["video_id"] in wanted}  # fmt: skip
    if len(structure) != len(wanted) or any(q not in truth for q in queries):
        return None
    clips = [ClipFacts.from_structure(structure[v], frames) for v in clip_ids]
    counts = consistent_counts([truth[q] for q in queries], clips)
    return {**oracle_recalls(counts), "captions": len(queries), "clips": len(clips),
            "mean_consistent": float(counts.mean()) if len(counts) else 0.0,
            "median_consistent": float(np.median(counts)) if len(counts) else 0.0}
