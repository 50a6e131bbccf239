"""The MCSAN model: text and video encoders over four levels, shared attribute heads.

Ablation switches (all ``ModelConfig`` / ``LossConfig`` fields):
- drop a level: ``ModelConfig.levels`` (any subset of mcsan.LEVELS);
- plain dual encoder: ``ModelConfig.global_only()`` (levels=("global",), no attribute heads);
- separate instead of shared attribute heads: ``shared_attribute_heads=False``;
- KL off: ``LossConfig.use_kl=False``; plain BCE: ``LossConfig.use_focal=False``;
- fused-only triplet: ``LossConfig.per_level_triplet=False``; per-level only:
  ``LossConfig.fused_triplet=False``; relation by ``relation_mode="relation_network"``.

May import: core only (never the data side). The first stage is the four levels and
their fused score (``scoring``); the second stage is the binding matcher (``matcher``);
``losses`` holds both stages' training terms.
"""

from mcsan.model.attribute_heads import AttributeHeads
from mcsan.model.model_config import ModelConfig
from mcsan.model.network import MCSAN
from mcsan.model.scoring import LevelOutput, level_similarities
from mcsan.model.text_encoder import TextEncoder
from mcsan.model.video_encoder import VideoEncoder

__all__ = [
    "MCSAN",
    "AttributeHeads",
    "LevelOutput",
    "ModelConfig",
    "TextEncoder",
    "VideoEncoder",
    "level_similarities",
]
