"""A trained model from its checkpoint: the :class:`~mcsan.inference.encoder.Encoder` that twin
accuracy, search and the demo use, and :func:`evaluate_checkpoint`.

:class:`Retriever` wraps a self-contained checkpoint (see :mod:`mcsan.inference.checkpoint`)::

    retriever = Retriever.from_checkpoint("runs/x/best.pt")
    text = retriever.encode_captions(["a red ball moves left"])      # level -> (N, d)
    video = retriever.encode_features([store.read(video_id)])        # level -> (M, d)
    scores = retriever.score(text, video)                            # level | "fused" -> (N, M)

The batched encoders behind it are :mod:`mcsan.evaluate.embed`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcsan.core.errors import CheckpointError, FeatureError
from mcsan.core.io import file_sha256
from mcsan.data.loading.collate import encode_caption
from mcsan.data.loading.dataset import RetrievalData
from mcsan.data.video.store import FeatureSpec
from mcsan.evaluate.ceiling import split_oracle
from mcsan.evaluate.embed import embed_captions, embed_videos
from mcsan.evaluate.shortlist import ShortlistPolicy
from mcsan.evaluate.split import evaluate_split
from mcsan.inference.checkpoint import (
    attributes_from_state,
    config_from_state,
    load_checkpoint,
    model_from_state,
    vocab_from_state,
)

PARSED_KEPT = 4096
"""Parsed captions a :class:`Retriever` keeps (the most recently used)."""


class Retriever:
    """A trained MCSAN model with its vocabulary, ready to embed text and clips.

    It implements :class:`mcsan.inference.encoder.Encoder`.
    """

    def __init__(self, state: dict[str, Any], source: str | os.PathLike[str], device: str = "cpu",
                 shortlist: ShortlistPolicy | None = None):  # fmt: skip
        """Use :meth:`from_checkpoint`; ``state`` is a loaded checkpoint dict."""
        self.path = Path(source)
        self.device = torch.device(device)
        self.config = config_from_state(state, source)
        self.model = model_from_state(state, source).to(self.device)
        self.vocab = vocab_from_state(state["vocab"])
        self.attributes = attributes_from_state(state["attributes"])
        self.feature_set: str = str(state["feature_set"])
        self.feature_spec = FeatureSpec.from_json(state["feature_spec"])
        self.streams: tuple[str, ...] = tuple(state["streams"])
        self.epoch = int(state.get("epoch", 0))
        self.shortlist: ShortlistPolicy = shortlist or ShortlistPolicy.from_config(
            self.config.rerank)
        """The binding matcher's shortlist (the checkpoint's ``rerank`` section unless given)."""
        self._sha256: str | None = None
        self._parser: Any = None
        self._parsed: OrderedDict[str, Any] = OrderedDict()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = "cpu",
                        shortlist: ShortlistPolicy | None = None) -> Retriever:  # fmt: skip
        """Load ``path`` (best.pt / last.pt); CheckpointError if missing or corrupt.
        ``shortlist``: re-rank with this policy instead of the checkpoint's."""
        return cls(load_checkpoint(path), path, device, shortlist)

    @property
    def levels(self) -> tuple[str, ...]:
        """The model's enabled levels, canonical order."""
        return tuple(self.model.levels)

    @property
    def level_weights(self) -> dict[str, float]:
        """Fused-score weight of each level."""
        return {level: float(w.detach()) for level, w in self.model.level_weights().items()}

    @property
    def checkpoint_sha256(self) -> str:
        """SHA-256 of the checkpoint file (indexes record it to detect a model change)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    def encode_parsed(self, parsed: Sequence[Any], batch_size: int = 256) -> dict[str, np.ndarray]:
        """Embeddings of already parsed captions (``ParsedCaption`` records)."""
        max_words = self.config.data.max_words
        encoded = [encode_caption(p, self.vocab, max_words) for p in parsed]
        return embed_captions(self.model, encoded, batch_size, self.device)

    def encode_captions(
        self, captions: Sequence[str], batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Parse and embed captions: level -> (N, d) float32, L2-normalised rows."""
        return self.encode_parsed(self._parse(captions), batch_size)

    def _parse(self, captions: Sequence[str]) -> list[Any]:
        """Parsed captions; the last :data:`PARSED_KEPT` are kept (both stages of a query,
        and of a batch of a server's queries, parse each caption once)."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._parsed))
        if missing:
            from mcsan.data.captions.parse import CaptionParser, check_captions

            check_captions(captions, False)  # a bad one is named by its index in ``captions``
            if self._parser is None:
                self._parser = CaptionParser()
            self._parsed.update(zip(missing, self._parser.parse(missing), strict=True))
        parsed = [self._parsed[c] for c in captions]
        for caption in captions:  # most recently used last; the oldest go first
            self._parsed.move_to_end(caption)
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.popitem(last=False)
        return parsed

    @property
    def has_matcher(self) -> bool:
        """Whether the model has a binding matcher (``model.rerank``) to re-rank with."""
        return self.model.matcher is not None

    def with_shortlist(self, shortlist: ShortlistPolicy) -> Retriever:
        """This retriever (the same model, shared) re-ranking with ``shortlist``; this one
        keeps its own policy."""
        if shortlist == self.shortlist:
            return self
        other = copy.copy(self)
        other.shortlist = shortlist
        return other

    @property
    def rerank_weight(self) -> float:
        """``reranked = fused + rerank_weight * match`` (:attr:`shortlist`)."""
        return self.shortlist.weight

    @property
    def matcher_streams(self) -> tuple[str, ...]:
        """The streams the binding matcher reads (a clip needs only these for
        :meth:`match_pairs`); empty without a matcher."""
        return tuple(self.model.matcher.cell_streams) if self.has_matcher else ()

    def match_pairs(self, captions: Sequence[str], features: Sequence[Mapping[str, np.ndarray]],
                    caption_rows: np.ndarray, clip_rows: np.ndarray,
                    terms: Sequence[str] | None = None) -> np.ndarray:  # fmt: skip
        """The binding matcher's score of caption ``caption_rows[p]`` against clip
        ``clip_rows[p]`` (rows of ``captions`` and ``features``; a clip needs only
        :attr:`matcher_streams`): (P,) float32; ``terms``: the mean of only these terms
        (e.g. the first stage's late terms)."""
        return self.match_encoded(captions, self.match_clips(features), caption_rows, clip_rows,
                                  terms)  # fmt: skip

    def match_clips(self, features: Sequence[Mapping[str, np.ndarray]]) -> Any:
        """The clips as the binding matcher reads them (``MatcherVideo``: unit cell keys,
        cell changes, frame mask), on the CPU; what a search index stores per clip."""
        from mcsan.evaluate.reranked import encode_match_video

        if not self.has_matcher:
            raise CheckpointError(f"{self.path} has no binding matcher (trained without "
                                  "model.rerank): use its fused score")  # fmt: skip
        self._check_streams(features, self.matcher_streams)
        return encode_match_video(self.model, features, self.matcher_streams,
                                  self.config.data.max_frames, device=self.device)  # fmt: skip

    @property
    def match_terms(self) -> tuple[str, ...]:
        """The binding matcher's terms (its re-ranking score is their mean; empty without a
        matcher)."""
        return tuple(self.model.matcher.terms) if self.has_matcher else ()

    @property
    def late_terms(self) -> tuple[str, ...]:
        """The matcher's terms the first stage adds (:attr:`shortlist`'s ``late_terms`` the
        matcher has; empty without a matcher)."""
        if not self.has_matcher:
            return ()
        return tuple(t for t in self.shortlist.late_terms if t in self.model.matcher.terms)

    def late_every(self, captions: Sequence[str], video: Any) -> np.ndarray:
        """The first stage's late terms (:attr:`late_terms`) of each caption against every
        clip of ``video`` (read by :meth:`match_clips` or from a matcher store): (captions,
        clips) float32, as evaluation scores them (:func:`mcsan.evaluate.first_stage.late_scores`)."""
        from mcsan.evaluate.first_stage import late_scores

        return late_scores(self.model, self.match_text(captions), video, self.device,
                           self.late_terms)  # fmt: skip

    def late_queries(self, captions: Sequence[str]) -> list[np.ndarray]:
        """Each caption's phrase queries of the late terms (entity phrases, action agents,
        relation subjects and objects): a (Q_i, key_dim) float32 array of unit rows per
        caption (Q_i may be 0)."""
        text = self.match_text(captions)
        width = int(self.model.matcher.key.out_features)
        out = []
        for row in range(len(captions)):
            parts = [query[row][text.masks[term][row]] for term in self.late_terms
                     if term in text.parts
                     for query in text.parts[term][: 2 if term == "relation" else 1]]  # fmt: skip
            out.append(torch.cat(parts).numpy() if parts else np.zeros((0, width), np.float32))
        return out

    def match_encoded(self, captions: Sequence[str], video: Any, caption_rows: np.ndarray,
                      clip_rows: np.ndarray, terms: Sequence[str] | None = None
                      ) -> np.ndarray:  # fmt: skip
        """:meth:`match_pairs` of clips already read by :meth:`match_clips`."""
        return self.match_scores(self.match_text(captions), video, caption_rows, clip_rows,
                                 terms)  # fmt: skip

    def match_text(self, captions: Sequence[str]) -> Any:
        """The captions as the binding matcher reads them (``MatcherText``), on the CPU."""
        from mcsan.evaluate.reranked import encode_match_text

        max_words = self.config.data.max_words
        encoded = [encode_caption(p, self.vocab, max_words) for p in self._parse(captions)]
        return encode_match_text(self.model, encoded, device=self.device)

    def match_scores(self, text: Any, video: Any, caption_rows: np.ndarray,
                     clip_rows: np.ndarray, terms: Sequence[str] | None = None
                     ) -> np.ndarray:  # fmt: skip
        """:meth:`match_encoded` of captions already read by :meth:`match_text`."""
        from mcsan.evaluate.reranked import pair_scores

        return pair_scores(self.model, text, video, caption_rows, clip_rows, self.device, terms)

    def _check_streams(self, features: Sequence[Mapping[str, np.ndarray]],
                       streams: Sequence[str] | None = None) -> None:  # fmt: skip
        """FeatureError unless every clip has the model's streams (or ``streams``) in their
        shapes."""
        for number, item in enumerate(features):
            for name in self.streams if streams is None else streams:
                expected = self.feature_spec.streams[name]
                array = item.get(name) if isinstance(item, Mapping) else None
                if array is None or tuple(np.shape(array)[1:]) != tuple(expected):
                    got = None if array is None else tuple(np.shape(array))
                    raise FeatureError(
                        f"clip {number}: stream {name!r} is {got}, the model "
                        f"({self.path}) needs (T, {', '.join(map(str, expected))}) from feature "
                        f"set {self.feature_set!r}; extract features with the same spec"
                    )

    def encode_features(
        self, features: Sequence[Mapping[str, np.ndarray]], batch_size: int = 64
    ) -> dict[str, np.ndarray]:
        """Embed clips given as ``{stream: (T, *shape)}`` dicts (extra streams ignored)."""
        self._check_streams(features)
        return embed_videos(
            self.model, features, self.streams, self.config.data.max_frames, batch_size, self.device
        )

    def score(
        self, text_emb: Mapping[str, np.ndarray], video_emb: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """level | "fused" -> (N_text, N_video) similarity.

        ``fused`` is the fused score of :mod:`mcsan.model.scoring`: the caption embeddings of
        :meth:`encode_captions` carry each caption's renormalisation, so it is
        ``sum_l w_l <t_l, v_l>`` here.
        """
        weights = self.level_weights
        scores = {
            level: np.asarray(text_emb[level]) @ np.asarray(video_emb[level]).T
            for level in self.levels
        }
        scores["fused"] = sum(weights[level] * scores[level] for level in self.levels)
        return scores


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    split: str = "test",
    dataset: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    batch_size: int | None = None,
    rerank_top_k: int | None = None,
    rerank_weight: float | None = None,
    rerank_fraction: float | None = None,
    shortlists: Sequence[Mapping[str, float]] = (),
    late_weight: float | None = None,
    late_terms: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics (fused and per level, and re-ranked with a binding matcher) of a checkpoint
    on ``split``.

    ``dataset`` defaults to the dataset the model was trained on; another native dataset
    must provide the same feature set streams (same per-frame shapes and backbone).
    ``rerank_top_k`` / ``rerank_fraction`` / ``rerank_weight`` / ``late_weight`` /
    ``late_terms`` replace the checkpoint's shortlist policy (:mod:`mcsan.evaluate.shortlist`); ``shortlists``: further shortlists,
    each ``{"top_k": K}`` or ``{"fraction": F}`` (the weight as above), each a
    ``"reranked <label>"`` row. On a world (:mod:`mcsan.world.oracle`) the oracle
    ceiling of the split comes too. Returns ``{"checkpoint", "checkpoint_sha256", "epoch",
    "dataset", "split", "captions", "videos", "dropped_captions", "rerank": {"top_k",
    "fraction", "weight", "late_weight", "shortlist"} or None, "oracle": {...} or None, "metrics":
    {"fused": {...}, level: {...}, "reranked": {...} with a matcher}}``.
    """
    retriever = Retriever.from_checkpoint(checkpoint, device)
    policy = retriever.shortlist.replaced(rerank_top_k, rerank_fraction, rerank_weight,
                                          late_weight, late_terms)
    data_cfg = dataclasses.replace(retriever.config.data)
    if dataset is not None:
        data_cfg.root = str(Path(dataset).resolve())
        data_cfg.parse_cache = None
    data = RetrievalData.load(
        data_cfg,
        (split,),
        vocab=retriever.vocab,
        attributes=retriever.attributes,
        feature_set=retriever.feature_set,
        streams=retriever.streams,
    )
    _check_compatible(retriever, data.feature_spec, data.root)
    captions, videos, _ = data.split_view(split)
    size = batch_size or retriever.config.train.eval_batch_size
    metrics = evaluate_split(retriever.model, data, split, size, retriever.device,
                             shortlists=(policy, *(policy.replaced(**dict(changes))
                                                   for changes in shortlists)))  # fmt: skip
    return {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": retriever.checkpoint_sha256,
        "epoch": retriever.epoch,
        "dataset": str(data.root),
        "split": split,
        "captions": len(captions),
        "videos": len(videos),
        "dropped_captions": data.dropped_captions,
        "rerank": ({**policy.to_json(), "shortlist": policy.size(len(videos))}
                   if retriever.has_matcher else None),  # fmt: skip
        "oracle": split_oracle(data, split),
        "metrics": metrics,
    }


def _check_compatible(retriever: Retriever, spec: FeatureSpec, root: Path) -> None:
    """FeatureError when ``spec`` cannot feed the model (backbone, frame size, frames per
    clip, sampling rate or a stream shape differs)."""
    trained = retriever.feature_spec
    problems = []
    if spec.backbone != trained.backbone:
        problems.append(f"backbone {spec.backbone!r} (trained on {trained.backbone!r})")
    for field_name in ("size", "frames", "fps"):  # other sampling: other features
        have, want = getattr(spec, field_name), getattr(trained, field_name)
        if have != want and not (field_name == "fps" and None in (have, want)):
            problems.append(f"{field_name} {have} (trained on {want})")
    for name in retriever.streams:
        if spec.streams.get(name) != trained.streams[name]:
            problems.append(
                f"stream {name!r} {spec.streams.get(name)} (trained on {trained.streams[name]})"
            )
    if problems:
        raise FeatureError(
            f"{root}: feature set {retriever.feature_set!r} does not match the model "
            f"{retriever.path}: {'; '.join(problems)}; extract features with the training spec"
        )
