"""Drawing clips with numpy: shaded, outlined, textured shapes with drop shadows.

Shapes are drawn as cached sprites (alpha mask + shaded colour) keyed by shape, colour,
texture, quantised radius and angle, then alpha-composited onto a muted background.
Rendering is a pure function of the scene, so frames do not depend on the worker.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from mcsan.world.lexicon import COLOURS
from mcsan.world.scene import Scene, trajectory

SUPERSAMPLE = 2  # sub-pixel samples per axis for anti-aliased edges
OUTLINE = 0.84  # the interior is the shape scaled by this; the rest is the outline
SHADOW_STRENGTH = 0.38
ANGLE_STEP = math.radians(3.0)
_CACHE_SIZE = 4096
_sprites: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_masks: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()


def shape_inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in units of the radius (v downwards) lie inside ``shape``."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v <= 0.92
    if shape == "square":
        return np.maximum(au, av) <= 0.74
    if shape == "triangle":
        return (v <= 0.55) & (v >= -0.95 + 1.732 * au)
    if shape == "diamond":
        return au / 0.78 + av <= 1.0
    if shape == "hexagon":
        return (av <= 0.82) & (au * 0.866 + av * 0.5 <= 0.82)
    if shape == "star":
        theta = np.arctan2(u, -v) * (5.0 / (2.0 * np.pi))
        spoke = np.abs(theta - np.round(theta)) * 2.0  # 0 at a tip, 1 between tips
        return np.hypot(u, v) <= 1.0 - 0.55 * spoke
    if shape == "heart":
        x, y = u * 1.15, -v * 1.15 + 0.12
        return (x * x + y * y - 1.0) ** 3 - x * x * y**3 <= 0.0
    raise ValueError(f"unknown shape {shape!r}")


def _hash_noise(iu: np.ndarray, iv: np.ndarray) -> np.ndarray:
    value = np.sin(iu * 12.9898 + iv * 78.233) * 43758.5453
    return value - np.floor(value)


def _texture(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Brightness factor of a pattern that turns with the object (u, v rotate with it)."""
    grain = 1.0 + 0.10 * (_hash_noise(np.floor(u * 7.0), np.floor(v * 7.0)) - 0.5)
    if texture == "striped":
        return grain * np.where((u * 1.7 + 0.25) % 1.0 < 0.5, 0.68, 1.0)
    if texture == "spotted":
        fu, fv = (u * 1.8) % 1.0 - 0.5, (v * 1.8) % 1.0 - 0.5
        return grain * np.where(fu * fu + fv * fv < 0.055, 0.6, 1.0)
    return grain


def _quantise(radius_px: float, angle: float) -> tuple[float, int]:
    radius_q = max(1.0, round(radius_px * 2.0) / 2.0)
    return radius_q, round(angle / ANGLE_STEP) % round(2 * math.pi / ANGLE_STEP)


def _cached(cache: OrderedDict, key: tuple, build):
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    value = build()
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _grid(radius_q: float, angle_q: int) -> tuple[np.ndarray, ...]:
    """Pixel-centre coordinates in radius units: world (x, y) and rotated (u, v)."""
    half = int(math.ceil(radius_q)) + 1
    xs = np.arange(-half, half + 1, dtype=np.float64) / radius_q
    y, x = np.meshgrid(xs, xs, indexing="ij")
    cos, sin = math.cos(angle_q * ANGLE_STEP), math.sin(angle_q * ANGLE_STEP)
    return x, y, cos * x + sin * y, -sin * x + cos * y


def shape_mask(shape: str, radius_q: float, angle_q: int) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased (alpha, interior alpha) of a shape; cached by its quantised key."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        half = int(math.ceil(radius_q)) + 1
        pixels = np.arange(-half, half + 1, dtype=np.float64)
        sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
        fine = (pixels[:, None] + sub[None, :]).reshape(-1) / radius_q
        y, x = np.meshgrid(fine, fine, indexing="ij")
        cos, sin = math.cos(angle_q * ANGLE_STEP), math.sin(angle_q * ANGLE_STEP)
        u, v = cos * x + sin * y, -sin * x + cos * y
        n, k = len(pixels), SUPERSAMPLE
        alpha = shape_inside(shape, u, v).reshape(n, k, n, k).mean(axis=(1, 3))
        inner = shape_inside(shape, u / OUTLINE, v / OUTLINE).reshape(n, k, n, k).mean(axis=(1, 3))
        return alpha.astype(np.float32), inner.astype(np.float32)

    return _cached(_masks, (shape, radius_q, angle_q), build)


def sprite(shape: str, colour: str, texture: str, radius_px: float,
           angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (h, w, 3), alpha (h, w)) of one shaded shape; cached by its quantised key."""
    radius_q, angle_q = _quantise(radius_px, angle)

    def build() -> tuple[np.ndarray, np.ndarray]:
        alpha, inner = shape_mask(shape, radius_q, angle_q)
        x, y, u, v = _grid(radius_q, angle_q)
        dome = np.sqrt(np.clip(1.0 - x * x - y * y, 0.0, 1.0))
        light = 0.55 + 0.45 * np.clip(-0.45 * x - 0.55 * y + 0.6 * dome, -0.6, 1.0)
        gloss = 0.28 * np.exp(-((x + 0.35) ** 2 + (y + 0.4) ** 2) / 0.05)
        shade = (light * _texture(texture, u, v))[..., None]
        body = np.clip(np.asarray(COLOURS[colour]) * shade + gloss[..., None], 0.0, 1.0)
        inside = np.divide(inner, alpha, out=np.zeros_like(alpha), where=alpha > 0)[..., None]
        rgb = body * inside + body * 0.42 * (1.0 - inside)
        return rgb.astype(np.float32), alpha

    return _cached(_sprites, (shape, colour, texture, radius_q, angle_q), build)


def background(scene: Scene, size: int) -> np.ndarray:
    """The clip's static background (size, size, 3) float32 in [0, 1]."""
    spec = scene.background
    colour = np.asarray(spec["colour"], dtype=np.float32)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    rng = np.random.default_rng(scene.render_seed)
    if spec["kind"] == "gradient":
        along = xx * math.cos(spec["angle"]) + yy * math.sin(spec["angle"])
        t = np.clip(along / 1.42 + 0.5, 0.0, 1.0)[..., None]
        colour2 = np.asarray(spec["colour2"], dtype=np.float32)
        image = colour * (1 - t) + colour2 * t
    else:
        image = np.broadcast_to(colour, (size, size, 3)).copy()
    if spec["kind"] == "noise":
        coarse = rng.normal(size=(5, 5, 3)).astype(np.float32)
        grid = np.linspace(0.0, 4.0, size)
        low, frac = np.minimum(grid.astype(int), 3), (grid - np.minimum(grid.astype(int), 3))
        weights = np.zeros((size, 5), dtype=np.float32)
        weights[np.arange(size), low] = 1 - frac
        weights[np.arange(size), low + 1] += frac
        # Explicit sums, not BLAS: a matmul may round differently in another process.
        rows = (weights[:, :, None, None] * coarse[None]).sum(axis=1)
        smooth = (rows[:, None, :, :] * weights[None, :, :, None]).sum(axis=2)
        fine = rng.normal(size=(size, size, 1)).astype(np.float32)
        image = image + spec["noise"] * (smooth + 0.3 * fine)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _region(frame: np.ndarray, patch: np.ndarray, cx: float, cy: float):
    """Slices of ``frame`` and ``patch`` where a patch centred at (cx, cy) overlaps it."""
    half = patch.shape[0] // 2
    top, left = int(round(cy)) - half, int(round(cx)) - half
    size = frame.shape[0]
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(size, top + patch.shape[0]), min(size, left + patch.shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def render_clip(scene: Scene, frames: int, size: int) -> np.ndarray:
    """All frames of a clip as uint8 (frames, size, size, 3)."""
    canvas = background(scene, size)
    tracks = [trajectory(obj, frames) for obj in scene.objects]
    order = sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].action == "hop")
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        frame = canvas.copy()
        drawn = []
        for i in order:
            obj, track = scene.objects[i], tracks[i]
            if not track["visible"][t]:
                continue
            radius = obj.radius * track["scale"][t] * size
            rgb, alpha = sprite(obj.shape, obj.colour, obj.texture, radius, track["angle"][t])
            drawn.append((track["x"][t] * size, track["y"][t] * size, track["ground_y"][t] * size,
                          radius, rgb, alpha))
        for cx, _, ground, radius, _, alpha in drawn:
            where = _region(frame, alpha, cx + 0.15 * radius, ground + 0.25 * radius)
            if where:
                dst, src = where
                frame[dst] *= (1.0 - SHADOW_STRENGTH * alpha[src])[..., None]
        for cx, cy, _, _, rgb, alpha in drawn:
            where = _region(frame, alpha, cx, cy)
            if where:
                dst, src = where
                a = alpha[src][..., None]
                frame[dst] = frame[dst] * (1.0 - a) + rgb[src] * a
        out[t] = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out
