"""Binding twins: twins that only a model which binds roles can tell from the original.

Besides the one-level twins of :mod:`mcsan.world.splits` (change one object's colour,
shape or action; change a relation; swap the roles of a static relation), three kinds keep
every *word-level* fact of the clip and change only who has it:

- entity binding: two objects exchange their colours (or, when their colours agree, their
  shapes): the same colours and shapes are on screen, bound the other way round;
- action binding: two objects exchange their actions (motion parameters included): the
  same actions happen, done by the other object;
- role swap of a dynamic relation: the object of "a approaches b" becomes its subject
  ("b approaches a"); both objects keep their appearance.

A pooled frame vector sees the same colours, shapes and motions in both clips; only a model
that ties attributes, actions and roles to the right object can tell them apart. Twin ids
end in ``_twin_<level>_<kind>`` so they never collide with the one-level twins.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mcsan.world.lexicon import DYNAMIC_RELATIONS, IN_PLACE
from mcsan.world.sampling import allowed_actions, place_pair
from mcsan.world.scene import RelationTriple, Scene, WorldObject, scene_valid
from mcsan.world.splits import HoldOut, secondary_relations

BINDING_KINDS: dict[str, str] = {"entity": "binding", "action": "binding", "relation": "swap"}
"""Twin level -> the suffix of its binding twin's id."""
_SALT_BINDING = 404
_MOTION = ("action", "dx", "dy", "stop", "hop", "scale_end", "turns", "blink_period")


def _binding_twin(original: Scene, level: str, objects: tuple[WorldObject, ...],
                  relations: tuple[RelationTriple, ...], change: dict[str, Any]) -> Scene:
    suffix = BINDING_KINDS[level]
    return replace(original, video_id=f"{original.video_id}_twin_{level}_{suffix}",
                   objects=objects, relations=relations, split="twin",
                   meta={"twin_of": original.video_id, "twin_level": level, "change": change})


def _pairs(n: int) -> list[tuple[int, int]]:
    """Object pairs, the primary relation's pair (0, 1) first (captions name it most)."""
    return sorted(((i, j) for i in range(n) for j in range(i + 1, n)), key=lambda p: p != (0, 1))


def _swapped(objects: tuple[WorldObject, ...], i: int, j: int,
             fields: dict[int, dict[str, Any]]) -> tuple[WorldObject, ...]:
    out = list(objects)
    out[i], out[j] = replace(objects[i], **fields[i]), replace(objects[j], **fields[j])
    return tuple(out)


def _same_relations(original: Scene, twin: Scene, frames: int) -> bool:
    """The twin keeps the original's relations exactly (primary and secondary)."""
    extra = tuple(secondary_relations(twin.objects, frames))
    return scene_valid(twin, frames) and original.relations[:1] + extra == original.relations


def entity_binding_twin(original: Scene, holdout: HoldOut) -> Scene | None:
    """Two objects of different shapes exchange colours (or shapes, when colours agree)."""
    objects = original.objects
    for i, j in _pairs(len(objects)):
        a, b = objects[i], objects[j]
        if a.colour == b.colour or a.shape == b.shape:
            continue  # exchanging would only exchange places, not bindings
        attribute = "colour"
        values = (getattr(a, attribute), getattr(b, attribute))
        new = _swapped(objects, i, j, {i: {attribute: values[1]}, j: {attribute: values[0]}})
        pairs = [(o.colour, o.shape) for o in new]
        if len(set(pairs)) != len(pairs) or holdout.hits(new, original.relations):
            continue
        change = {"kind": "binding", "objects": [i, j], "attribute": attribute,
                  "from": list(values), "to": list(values[::-1])}
        return _binding_twin(original, "entity", new, original.relations, change)
    return None


def action_binding_twin(original: Scene, holdout: HoldOut, frames: int) -> Scene | None:
    """Two objects with different actions exchange them; positions and relations stay."""
    objects = original.objects
    for i, j in _pairs(len(objects)):
        a, b = objects[i], objects[j]
        if a.action == b.action:
            continue
        if (b.action not in allowed_actions(a.texture, (b.action,))
                or a.action not in allowed_actions(b.texture, (a.action,))):
            continue
        motion = {n: {f: getattr(src, f) for f in _MOTION} for n, src in ((j, a), (i, b))}
        new = _swapped(objects, i, j, motion)
        change = {"kind": "binding", "objects": [i, j], "from": [a.action, b.action],
                  "to": [b.action, a.action]}
        twin = _binding_twin(original, "action", new, original.relations, change)
        if not holdout.hits(new, original.relations) and _same_relations(original, twin, frames):
            return twin
    return None


def role_swap_twin(rng: np.random.Generator, original: Scene, holdout: HoldOut,
                   frames: int) -> Scene | None:
    """"b <relation> a" instead of "a <relation> b" for a dynamic relation (static relations
    get their role swap from :func:`mcsan.world.splits.relation_twin`)."""
    subject, predicate, obj_id = original.relations[0]
    if predicate not in DYNAMIC_RELATIONS:
        return None
    a, b = original.objects[subject], original.objects[obj_id]
    still = ("blink", "spin") if predicate == "collide" else IN_PLACE
    options = [b.action] + [x for x in still if x != b.action]
    for object_action in options:
        if object_action not in allowed_actions(a.texture, still):
            continue
        actor = replace(b, **{f: getattr(a, f) for f in _MOTION})
        still_motion = {f: getattr(b, f) for f in _MOTION}
        still_motion.update(action=object_action, dx=0.0, dy=0.0, stop=1.0, hop=0.0)
        passive = replace(a, **still_motion)
        for _ in range(25):
            new_subject, new_object = place_pair(rng, predicate, actor, passive)
            objects = list(original.objects)
            objects[obj_id], objects[subject] = new_subject, new_object
            relation = (obj_id, predicate, subject)
            relations = (relation, *original.relations[1:])
            change = {"kind": "swapped", "from": [subject, predicate, obj_id],
                      "to": list(relation)}
            twin = _binding_twin(original, "relation", tuple(objects), relations, change)
            same_secondary = (tuple(secondary_relations(twin.objects, frames))
                              == original.relations[1:])
            if (same_secondary and not holdout.hits(twin.objects, relations)
                    and scene_valid(twin, frames)):
                return twin
    return None


def make_binding_twins(seed: int, original: Scene, holdout: HoldOut, frames: int) -> list[Scene]:
    """Up to one binding twin per level for ``original`` (their own random stream, so the
    one-level twins of a world stay what they were)."""
    rng = np.random.default_rng([seed, original.index, _SALT_BINDING])
    twins = [entity_binding_twin(original, holdout),
             action_binding_twin(original, holdout, frames),
             role_swap_twin(rng, original, holdout, frames)]
    return [t for t in twins if t is not None]
