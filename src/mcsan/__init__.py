"""mcsan: text-to-video and video-to-text retrieval with the Multi-Level Cross-Modal
Semantic Alignment Network (Nian et al., Mathematics 2022, 10(18), 3346)."""

__version__ = "0.1.0"

LEVELS: tuple[str, ...] = ("global", "entity", "action", "relation")
"""The four semantic levels, in their canonical order."""

ATTRIBUTE_LEVELS: tuple[str, ...] = ("entity", "action", "relation")
"""Levels that carry attribute labels (entity words, action words, relation triplets)."""
