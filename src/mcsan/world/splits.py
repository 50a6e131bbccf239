"""Clip splits, the held-out combinations of the compositional split, and twin clips.

- Every clip index gets a split from one seeded permutation: train / val / test / comp.
- A few (colour, shape, action) triples and (subject shape, relation, object shape) role
  pairs are held out: every comp clip contains at least one of them, no other clip does.
- A twin copies a test clip and changes exactly one level: an object's colour or shape
  (entity), one object's action (action), or the relation (changed, or roles swapped).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mcsan.world.lexicon import (
    ACTIONS,
    COLOURS,
    HELD_OUT_ROLE_SHARE,
    HELD_OUT_TRIPLE_SHARE,
    RELATIONS,
    SHAPES,
    STATIC_RELATIONS,
)
from mcsan.world.sampling import (
    Force,
    allowed_actions,
    combos,
    place_pair,
    relations_for,
    sample_background,
    sample_once,
    secondary_relations,
    with_action,
)
from mcsan.world.scene import RelationTriple, Scene, WorldObject, scene_valid

SPLIT_SHARES: dict[str, float] = {"comp": 0.10, "test": 0.22, "val": 0.08}
TWIN_LEVELS: tuple[str, ...] = ("entity", "action", "relation")
_SALT_SPLITS, _SALT_HOLDOUT, _SALT_TWINS = 101, 202, 303


@dataclass(frozen=True)
class HoldOut:
    """Combinations that occur only in the compositional split."""

    triples: tuple[tuple[str, str, str], ...]
    roles: tuple[tuple[str, str, str], ...]

    def hits(self, objects: tuple[WorldObject, ...], relations: tuple[RelationTriple, ...]) -> bool:
        """Whether a clip with these objects and relations contains a held-out combination."""
        triples, roles = combos(objects, relations)
        return bool(triples & set(self.triples) or roles & set(self.roles))

    def to_json(self) -> dict[str, Any]:
        """As written to dataset.yaml."""
        return {"triples": ["|".join(t) for t in self.triples],
                "roles": ["|".join(r) for r in self.roles]}


def make_holdout(seed: int) -> HoldOut:
    """Draw the held-out triples and role pairs of a world from its seed."""
    rng = np.random.default_rng([seed, _SALT_HOLDOUT])
    triples = [(c, s, a) for c in COLOURS for s in SHAPES for a in ACTIONS]
    roles = [(s, r, o) for s in SHAPES for r in RELATIONS for o in SHAPES]
    n_triples = max(1, round(len(triples) * HELD_OUT_TRIPLE_SHARE))
    n_roles = max(1, round(len(roles) * HELD_OUT_ROLE_SHARE))
    pick_t = sorted(rng.choice(len(triples), n_triples, replace=False).tolist())
    pick_r = sorted(rng.choice(len(roles), n_roles, replace=False).tolist())
    return HoldOut(tuple(triples[i] for i in pick_t), tuple(roles[i] for i in pick_r))


def assign_splits(n_videos: int, seed: int) -> list[str]:
    """The split of each clip index: a seeded permutation cut by SPLIT_SHARES."""
    counts = {name: max(1, round(n_videos * share)) if n_videos >= 8 else 0
              for name, share in SPLIT_SHARES.items()}
    order = np.random.default_rng([seed, _SALT_SPLITS]).permutation(n_videos)
    splits = ["train"] * n_videos
    start = 0
    for name in ("comp", "test", "val"):
        for index in order[start:start + counts[name]]:
            splits[int(index)] = name
        start += counts[name]
    return splits


def clip_id(index: int) -> str:
    """Video id of clip ``index``."""
    return f"clip{index:05d}"


def sample_scene(seed: int, index: int, split: str, holdout: HoldOut, frames: int) -> Scene:
    """The scene of clip ``index``: with a held-out combination iff its split is comp."""
    rng = np.random.default_rng([seed, index])
    render_seed = int(rng.integers(2**31))
    background = sample_background(rng)
    forced = [Force(triple=t) for t in holdout.triples] + [Force(role=r) for r in holdout.roles]
    for _ in range(1000):
        force = forced[int(rng.integers(len(forced)))] if split == "comp" else None
        drawn = sample_once(rng, frames, force)
        if drawn is None:
            continue
        objects, relations = drawn
        if holdout.hits(objects, relations) == (split == "comp"):
            return Scene(clip_id(index), index, render_seed, background, objects, relations, split)
    raise RuntimeError(f"could not sample clip {index} (seed {seed}); this is a bug")


# ----------------------------------------------------------------------------- twins


def _twin(original: Scene, level: str, objects: tuple[WorldObject, ...],
          relations: tuple[RelationTriple, ...], change: dict[str, Any]) -> Scene:
    return replace(original, video_id=f"{original.video_id}_twin_{level}", objects=objects,
                   relations=relations, split="twin",
                   meta={"twin_of": original.video_id, "twin_level": level, "change": change})


def _keeps_relations(original: Scene, objects: tuple[WorldObject, ...], frames: int) -> bool:
    primary = original.relations[:1]
    return primary + tuple(secondary_relations(objects, frames)) == original.relations


def entity_twin(rng: np.random.Generator, original: Scene, holdout: HoldOut,
                frames: int) -> Scene | None:
    """Change the colour or the shape of one object."""
    objects = original.objects
    for i in rng.permutation(len(objects)).tolist():
        for attribute in rng.permutation(["colour", "shape"]).tolist():
            options = list(COLOURS) if attribute == "colour" else list(SHAPES)
            for value in rng.permutation(options).tolist():
                obj = objects[i]
                if value == getattr(obj, attribute):
                    continue
                changed = replace(obj, **{attribute: value})
                taken = {(o.colour, o.shape) for j, o in enumerate(objects) if j != i}
                new = objects[:i] + (changed,) + objects[i + 1:]
                if (changed.colour, changed.shape) in taken or holdout.hits(new, original.relations):
                    continue
                change = {"object": i, "attribute": attribute, "from": getattr(obj, attribute),
                          "to": value}
                return _twin(original, "entity", new, original.relations, change)
    return None


def action_twin(rng: np.random.Generator, original: Scene, holdout: HoldOut,
                frames: int) -> Scene | None:
    """Change the action of one object; positions, appearance and relations stay."""
    objects = original.objects
    for i in rng.permutation(len(objects)).tolist():
        obj = objects[i]
        for action in rng.permutation(allowed_actions(obj.texture, ACTIONS)).tolist():
            if action == obj.action:
                continue
            changed = with_action(rng, obj, action)
            new = objects[:i] + (changed,) + objects[i + 1:]
            twin = _twin(original, "action", new, original.relations,
                         {"object": i, "from": obj.action, "to": action})
            if (not holdout.hits(new, original.relations) and scene_valid(twin, frames)
                    and _keeps_relations(original, new, frames)):
                return twin
    return None


def relation_twin(rng: np.random.Generator, original: Scene, holdout: HoldOut,
                  frames: int) -> Scene | None:
    """Swap the roles of a static relation, or change the relation by moving the pair."""
    subject, predicate, obj_id = original.relations[0]
    a, b = original.objects[subject], original.objects[obj_id]
    rest = original.objects[2:]
    candidates: list[tuple[str, str]] = []
    if predicate in STATIC_RELATIONS:
        candidates.append(("swapped", predicate))
    # approach -> collide is left out: "is approaching" stays true of a collision.
    candidates += [("changed", r) for r in rng.permutation(relations_for(a.action, b.action)).tolist()
                   if r != predicate and (predicate, r) != ("approach", "collide")]
    for kind, new_predicate in candidates:
        for _ in range(25):
            if kind == "swapped":
                pair = (replace(a, x=b.x, y=b.y), replace(b, x=a.x, y=a.y))
                relation = (obj_id, predicate, subject)
            else:
                reset = replace(a, stop=1.0, dx=0.0 if a.action == "hop" else a.dx)
                pair = place_pair(rng, new_predicate, reset, b)
                relation = (subject, new_predicate, obj_id)
            objects = pair + rest
            relations = (relation, *original.relations[1:])
            change = {"kind": kind, "from": list(original.relations[0]), "to": list(relation)}
            twin = _twin(original, "relation", objects, relations, change)
            same_secondary = tuple(secondary_relations(objects, frames)) == original.relations[1:]
            if (same_secondary and not holdout.hits(objects, relations)
                    and scene_valid(twin, frames)):
                return twin
            if kind == "swapped":
                break
    return None


def make_twins(seed: int, original: Scene, holdout: HoldOut, frames: int) -> list[Scene]:
    """Up to one twin per level for ``original`` (a level with no valid change is skipped)."""
    rng = np.random.default_rng([seed, original.index, _SALT_TWINS])
    builders = {"entity": entity_twin, "action": action_twin, "relation": relation_twin}
    twins = [builders[level](rng, original, holdout, frames) for level in TWIN_LEVELS]
    return [t for t in twins if t is not None]


def structure_levels(record: dict[str, Any]) -> dict[str, Any]:
    """What a structure.jsonl record says at each level: appearances, actions, relations."""
    objects = record["objects"]
    return {
        "entity": [(o["colour"], o["shape"], o["size"], o["texture"]) for o in objects],
        "action": [o["action"] for o in objects],
        "relation": sorted((r["subject"], r["predicate"], r["object"])
                           for r in record["relations"]),
    }
