"""Drawing the objects, actions and relations of a clip (positions that make them true)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mcsan.world.lexicon import (
    ACTIONS,
    COLOURS,
    IN_PLACE,
    MOVE_DIRECTION,
    MOVES,
    RELATIONS,
    SHAPES,
    SIZES,
    TEXTURES,
)
from mcsan.world.scene import (
    EDGE,
    RelationTriple,
    Scene,
    WorldObject,
    relation_holds,
    scene_valid,
)

PLACEMENT_TRIES = 30


def _round(value: float) -> float:
    return round(float(value), 4)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def sample_appearance(
    rng: np.random.Generator, taken: set[tuple[str, str]],
    colour: str | None = None, shape: str | None = None,
) -> tuple[str, str, str, str]:
    """A (colour, shape, size, texture) whose (colour, shape) is not in ``taken``."""
    while True:
        c = colour or _pick(rng, list(COLOURS))
        sh = shape or _pick(rng, SHAPES)
        if (c, sh) not in taken:
            break
        colour = None if shape else colour  # a taken forced pair keeps its shape
    size = _pick(rng, list(SIZES))
    texture = str(rng.choice(TEXTURES, p=[0.4, 0.3, 0.3]))
    return c, sh, size, texture


def allowed_actions(texture: str, pool: tuple[str, ...]) -> tuple[str, ...]:
    """Actions of ``pool`` an object with ``texture`` may do (spins need a texture)."""
    return tuple(a for a in pool if a != "spin" or texture != "plain")


def with_action(rng: np.random.Generator, obj: WorldObject, action: str) -> WorldObject:
    """``obj`` doing ``action`` with freshly drawn magnitudes (speed, size change, turns)."""
    fields: dict[str, Any] = {"action": action, "dx": 0.0, "dy": 0.0, "stop": 1.0, "hop": 0.0,
                              "scale_end": 1.0, "turns": 0.0}
    if action in MOVES:
        ux, uy = MOVE_DIRECTION[action]
        distance = rng.uniform(0.22, 0.42)
        fields.update(dx=_round(ux * distance), dy=_round(uy * distance))
    elif action == "grow":
        fields["scale_end"] = _round(rng.uniform(1.35, 1.6))
    elif action == "shrink":
        fields["scale_end"] = _round(rng.uniform(0.45, 0.65))
    elif action == "spin":
        fields["turns"] = _round(rng.uniform(0.4, 0.9) * (1 if rng.random() < 0.5 else -1))
    elif action == "hop":
        fields["hop"] = _round(rng.uniform(0.14, 0.22))
    fields["blink_period"] = int(rng.integers(2, 4))
    return replace(obj, **fields)


def new_object(rng: np.random.Generator, appearance: tuple[str, str, str, str],
               action: str) -> WorldObject:
    """An object with ``appearance`` doing ``action``, placed at the centre for now."""
    colour, shape, size, texture = appearance
    base = WorldObject(colour, shape, size, texture, action, 0.5, 0.5,
                       tilt=_round(rng.uniform(-0.25, 0.25)))
    return with_action(rng, base, action)


def pair_actions(rng: np.random.Generator, relation: str, tex_a: str, tex_b: str,
                 action_a: str | None = None) -> tuple[str, str]:
    """Actions of subject and object that the relation needs (subject first)."""
    if relation in ("approach", "move_away", "collide"):
        a = action_a or _pick(rng, MOVES)
        b_pool = ("blink", "spin") if relation == "collide" else IN_PLACE
    elif relation == "jump_over":
        a, b_pool = "hop", IN_PLACE
    elif relation == "left_of":
        a = action_a or _pick(rng, allowed_actions(tex_a, IN_PLACE + ("hop",)))
        b_pool = IN_PLACE + ("hop",)
    else:  # above: the lower object must not hop into the upper one
        a = action_a or _pick(rng, allowed_actions(tex_a, IN_PLACE + ("hop",)))
        b_pool = IN_PLACE
    return a, _pick(rng, allowed_actions(tex_b, b_pool))


def relations_for(action_a: str, action_b: str) -> tuple[str, ...]:
    """Relations a subject doing ``action_a`` may have to an object doing ``action_b``."""
    still_a = action_a in IN_PLACE or action_a == "hop"
    out: list[str] = []
    if action_a in MOVES and action_b in IN_PLACE:
        out += ["approach", "move_away"] + (["collide"] if action_b in ("blink", "spin") else [])
    if action_a == "hop" and action_b in IN_PLACE:
        out.append("jump_over")
    if still_a and (action_b in IN_PLACE or action_b == "hop"):
        out.append("left_of")
    if still_a and action_b in IN_PLACE:
        out.append("above")
    return tuple(out)


def place_pair(rng: np.random.Generator, relation: str, a: WorldObject,
               b: WorldObject) -> tuple[WorldObject, WorldObject]:
    """Positions (and the displacement of the subject) that make ``relation`` true."""
    ra, rb = a.radius * a.max_scale, b.radius * b.max_scale
    if relation in ("approach", "move_away", "collide"):
        ux, uy = MOVE_DIRECTION[a.action]
        travel = math.hypot(a.dx, a.dy)
        if relation == "approach":
            gap = travel + ra + rb + rng.uniform(0.06, 0.16)
        elif relation == "move_away":
            gap = -(ra + rb + rng.uniform(0.05, 0.2))
        else:
            gap = a.radius + b.radius + rng.uniform(0.14, 0.36)
            travel = gap - 0.93 * (a.radius + b.radius)
            a = replace(a, dx=_round(ux * travel), dy=_round(uy * travel),
                        stop=_round(rng.uniform(0.55, 0.8)))
        # Along the direction of motion: A spans [-ra, travel + ra], B sits at gap.
        low = EDGE + max(ra, rb - gap)
        high = 1 - EDGE - max(travel + ra, gap + rb)
        along = rng.uniform(low, high) if high > low else rng.uniform(0.12, 0.88)
        across = rng.uniform(0.12, 0.88)
        jitter = rng.uniform(-0.3, 0.3) * min(a.radius, b.radius)
        a_along, b_along = along, along + gap
        if ux + uy < 0:  # moving left or up: mirror the axis
            a_along, b_along = 1 - a_along, 1 - b_along
        if ux:
            ax, ay, bx, by = a_along, across, b_along, across + jitter
        else:
            ax, ay, bx, by = across, a_along, across + jitter, b_along
        return replace(a, x=_round(ax), y=_round(ay)), replace(b, x=_round(bx), y=_round(by))
    if relation == "jump_over":
        direction = 1 if rng.random() < 0.5 else -1
        bx, by = rng.uniform(0.25, 0.75), rng.uniform(0.55, 0.85)
        ground = by + b.radius - a.radius
        half = a.radius + rb + rng.uniform(0.04, 0.12)
        height = ground - by + a.radius + rb + rng.uniform(0.03, 0.08)
        a = replace(a, x=_round(bx - direction * half), y=_round(ground),
                    dx=_round(2 * direction * half), dy=0.0, hop=_round(height))
        return a, replace(b, x=_round(bx), y=_round(by))
    ax, ay = rng.uniform(0.1, 0.9, size=2)
    gap = ra + rb + rng.uniform(0.06, 0.28)
    offset = rng.uniform(-0.06, 0.06)
    if relation == "left_of":
        bx, by = ax + gap, ay + offset
    else:
        bx, by = ax + offset, ay + gap
    return replace(a, x=_round(ax), y=_round(ay)), replace(b, x=_round(bx), y=_round(by))


def secondary_relations(objects: tuple[WorldObject, ...], frames: int) -> list[RelationTriple]:
    """Static relations of a third, unmoving object to the primary pair, where they hold."""
    if len(objects) < 3 or objects[2].action not in IN_PLACE:
        return []
    probe = Scene("", 0, 0, {}, objects, ())
    for other in (1, 0):
        if objects[other].action not in IN_PLACE:
            continue
        for rel in ((2, "left_of", other), (other, "left_of", 2), (2, "above", other),
                    (other, "above", 2)):
            if relation_holds(probe, rel, frames):
                return [rel]
    return []


def sample_background(rng: np.random.Generator) -> dict[str, Any]:
    """A muted background: solid, a two-colour gradient, or light noise."""
    def muted() -> list[float]:
        hue, sat, val = rng.uniform(0, 1), rng.uniform(0.06, 0.25), rng.uniform(0.3, 0.62)
        return [_round(c) for c in _hsv_to_rgb(hue, sat, val)]

    kind = _pick(rng, ("solid", "gradient", "noise"))
    return {"kind": kind, "colour": muted(), "colour2": muted(),
            "angle": _round(rng.uniform(0, 2 * np.pi)), "noise": _round(rng.uniform(0.02, 0.06))}


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


@dataclass(frozen=True)
class Force:
    """A held-out combination a compositional clip must contain."""

    triple: tuple[str, str, str] | None = None  # (colour, shape, action) of the subject
    role: tuple[str, str, str] | None = None  # (subject shape, relation, object shape)


def _compatible_relations(action: str) -> tuple[str, ...]:
    if action in MOVES:
        return ("approach", "move_away", "collide")
    if action == "hop":
        return ("jump_over", "left_of", "above")
    return ("left_of", "above")


def sample_once(rng: np.random.Generator, frames: int, force: Force | None = None,
                third_object_share: float = 0.5) -> tuple[tuple[WorldObject, ...],
                                                          tuple[RelationTriple, ...]] | None:
    """One attempt at objects and relations; None when the layout did not fit."""
    force = force or Force()
    colour_a = shape_a = action_a = shape_b = None
    if force.triple:
        colour_a, shape_a, action_a = force.triple
        relation = _pick(rng, _compatible_relations(action_a))
    elif force.role:
        shape_a, relation, shape_b = force.role
    else:
        relation = _pick(rng, RELATIONS)
    app_a = sample_appearance(rng, set(), colour_a, shape_a)
    if action_a == "spin" and app_a[3] == "plain":
        app_a = (*app_a[:3], "striped")
    app_b = sample_appearance(rng, {app_a[:2]}, None, shape_b)
    act_a, act_b = pair_actions(rng, relation, app_a[3], app_b[3], action_a)
    relations: tuple[RelationTriple, ...] = ((0, relation, 1),)
    a0, b0 = new_object(rng, app_a, act_a), new_object(rng, app_b, act_b)
    for _ in range(PLACEMENT_TRIES):
        objects: tuple[WorldObject, ...] = place_pair(rng, relation, a0, b0)
        if scene_valid(Scene("", 0, 0, {}, objects, relations), frames):
            break
    else:
        return None
    if rng.random() < third_object_share:
        app_c = sample_appearance(rng, {app_a[:2], app_b[:2]})
        c = new_object(rng, app_c, _pick(rng, allowed_actions(app_c[3], ACTIONS)))
        for _ in range(30):
            cx, cy = rng.uniform(0.1, 0.9, size=2)
            trial = (*objects, replace(c, x=_round(cx), y=_round(cy)))
            extra = tuple(secondary_relations(trial, frames))
            if scene_valid(Scene("", 0, 0, {}, trial, relations + extra), frames):
                return trial, relations + extra
    return objects, relations


def combos(objects: tuple[WorldObject, ...], relations: tuple[RelationTriple, ...]) -> tuple[
        set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """The (colour, shape, action) triples and (shape, relation, shape) role pairs of a clip."""
    triples = {(o.colour, o.shape, o.action) for o in objects}
    roles = {(objects[s].shape, p, objects[o].shape) for s, p, o in relations}
    return triples, roles
