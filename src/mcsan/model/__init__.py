"""The MCSAN model: text and video encoders over four levels, shared attribute heads.

Ablation switches (all ``ModelConfig`` / ``LossConfig`` fields):
- drop a level: ``ModelConfig.levels`` (any subset of mcsan.LEVELS);
- plain dual encoder: ``ModelConfig.global_only()`` (levels=("global",), no attribute heads);
- separate instead of shared attribute heads: ``shared_attribute_heads=False``;
- KL off: ``LossConfig.use_kl=False``; plain BCE: ``LossConfig.use_focal=False``;
- fused-only triplet: ``LossConfig.per_level_triplet=False``; per-level only:
  ``LossConfig.fused_triplet=False``; relation by ``relation_mode="relation_network"``.
"""

from mcsan.model.attributes import AttributeHeads
from mcsan.model.config import ModelConfig
from mcsan.model.mcsan import MCSAN
from mcsan.model.scoring import LevelOutput, level_similarities
from mcsan.model.text import TextEncoder
from mcsan.model.video import VideoEncoder

__all__ = [
    "MCSAN",
    "AttributeHeads",
    "LevelOutput",
    "ModelConfig",
    "TextEncoder",
    "VideoEncoder",
    "level_similarities",
]
