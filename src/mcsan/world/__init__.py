"""The embedded default data set: a synthetic compositional video-text world.

``generate_world(out_dir, n_videos, seed)`` renders H.264 clips of shaded shapes doing
actions and standing in relations, with true captions, the ground-truth structure of
every clip and caption, a compositional test split, and per-level twin clips.

May import: core and data (its native format and clip writer); nothing above.
"""

from mcsan.world.generate import (
    STRUCTURE_NAME,
    TRUTH_NAME,
    TWINS_NAME,
    WORLD_NAME,
    WorldSummary,
    generate_world,
)
from mcsan.world.splits import TWIN_LEVELS, structure_levels

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
