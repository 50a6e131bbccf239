"""Native dataset -> training and evaluation data: parsed captions, features in memory,
attribute targets.

:meth:`RetrievalData.load` reads a native dataset (captions.jsonl, dataset.yaml and one
feature set), parses the captions (cached on disk), builds the vocabulary and the
attribute vocabularies from the TRAINING captions only (or reuses those of a checkpoint)
and holds the features of every needed video (resident as float16, or read on demand
from the store: :mod:`mcsan.data.loading.video_features`).

Training: :class:`CaptionDataset` holds every training caption; :func:`epoch_batches`
gives one epoch's global batches, a permutation that depends only on (seed, epoch), so a
resumed run replays the same order; under DDP each rank takes its contiguous shard.
:class:`Collator` turns a list of caption indices into a :class:`TrainBatch`.

Nothing here knows about the model: the batches (:mod:`mcsan.data.loading.collate`) are
:mod:`mcsan.core.batch` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcsan.core.errors import DataError
from mcsan.data.captions.attributes import AttributeVocabs
from mcsan.data.captions.parse import ParsedCaption, Vocabulary, load_word_vectors, parse_with_cache
from mcsan.data.data_config import DataConfig
from mcsan.data.loading.collate import (
    EncodedCaption,
    LabelTable,
    TrainBatch,
    collate_text,
    collate_video,
    encode_caption,
)
from mcsan.data.loading.hard_negatives import (
    batch_negatives,
    caption_edits,
    negative_table,
    read_hard_negatives,
)
from mcsan.data.loading.video_features import VideoFeatures, load_video_features
from mcsan.data.native import (
    CaptionRecord,
    card_path,
    check_card_identity,
    feature_path,
    read_captions,
    read_card,
)
from mcsan.data.video.store import FeatureSpec, FeatureStore


@dataclass
class RetrievalData:
    """A native dataset ready for training and evaluation (see module docstring)."""

    root: Path
    records: list[CaptionRecord]
    """Captions kept (those whose video has features), in file order."""
    parsed: list[ParsedCaption]
    encoded: list[EncodedCaption]
    caption_video: np.ndarray
    """int64 (N,): index into ``video_ids`` of each caption's video."""
    video_ids: list[str]
    features: VideoFeatures
    """Per-video float16 streams, resident or read on demand (``features.describe()``)."""
    vocab: Vocabulary
    attributes: AttributeVocabs
    feature_set: str
    feature_spec: FeatureSpec
    streams: tuple[str, ...]
    max_frames: int | None
    dropped_captions: int = 0
    """Captions dropped because their video has no features (with drop_missing_features)."""
    feature_identity: str | None = None
    """Identity of the feature file (:mod:`mcsan.data.video.identity`); None: made before."""
    word_vectors: np.ndarray | None = None
    word_vector_coverage: float | None = None
    caption_labels: list[dict[str, list[int]]] = field(default_factory=list)
    video_labels: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    hard_negatives: dict[int, np.ndarray] = field(default_factory=dict)
    """Training caption row -> video indices of its hard negative clips
    (``data.hard_negatives``; :mod:`mcsan.data.loading.hard_negatives`)."""
    caption_edits: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """Training caption row -> edits of its own clip that make it false
    (``data.edit_negatives``; :func:`mcsan.data.loading.hard_negatives.caption_edits`)."""
    negative_limits: tuple[int, int] = (0, 0)
    """At most this many hard negative and edited clips per training batch."""

    @classmethod
    def load(
        cls,
        cfg: DataConfig,
        splits: Sequence[str] = ("train", "val"),
        vocab: Vocabulary | None = None,
        attributes: AttributeVocabs | None = None,
        expect_spec: FeatureSpec | None = None,
        feature_set: str | None = None,
        streams: Sequence[str] | None = None,
        parser: Any = None,
    ) -> RetrievalData:
        """Load the captions of ``splits`` and their videos' features from ``cfg.root``.

        With ``vocab``/``attributes`` (from a checkpoint) nothing is built from the
        training captions; otherwise both come from the ``train`` split, which must then
        be among ``splits``. A caption whose video lacks features raises DataError naming
        ids unless ``cfg.drop_missing_features`` (then they are dropped and counted).
        Features are resident or read on demand (``cfg.feature_memory``, see
        :mod:`mcsan.data.loading.video_features`). ``parser``: a CaptionParser to reuse (default:
        parse_with_cache makes one).
        """
        root = Path(cfg.root)
        set_name = feature_set or cfg.feature_set or _only_feature_set(root, read_card(root))
        records = _select_captions(root, splits)
        negatives = read_hard_negatives(root) if cfg.hard_negatives and "train" in splits \
            else []
        loaded = _load_features(cfg, root, set_name, records, expect_spec, streams,
                                [n for _, _, n in negatives])  # fmt: skip
        records = loaded.records
        index = {v: i for i, v in enumerate(loaded.features.ids)}
        parsed = parse_with_cache([r.caption for r in records], _cache_path(cfg, root), parser)
        is_train = [r.split == "train" for r in records]
        if vocab is None or attributes is None:
            vocab, attributes = _vocabularies(cfg, parsed, is_train, vocab, attributes)
        data = cls(
            root=root,
            records=records,
            parsed=parsed,
            encoded=[encode_caption(p, vocab, cfg.max_words) for p in parsed],
            caption_video=np.array([index[r.video_id] for r in records], dtype=np.int64),
            video_ids=loaded.features.ids,
            features=loaded.features,
            vocab=vocab,
            attributes=attributes,
            feature_set=set_name,
            feature_spec=loaded.spec,
            streams=loaded.features.streams,
            max_frames=cfg.max_frames,
            dropped_captions=loaded.dropped,
            feature_identity=loaded.identity,
        )
        data._build_labels(is_train)
        data.hard_negatives = negative_table(negatives, records, index)
        if cfg.edit_negatives:
            data.caption_edits = {row: edits for row in range(len(records))
                                  if is_train[row] and (edits := caption_edits(parsed[row].lemmas))}
        data.negative_limits = (cfg.hard_negatives, cfg.edit_negatives)
        return data

    def _build_labels(self, is_train: list[bool]) -> None:
        self.caption_labels = [self.attributes.labels(p) for p in self.parsed]
        union: dict[int, dict[str, set[int]]] = {}
        for row, labels in enumerate(self.caption_labels):
            if not is_train[row]:
                continue
            slot = union.setdefault(int(self.caption_video[row]), {})
            for level, ids in labels.items():
                slot.setdefault(level, set()).update(ids)
        self.video_labels = {v: {k: sorted(s) for k, s in lv.items()} for v, lv in union.items()}

    def load_word_vectors(self, source: str) -> None:
        """Fill ``word_vectors`` / ``word_vector_coverage`` ("none" leaves them None)."""
        if source == "none":
            return
        self.word_vectors, self.word_vector_coverage = load_word_vectors(self.vocab, source)

    @property
    def stream_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shape of each used stream."""
        return {s: tuple(self.feature_spec.streams[s]) for s in self.streams}

    def captions_of(self, split: str) -> np.ndarray:
        """Indices (into ``records``) of the captions of ``split``, in file order."""
        return np.array([i for i, r in enumerate(self.records) if r.split == split], dtype=np.int64)

    def split_view(self, split: str) -> tuple[list[EncodedCaption], list[int], np.ndarray]:
        """(captions, video indices, caption -> position in that video list) for evaluation."""
        rows = self.captions_of(split)
        videos = list(dict.fromkeys(int(self.caption_video[r]) for r in rows))
        position = {v: i for i, v in enumerate(videos)}
        caption_video = np.array(
            [position[int(self.caption_video[r])] for r in rows], dtype=np.int64
        )
        return [self.encoded[r] for r in rows], videos, caption_video

    def video_features(self, indices: Sequence[int]) -> Sequence[dict[str, np.ndarray]]:
        """The feature dicts (float16 arrays) of videos ``indices``, read when indexed."""
        return self.features.get(indices)


def _select_captions(root: Path, splits: Sequence[str]) -> list[CaptionRecord]:
    """The caption records of ``splits``, in file order; each split must have one."""
    every = read_captions(root)
    wanted = set(splits)
    records = [r for r in every if r.split in wanted]
    for split in splits:
        if not any(r.split == split for r in records):
            raise DataError(
                f"{root / 'captions.jsonl'}: no caption in split {split!r}; splits present: "
                f"{sorted({r.split for r in every})}"
            )
    return records


@dataclass
class _Loaded:
    records: list[CaptionRecord]
    features: VideoFeatures
    spec: FeatureSpec
    dropped: int
    identity: str | None


def _load_features(
    cfg: DataConfig,
    root: Path,
    set_name: str,
    records: list[CaptionRecord],
    expect_spec: FeatureSpec | None,
    streams: Sequence[str] | None,
    extra_ids: Sequence[str] = (),
) -> _Loaded:
    """The features of the records' videos (records without features: error or dropped),
    and of ``extra_ids`` that the store holds (hard negative clips, after them)."""
    store_path = feature_path(root, set_name)
    if not store_path.is_file():
        raise DataError(
            f"{store_path}: feature set {set_name!r} not found; extract it or set "
            "data.feature_set to one listed in dataset.yaml"
        )
    with FeatureStore.open(store_path, mode="r", expect=expect_spec) as store:
        spec, identity = store.spec, store.identity
        check_card_identity(root, set_name, store_path, identity)
        chosen = tuple(streams or cfg.streams or spec.streams.keys())
        unknown = [s for s in chosen if s not in spec.streams]
        if unknown:
            raise DataError(
                f"{store_path}: stream(s) {unknown} not in the feature set; it has "
                f"{sorted(spec.streams)}; fix data.streams"
            )
        missing = sorted({r.video_id for r in records if r.video_id not in store})
        dropped = 0
        if missing:
            if not cfg.drop_missing_features:
                shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
                raise DataError(
                    f"{store_path}: {len(missing)} video(s) have captions but no features "
                    f"({shown}); extract them, or set data.drop_missing_features=true to "
                    "drop their captions"
                )
            gone = set(missing)
            dropped = sum(r.video_id in gone for r in records)
            records = [r for r in records if r.video_id not in gone]
        video_ids = list(dict.fromkeys(r.video_id for r in records))
        video_ids += [v for v in dict.fromkeys(extra_ids) if v in store and v not in video_ids]
        features = load_video_features(
            store, video_ids, chosen, cfg.max_frames, cfg.feature_memory,
            cfg.resident_limit_gb, cfg.feature_cache_gb,
        )  # fmt: skip
    return _Loaded(records, features, spec, dropped, identity)


def _vocabularies(
    cfg: DataConfig,
    parsed: list[ParsedCaption],
    is_train: list[bool],
    vocab: Vocabulary | None,
    attributes: AttributeVocabs | None,
) -> tuple[Vocabulary, AttributeVocabs]:
    """The word and attribute vocabularies given, or built from the training captions."""
    train_parsed = [p for p, t in zip(parsed, is_train, strict=True) if t]
    if not train_parsed:
        raise DataError("building a vocabulary needs the train split; pass a checkpoint's")
    if vocab is None:
        vocab = Vocabulary.build([p.tokens for p in train_parsed], cfg.min_word_count)
    if attributes is None:
        attributes = AttributeVocabs.build(train_parsed, dict(cfg.attribute_sizes))
    return vocab, attributes


def _only_feature_set(root: Path, card: dict[str, Any]) -> str:
    sets = card.get("feature_sets") or {}
    if len(sets) == 1:
        return str(next(iter(sets)))
    listed = sorted(sets) if sets else sorted(p.stem for p in (root / "features").glob("*.h5"))
    if len(listed) == 1:
        return listed[0]
    raise DataError(
        f"{card_path(root)}: cannot choose a feature set among {listed or 'none'}; set "
        "data.feature_set (or extract features first)"
    )


def _cache_path(cfg: DataConfig, root: Path) -> Path:
    return Path(cfg.parse_cache) if cfg.parse_cache else root / "cache" / "parsed_captions.jsonl"


class CaptionDataset(torch.utils.data.Dataset):
    """The training captions of a RetrievalData; item i is training caption i's row index."""

    def __init__(self, data: RetrievalData) -> None:
        self.rows = data.captions_of("train")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> int:
        return int(self.rows[index])


class Collator:
    """Caption rows -> TrainBatch (features, tokens, spans, keys, attribute targets).

    The attribute labels are packed once (:class:`LabelTable`), so a batch's targets are a
    few numpy operations whatever its size.
    """

    def __init__(self, data: RetrievalData) -> None:
        self.data = data
        sizes = data.attributes.sizes
        videos = range(len(data.video_ids))
        self.text_labels = {
            level: LabelTable([labels.get(level, []) for labels in data.caption_labels], size)
            for level, size in sizes.items()
        }
        self.video_labels = {
            level: LabelTable([data.video_labels.get(v, {}).get(level, []) for v in videos], size)
            for level, size in sizes.items()
        }

    def __call__(self, rows: Sequence[int]) -> TrainBatch:
        data = self.data
        rows = np.asarray(rows, dtype=np.int64)
        keys = data.caption_video[rows]
        batch = TrainBatch(
            video=collate_video(data.video_features(keys), data.streams, data.max_frames),
            text=collate_text([data.encoded[r] for r in rows]),
            video_keys=torch.from_numpy(keys),
            text_targets={k: table.multi_hot(rows) for k, table in self.text_labels.items()},
            video_targets={k: table.multi_hot(keys) for k, table in self.video_labels.items()},
        )
        if data.hard_negatives or data.caption_edits:
            clips, owners = batch_negatives(rows, keys, data.hard_negatives, data.caption_edits,
                                            data.negative_limits, data.video_features)
            if clips:
                batch.negative_video = collate_video(clips, data.streams, data.max_frames)
                batch.negative_rows = torch.from_numpy(owners)
        return batch


def epoch_batches(
    count: int, batch_size: int, seed: int, epoch: int, min_batch: int = 2
) -> list[np.ndarray]:
    """One epoch's global batches of dataset positions: every item exactly once.

    The order is a permutation drawn from a generator seeded by (seed, epoch) alone, so a
    resumed run replays it. A last batch smaller than ``min_batch`` (at least 2: a batch
    needs negatives; under DDP at least the world size) is merged into the previous one.
    """
    if batch_size < max(2, min_batch):
        raise ValueError(f"batch_size {batch_size} is below the minimum batch {max(2, min_batch)}")
    order = np.random.default_rng([seed, epoch]).permutation(count)
    batches = [order[i : i + batch_size] for i in range(0, count, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < max(2, min_batch):
        tail = batches.pop()
        batches[-1] = np.concatenate([batches[-1], tail])
    return batches
