"""Captions of a clip, each with the ground truth a caption parser should recover.

Every caption is built from the scene, so it is true of the clip by construction. The
forms are progressive ("is moving toward"), passive ("is being approached by"),
converse ("is to the right of"), whole-scene ("... while ..."), one object, one action
or one relation. Each caption carries the noun, verb and triplet lemmas it contains,
and which object, action and relation of the structure it states.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mcsan.world.lexicon import (
    ACTION_PHRASES,
    DYNAMIC_RELATIONS,
    RELATION_ACTIVE,
    RELATION_CONVERSE,
    RELATION_PASSIVE,
    SHAPE_NOUNS,
    SIZE_WORDS,
)
from mcsan.world.scene import RelationTriple, Scene, WorldObject

MIN_CAPTIONS, MAX_CAPTIONS = 5, 10


@dataclass
class CaptionTruth:
    """One caption and what it says, in parser lemmas and in structure terms."""

    caption: str
    kind: str  # scene | object | action | relation
    entities: list[str] = field(default_factory=list)  # shape nouns, in order of mention
    actions: list[str] = field(default_factory=list)  # verb lemmas
    relations: list[list[str]] = field(default_factory=list)  # [subject, predicate, object]
    refs: list[dict[str, Any]] = field(default_factory=list)  # {object, noun, colour, size}
    object_actions: list[list[Any]] = field(default_factory=list)  # [object id, action]
    relation_ids: list[list[Any]] = field(default_factory=list)  # [subject id, relation, object id]

    def to_json(self) -> dict[str, Any]:
        """As written to captions_truth.jsonl (with the video id added by the writer)."""
        return asdict(self)

    def merge(self, other: CaptionTruth, joiner: str, kind: str = "scene") -> CaptionTruth:
        """Two captions joined into one (``joiner`` like " while ")."""
        return CaptionTruth(
            self.caption + joiner + other.caption, kind, self.entities + other.entities,
            self.actions + other.actions, self.relations + other.relations,
            self.refs + other.refs, self.object_actions + other.object_actions,
            self.relation_ids + other.relation_ids,
        )


def _choice(rng: np.random.Generator, options: tuple | list) -> Any:
    return options[int(rng.integers(len(options)))]


def _article(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


class _Writer:
    """Draws captions for one scene from one random generator."""

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        self.scene, self.rng = scene, rng
        shapes = [o.shape for o in scene.objects]
        self.shared_shape = {o.shape for o in scene.objects if shapes.count(o.shape) > 1}

    def refer(self, index: int, definite: bool = False, colour_share: float = 0.9,
              ) -> tuple[str, dict[str, Any]]:
        """A noun phrase for object ``index`` and what it names."""
        obj: WorldObject = self.scene.objects[index]
        noun = _choice(self.rng, SHAPE_NOUNS[obj.shape])
        size = _choice(self.rng, SIZE_WORDS[obj.size]) if (
            SIZE_WORDS[obj.size] and self.rng.random() < 0.25) else None
        colour = obj.colour if (obj.shape in self.shared_shape
                                or self.rng.random() < colour_share) else None
        words = [w for w in (size, colour, noun) if w]
        article = "the" if definite else _article(words[0])
        ref = {"object": index, "noun": noun, "colour": colour, "size": size}
        return " ".join([article, *words]), ref

    def object_phrase(self, index: int) -> CaptionTruth:
        """Just the object: "a big red ball"."""
        text, ref = self.refer(index, colour_share=1.0)
        return CaptionTruth(text, "object", [ref["noun"]], refs=[ref])

    def action(self, index: int, definite: bool = False) -> CaptionTruth:
        """One object doing its action: "a red ball is spinning"."""
        text, ref = self.refer(index, definite)
        action = self.scene.objects[index].action
        phrase, verb = _choice(self.rng, ACTION_PHRASES[action])
        return CaptionTruth(f"{text} is {phrase}", "action", [ref["noun"]], [verb], refs=[ref],
                            object_actions=[[index, action]])

    def relation(self, relation: RelationTriple, voice: str) -> CaptionTruth:
        """One relation, active ("a is approaching b"), passive or converse."""
        subject, predicate, obj = relation
        first, second = (subject, obj) if voice == "active" else (obj, subject)
        text_1, ref_1 = self.refer(first)
        text_2, ref_2 = self.refer(second)
        table = {"active": RELATION_ACTIVE, "passive": RELATION_PASSIVE,
                 "converse": RELATION_CONVERSE}[voice]
        phrase, lemma = _choice(self.rng, table[predicate])
        if voice == "passive":
            triplet = [ref_2["noun"], lemma, ref_1["noun"]]
        else:
            triplet = [ref_1["noun"], lemma, ref_2["noun"]]
        verbs = [lemma.split()[0]] if predicate in DYNAMIC_RELATIONS else []
        return CaptionTruth(f"{text_1} is {phrase} {text_2}", "relation",
                            [ref_1["noun"], ref_2["noun"]], verbs, [triplet], [ref_1, ref_2],
                            relation_ids=[list(relation)])

    def voices(self, predicate: str) -> list[str]:
        """The caption voices a relation can be stated in."""
        return ["active"] + [v for v, table in (("passive", RELATION_PASSIVE),
                                                 ("converse", RELATION_CONVERSE))
                             if predicate in table]

    def scene_captions(self) -> list[CaptionTruth]:
        """Captions of the whole scene: relation while action, two actions, object list."""
        n = len(self.scene.objects)
        out = []
        primary = self.scene.relations[0]
        rest = [i for i in range(n) if i not in (primary[0], primary[2])]
        other = rest[0] if rest else primary[2]
        out.append(self.relation(primary, "active").merge(
            self.action(other, definite=other == primary[2]), " while "))
        a, b = self.rng.permutation(n)[:2].tolist()
        act_a, act_b = self.scene.objects[a].action, self.scene.objects[b].action
        if act_a == act_b:
            ta, ra = self.refer(a)
            tb, rb = self.refer(b)
            phrase, verb = _choice(self.rng, ACTION_PHRASES[act_a])
            out.append(CaptionTruth(f"{ta} and {tb} are {phrase}", "scene",
                                    [ra["noun"], rb["noun"]], [verb], refs=[ra, rb],
                                    object_actions=[[a, act_a], [b, act_b]]))
        else:
            if act_a == "move_left":  # "is moving left while": spaCy reads "left" as a verb
                a, b = b, a
            out.append(self.action(a).merge(self.action(b), " while "))
        parts = [self.object_phrase(i) for i in self.rng.permutation(n).tolist()]
        listing = parts[0]
        for number, part in enumerate(parts[1:], start=2):
            listing = listing.merge(part, " and " if number == n else ", ")
        out.append(listing)
        return out


def write_captions(scene: Scene, seed: int) -> list[CaptionTruth]:
    """5-10 distinct true captions of ``scene``, drawn deterministically from ``seed``."""
    rng = np.random.default_rng([seed, scene.index, 17])
    writer = _Writer(scene, rng)
    n = len(scene.objects)
    relations = [writer.relation(r, v) for r in scene.relations for v in writer.voices(r[1])]
    actions = [writer.action(i) for i in range(n)] + [writer.action(i) for i in range(n)]
    objects = [writer.object_phrase(i) for i in range(n)]
    scenes = writer.scene_captions()
    required = [relations[0], scenes[int(rng.integers(len(scenes)))], *actions[:n]]
    optional = relations[1:] + actions[n:] + objects + scenes
    target = int(rng.integers(MIN_CAPTIONS, MAX_CAPTIONS + 1))
    chosen: list[CaptionTruth] = []
    seen: set[str] = set()
    for truth in required + [optional[i] for i in rng.permutation(len(optional)).tolist()]:
        if len(chosen) >= target:
            break
        if truth.caption not in seen:
            seen.add(truth.caption)
            chosen.append(truth)
    return [chosen[i] for i in rng.permutation(len(chosen)).tolist()]
