"""The content of one clip: objects, one action each, relations, trajectories, checks.

Coordinates are fractions of the frame side (x to the right, y downwards), so a scene
does not depend on the pixel size it is rendered at. A scene is a pure function of its
random generator: the same seed gives the same scene on any machine and worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcsan.world.lexicon import IN_PLACE, MOVES, SIZES

EDGE = 0.02  # objects keep this margin to the frame border
GAP = 0.02  # objects that do not touch keep this clearance
DENSE_STEPS = 33  # time samples for geometric checks, besides the frames themselves

RelationTriple = tuple[int, str, int]


@dataclass(frozen=True)
class WorldObject:
    """One shape in a clip: its appearance, its action and the parameters of its motion."""

    colour: str
    shape: str
    size: str
    texture: str
    action: str
    x: float
    y: float
    dx: float = 0.0  # total displacement of a move (or the sideways part of a jump over)
    dy: float = 0.0
    stop: float = 1.0  # fraction of the clip after which a move is finished (collisions)
    hop: float = 0.0  # height of a hop
    scale_end: float = 1.0  # final scale of grow / shrink
    turns: float = 0.0  # signed number of turns of a spin
    blink_period: int = 2  # frames on, then frames off
    tilt: float = 0.0  # resting rotation in radians

    @property
    def radius(self) -> float:
        """Base radius as a fraction of the frame side."""
        return SIZES[self.size]

    @property
    def max_scale(self) -> float:
        """Largest scale the object reaches."""
        return max(1.0, self.scale_end)

    def to_json(self) -> dict[str, Any]:
        """Appearance, action and motion parameters as a JSON-able dict."""
        return {
            "colour": self.colour, "shape": self.shape, "size": self.size,
            "texture": self.texture, "action": self.action, "x": self.x, "y": self.y,
            "motion": {"dx": self.dx, "dy": self.dy, "stop": self.stop, "hop": self.hop,
                       "scale_end": self.scale_end, "turns": self.turns,
                       "blink_period": self.blink_period, "tilt": self.tilt},
        }


@dataclass(frozen=True)
class Scene:
    """Everything that is true of one clip; rendering and captions derive from it."""

    video_id: str
    index: int
    render_seed: int
    background: dict[str, Any]
    objects: tuple[WorldObject, ...]
    relations: tuple[RelationTriple, ...]
    split: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self, frames: int) -> dict[str, Any]:
        """The structure.jsonl record: objects, actions, relations, per-frame trajectories."""
        tracks = [trajectory(obj, frames) for obj in self.objects]
        objects = []
        for number, (obj, track) in enumerate(zip(self.objects, tracks, strict=True)):
            record = {"id": number, **obj.to_json()}
            record["trajectory"] = {
                key: [round(float(v), 4) for v in values] if key != "visible"
                else [bool(v) for v in values]
                for key, values in track.items()
            }
            objects.append(record)
        return {
            "video_id": self.video_id, "index": self.index, "split": self.split,
            "render_seed": self.render_seed, "background": self.background,
            "objects": objects,
            "relations": [{"subject": s, "predicate": p, "object": o}
                          for s, p, o in self.relations],
            **self.meta,
        }


def geometry(obj: WorldObject, s: np.ndarray) -> dict[str, np.ndarray]:
    """Centre, ground line, scale and angle of ``obj`` at clip times ``s`` in [0, 1]."""
    progress = np.clip(s / obj.stop, 0.0, 1.0)
    x = obj.x + obj.dx * progress
    ground = obj.y + obj.dy * progress
    y = ground - obj.hop * np.sin(np.pi * s)
    scale = 1.0 + (obj.scale_end - 1.0) * s
    angle = obj.tilt + 2.0 * np.pi * obj.turns * s
    return {"x": x, "y": y, "ground_y": ground, "scale": scale, "angle": angle}


def frame_times(frames: int) -> np.ndarray:
    """Clip time in [0, 1] of each frame."""
    return np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)


def trajectory(obj: WorldObject, frames: int) -> dict[str, np.ndarray]:
    """Per-frame x, y, ground_y, scale, angle and visibility of ``obj``."""
    track = geometry(obj, frame_times(frames))
    steps = np.arange(frames)
    if obj.action == "blink":
        track["visible"] = (steps // obj.blink_period) % 2 == 0
    else:
        track["visible"] = np.ones(frames, dtype=bool)
    return track


def _check_times(frames: int) -> np.ndarray:
    return np.union1d(frame_times(frames), np.linspace(0.0, 1.0, DENSE_STEPS))


def _distance_margin(a: WorldObject, b: WorldObject, s: np.ndarray) -> np.ndarray:
    """Centre distance minus the sum of the current radii (negative: overlap)."""
    ga, gb = geometry(a, s), geometry(b, s)
    dist = np.hypot(ga["x"] - gb["x"], ga["y"] - gb["y"])
    return dist - (a.radius * ga["scale"] + b.radius * gb["scale"])


def relation_holds(scene: Scene, relation: RelationTriple, frames: int) -> bool:
    """Whether the trajectories of ``scene`` make ``relation`` true (the ground truth check)."""
    subject_id, predicate, object_id = relation
    a, b = scene.objects[subject_id], scene.objects[object_id]
    s = _check_times(frames)
    ga, gb = geometry(a, s), geometry(b, s)
    margin = _distance_margin(a, b, s)
    dist = np.hypot(ga["x"] - gb["x"], ga["y"] - gb["y"])
    b_still = b.action in IN_PLACE
    if predicate in ("approach", "move_away"):
        change = dist[-1] - dist[0]
        closer = change < -0.12 if predicate == "approach" else change > 0.12
        monotone = np.all(np.diff(dist) <= 1e-9) if predicate == "approach" else np.all(
            np.diff(dist) >= -1e-9)
        return bool(a.action in MOVES and b_still and closer and monotone and margin.min() > GAP)
    if predicate == "collide":
        return bool(a.action in MOVES and b_still and margin[0] > 0.08 and margin[-1] < 0.0)
    if predicate == "jump_over":
        crossed = np.sign(ga["x"][0] - gb["x"][0]) != np.sign(ga["x"][-1] - gb["x"][-1])
        mid = int(np.argmin(np.abs(ga["x"] - gb["x"])))
        clear = gb["y"][mid] - ga["y"][mid] > 0.8 * (a.radius * ga["scale"][mid]
                                                      + b.radius * gb["scale"][mid])
        return bool(a.action == "hop" and b_still and crossed and clear)
    reach = a.radius * ga["scale"] + b.radius * gb["scale"]
    if predicate == "left_of":
        aligned = np.abs(ga["ground_y"] - gb["ground_y"]).max() <= 0.1
        return bool(aligned and np.all(gb["x"] - ga["x"] > reach + GAP)
                    and a.action not in MOVES and b.action not in MOVES)
    if predicate == "above":
        aligned = np.abs(ga["x"] - gb["x"]).max() <= 0.1
        return bool(aligned and np.all(gb["y"] - ga["y"] > reach + GAP)
                    and a.action not in MOVES and b.action not in MOVES)
    raise ValueError(f"unknown relation {predicate!r}")


def scene_valid(scene: Scene, frames: int) -> bool:
    """Objects stay in the frame, never touch unless a relation says so, relations hold."""
    s = _check_times(frames)
    for obj in scene.objects:
        g = geometry(obj, s)
        reach = obj.radius * g["scale"]
        if (g["x"] - reach).min() < EDGE or (g["x"] + reach).max() > 1 - EDGE:
            return False
        if (g["y"] - reach).min() < EDGE or (g["y"] + reach).max() > 1 - EDGE:
            return False
    contact = {frozenset((a, b)) for a, p, b in scene.relations if p in ("collide", "jump_over")}
    for i in range(len(scene.objects)):
        for j in range(i + 1, len(scene.objects)):
            if frozenset((i, j)) in contact:
                continue
            if _distance_margin(scene.objects[i], scene.objects[j], s).min() < GAP:
                return False
    return all(relation_holds(scene, rel, frames) for rel in scene.relations)
