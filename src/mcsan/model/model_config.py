"""ModelConfig: every architectural choice of MCSAN, the paper-silent ones included.

The MCSAN paper (Nian et al., 2022) states the four levels, the parameter-shared attribute
projection, KL alignment and focal BCE. Everything else below is *our* default, taken from
the HGR -> HANet lineage the paper builds on; each is a field so that it can be ablated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mcsan import ATTRIBUTE_LEVELS, LEVELS
from mcsan.core.errors import ConfigError
from mcsan.core.validate import check_section


@dataclass
class ModelConfig:
    """Architecture of the MCSAN model (plain dataclass of simple types)."""

    # Semantic levels that are built and matched; any subset of mcsan.LEVELS (order kept).
    # ("global",) with no attribute levels is the plain dual-encoder baseline.
    levels: tuple[str, ...] = LEVELS
    # Dimension of the common space every level is projected to (HGR: 1024).
    embed_dim: int = 1024
    # Word embedding size when no word vectors are given; with vectors, their own size is used.
    word_dim: int = 300
    # Output size of the text BiGRU (two directions of text_hidden // 2, concatenated).
    text_hidden: int = 1024
    # Size of video frame tokens and output size of the video BiGRU (two directions of half).
    video_hidden: int = 1024
    # Keep the word embeddings fixed at their initial (GloVe) values.
    freeze_words: bool = False
    # Number of learned entity slots that cross-attend over frame and grid tokens.
    entity_slots: int = 4
    # Attention heads of the slot cross-attention and the relation self-attention.
    attention_heads: int = 4
    # Hidden size of the additive attention-pooling scorers.
    attention_hidden: int = 256
    # Odd temporal kernel sizes of the action branch's 1-D convolutions (one conv each).
    action_kernel_sizes: tuple[int, ...] = (3, 5)
    # Output channels of each action convolution (the action feature is their concatenation).
    action_channels: int = 256
    # Feed frame differences x_t - x_{t-1} to the action convolutions besides the frames.
    action_frame_differences: bool = True
    # "frames": the action level is the temporal convolutions over frame tokens; "cell_tensor":
    # besides them, each grid cell's appearance (x) its motion over three frames, and on the
    # text side the agent's noun phrase (x) the verb: who does what (mcsan.model.cells).
    action_mode: Literal["frames", "cell_tensor"] = "frames"
    # How entity slots interact for the relation level: "geometric" (every ordered slot pair
    # through separate subject / object projections plus the pair's geometry over time, read
    # from where each slot attends on the grid: mcsan.model.relation), "self_attention" over
    # slots (order-free; the first design), "relation_network" (an MLP over ordered pairs
    # of slot contents, no geometry) or "cell_tensor" (no slots: every ordered pair of grid
    # cells as subject (x) object (x) geometry-in-time, text triplets as subject (x) object
    # (x) predicate: mcsan.model.cells).
    relation_mode: Literal["geometric", "cell_tensor", "self_attention", "relation_network"] = (
        "geometric"
    )
    # How the entity level reads the clip: "slots" (K learned queries cross-attending over
    # frame and grid tokens) or "cell_tensor" (each grid cell as a(x) (x) b(x), each noun
    # phrase as p (x) q: both halves of a phrase must match the same cell; mcsan.model.cells).
    entity_mode: Literal["slots", "cell_tensor"] = "slots"
    # Facts about one object enter the relation level too, as triplets over the same object:
    # (entity, "is", entity) and (agent, action, agent); with the cell-pair modes they meet
    # the video's same-cell pairs, so colour-with-shape and who-does-what are bound there.
    relation_unary: bool = False
    # relation_mode cell_tensor: a subject's / object's text feature also reads a causal
    # window of three words ending at its noun ("a pink diamond"), so its own modifiers reach
    # it (entity_mode cell_tensor always reads it).
    relation_phrases: bool = False
    # True: ONE Linear per level maps both modalities' embeddings to attribute logits (the
    # paper's parameter-shared projection). False: separate heads per modality (ablation).
    shared_attribute_heads: bool = True
    # Levels with an attribute head (only those also in `levels` and in attribute_sizes).
    # "global" may be added when the data supplies global attribute labels.
    attribute_levels: tuple[str, ...] = ATTRIBUTE_LEVELS
    # Fused similarity weight per level; missing levels get an equal share. Normalised to
    # sum to 1 over the enabled levels.
    level_weights: dict[str, float] = field(default_factory=dict)
    # Learn the fused weights (softmax over levels, initialised from level_weights).
    learn_level_weights: bool = False
    # A caption that names no entity / action / relation: "skip" leaves that level out of its
    # fused score (weights renormalised over the levels it has) and out of that level's
    # triplet and KL terms; "empty" scores a learned "empty" embedding like any other (every
    # caption then gets a similarity at every level, including noise from absent levels).
    absent_levels: Literal["skip", "empty"] = "skip"
    # Dropout on frame tokens, word embeddings and pooled level features.
    dropout: float = 0.2
    # The binding matcher (mcsan.model.matcher): a second, text-conditioned stage that grounds
    # each noun phrase in the grid cells and checks its colour, action and relations there.
    # It is trained beside the levels (loss.lambda_match) and re-ranks the fused score's
    # shortlist (the run config's ``rerank`` section: reranked = fused + weight * match).
    # The fused score, the chunked evaluator and the search index are unchanged; both
    # numbers are reported.
    rerank: bool = False
    rerank_dim: int = 64
    """Width of the matcher's projected cells and phrases."""
    # The relation term also counts how well subject and object are found (the mean of
    # their attended cosines) beside the predicate match: half each.
    rerank_presence: bool = False

    def __post_init__(self) -> None:
        self.levels = tuple(self.levels)
        self.attribute_levels = tuple(self.attribute_levels)
        self.action_kernel_sizes = tuple(int(k) for k in self.action_kernel_sizes)
        self.level_weights = dict(self.level_weights)
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the bad field and the fix."""
        check_section("model", self)  # first: the checks below divide by these
        if not self.levels:
            raise ConfigError("model.levels is empty: enable at least one of " + ", ".join(LEVELS))
        unknown = [lvl for lvl in (*self.levels, *self.attribute_levels) if lvl not in LEVELS]
        unknown += [lvl for lvl in self.level_weights if lvl not in LEVELS]
        if unknown:
            raise ConfigError(f"model config names unknown level(s) {unknown}; use {LEVELS}")
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"model.levels repeats a level: {self.levels}")
        if (
            any(k < 1 or k % 2 == 0 for k in self.action_kernel_sizes)
            or not self.action_kernel_sizes
        ):
            raise ConfigError(
                f"model.action_kernel_sizes={self.action_kernel_sizes}: give odd sizes >= 1"
            )
        for name in ("text_hidden", "video_hidden"):
            if getattr(self, name) % 2:
                raise ConfigError(f"model.{name} must be even (two GRU directions of half)")
        if self.video_hidden % self.attention_heads:
            raise ConfigError("model.video_hidden must be divisible by model.attention_heads")
        if any(w < 0 for w in self.level_weights.values()):
            raise ConfigError(f"model.level_weights must be >= 0: {self.level_weights}")
        if sum(self.level_weights.get(lvl, 1.0) for lvl in self.levels) <= 0:
            raise ConfigError("model.level_weights give every enabled level weight 0")

    def initial_level_weights(self) -> dict[str, float]:
        """The fused weights of the enabled levels, normalised to sum to 1."""
        raw = {lvl: float(self.level_weights.get(lvl, 1.0)) for lvl in self.levels}
        total = sum(raw.values())
        return {lvl: w / total for lvl, w in raw.items()}

    @classmethod
    def global_only(cls, **overrides: object) -> ModelConfig:
        """The plain dual-encoder baseline: the global level only, no attribute heads."""
        return cls(**{"levels": ("global",), "attribute_levels": (), **overrides})
