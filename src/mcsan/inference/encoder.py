"""The Encoder protocol: what twin accuracy, search and the demo need of a trained model.

Two stages: the first (levels and their fused score: ``encode_captions``,
``encode_features``, ``score``) and the second (the binding matcher: ``has_matcher``,
``matcher_streams``, ``match_pairs``), which a model without a matcher reports as absent.

:class:`mcsan.inference.retriever.Retriever` (a checkpoint) implements it. Embeddings are per level,
``{level: (N, d) float32}``; caption embeddings are retrieval embeddings, so the fused score
of :mod:`mcsan.model.scoring` is ``sum_l level_weights[l] * <t_l, v_l>`` (what :meth:`score`
returns as ``"fused"`` and what a search index ranks by).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from mcsan.data.video.store import FeatureSpec


class Encoder(Protocol):
    """A trained model that embeds captions and clips (see the module docstring)."""

    @property
    def levels(self) -> tuple[str, ...]:
        """The model's levels, in canonical order (the keys of every embedding dict)."""
        ...

    @property
    def level_weights(self) -> Mapping[str, float]:
        """Fused-score weight of each level."""
        ...

    @property
    def checkpoint_sha256(self) -> str:
        """Identity of the weights (an index records it to refuse another model's queries)."""
        ...

    @property
    def feature_set(self) -> str:
        """Name of the feature set the model was trained on."""
        ...

    @property
    def feature_spec(self) -> FeatureSpec:
        """Backbone, frame size, frames and stream shapes clips must be extracted with."""
        ...

    def encode_captions(self, captions: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-level retrieval embeddings (N, d) of N captions."""
        ...

    def encode_features(
        self, features: Sequence[Mapping[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Per-level unit embeddings (M, d) of M clips given as ``{stream: (T, ...)}``."""
        ...

    def score(
        self, text_emb: Mapping[str, np.ndarray], video_emb: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """level | ``"fused"`` -> (N, M) scores of captions against clips."""
        ...

    @property
    def has_matcher(self) -> bool:
        """Whether the model has a binding matcher (the second stage) to re-rank with."""
        ...

    @property
    def matcher_streams(self) -> tuple[str, ...]:
        """The feature streams the matcher reads (empty without a matcher)."""
        ...

    def match_pairs(self, captions: Sequence[str], features: Sequence[Mapping[str, np.ndarray]],
                    caption_rows: np.ndarray, clip_rows: np.ndarray,
                    terms: Sequence[str] | None = None) -> np.ndarray:  # fmt: skip
        """The matcher's score of caption ``caption_rows[p]`` against clip ``clip_rows[p]``:
        (P,) float32 (``terms``: the mean of only these terms); CheckpointError without a
        matcher."""
        ...
