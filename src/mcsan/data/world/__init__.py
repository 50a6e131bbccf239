"""The embedded default data set: a synthetic compositional video-text world.

``generate_world(out_dir, n_videos, seed)`` renders H.264 clips of shaded shapes doing
actions and standing in relations, with true captions, the ground-truth structure of
every clip and caption, a compositional test split, and per-level twin clips.
"""

from mcsan.data.world.splits import TWIN_LEVELS, structure_levels
from mcsan.data.world.writer import (
    STRUCTURE_NAME,
    TRUTH_NAME,
    TWINS_NAME,
    WORLD_NAME,
    WorldSummary,
    generate_world,
)

__all__ = [
    "STRUCTURE_NAME",
    "TRUTH_NAME",
    "TWINS_NAME",
    "TWIN_LEVELS",
    "WORLD_NAME",
    "WorldSummary",
    "generate_world",
    "structure_levels",
]
