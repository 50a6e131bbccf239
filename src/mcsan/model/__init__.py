"""The MCSAN model: text and video encoders over four levels, shared attribute heads."""

from mcsan.model.config import ModelConfig
from mcsan.model.heads import AttributeHeads, LevelOutput, level_similarities
from mcsan.model.mcsan import MCSAN, check_attribute_sizes
from mcsan.model.text import TextEncoder
from mcsan.model.video import VideoEncoder

__all__ = [
    "MCSAN",
    "AttributeHeads",
    "LevelOutput",
    "ModelConfig",
    "TextEncoder",
    "VideoEncoder",
    "check_attribute_sizes",
    "level_similarities",
]
