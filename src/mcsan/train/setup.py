"""What a training process sets up around the model: device, mixed precision, seeds, and
the module that DistributedDataParallel wraps (with the gathering of its outputs)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mcsan.config.run import RERANK_KEYS
from mcsan.core.batch import TextBatch
from mcsan.core.errors import CheckpointError, ConfigError, FeatureError
from mcsan.core.typed_yaml import config_differences
from mcsan.core.validate import check_device
from mcsan.data.loading.collate import TrainBatch
from mcsan.model import MCSAN, LevelOutput
from mcsan.model.losses import MatchScores
from mcsan.train import distributed as dist_utils
from mcsan.train import loader as loading

if TYPE_CHECKING:
    from mcsan.config.run import RunConfig


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; a device this build lacks is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(check_device(name, "train.device"))


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``mode`` on ``device`` (None = full precision; always on CPU)."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: Any) -> Any:
    """The learning-rate schedule of ``cfg`` (a TrainConfig): constant, step or cosine."""
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)


def make_optimizer(model: MCSAN, cfg: Any) -> torch.optim.Optimizer:
    """Adam / AdamW over the trainable parameters (``cfg`` a TrainConfig); the binding
    matcher's (``model.rerank``) in a group of their own at ``rerank_lr``."""
    matcher = model.matcher
    own = set() if matcher is None else {id(p) for p in matcher.parameters()}
    groups: list[dict[str, Any]] = [{"params": [p for p in model.parameters()
                                                if p.requires_grad and id(p) not in own]}]  # fmt: skip
    if matcher is not None:
        groups.append({"params": list(matcher.parameters()), "lr": cfg.rerank_lr or cfg.lr})
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def check_world_size(cfg: RunConfig, world_size: int) -> None:
    """ConfigError for settings that cannot run on ``world_size`` processes."""
    if cfg.train.batch_size < world_size:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} is smaller than the {world_size} "
            "processes; the global batch is split across them: raise it"
        )
    if cfg.loss.lambda_distill > 0 and world_size > 1:
        raise ConfigError(
            "loss.lambda_distill works on one process only (the matcher's scores are local, "
            "the level similarities gathered); set it to 0 or train without torchrun"
        )


class JointForward(nn.Module):
    """What DDP wraps: both encoders and the fused weights, so every parameter is reachable."""

    def __init__(self, model: MCSAN, match_predicates: bool = False,
                 match_terms: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.model = model
        self.match_predicates = match_predicates
        self.match_terms = match_terms

    def forward(
        self, batch: TrainBatch, negatives: tuple[TextBatch, torch.Tensor] | None = None
    ) -> tuple[LevelOutput, LevelOutput, dict[str, torch.Tensor], LevelOutput | None,
               MatchScores | None, LevelOutput | None]:  # fmt: skip
        """Both encoders on the batch (the text encoder on binding negatives and the video
        encoder on hard negative clips, if any), and the binding matcher's scores on this
        rank's batch when the model has one."""
        video, text = self.model(batch.video, batch.text)
        negative_out = None if negatives is None else self.model.encode_text(negatives[0])
        clips = batch.negative_video
        clip_out = None if clips is None else self.model.encode_video(clips)
        match = None
        if self.model.matcher is not None:
            clips = self.model.match_video(batch.video)
            captions = self.model.match_text(batch.text)
            found = self.model.matcher.term_scores(captions, clips)
            scores = self.model.matcher.combine(found, len(batch.text.tokens),
                                                len(clips.mask), clips.keys)  # fmt: skip
            keys = batch.video_keys
            match = MatchScores(scores.float(), keys[:, None] == keys[None, :])
            if self.match_terms:
                match.terms = found
            if self.match_predicates:
                match.predicates = self.model.matcher.predicate_contrast(captions, clips,
                                                                         batch.text)  # fmt: skip
            if negatives is not None:
                rows = negatives[1]
                match.negatives = self.model.matcher.score(
                    self.model.match_text(negatives[0]), clips.rows(rows), pairs=True
                ).float()
                match.rows = rows
        return video, text, self.model.level_weights(), negative_out, match, clip_out


def float_output(out: LevelOutput, ctx: dist_utils.DistContext | None) -> LevelOutput:
    """Float32 copy of an encoder output, gathered across ranks (local part keeps grads);
    ``ctx`` None: this rank's part only."""
    ctx = ctx or dist_utils.DistContext()
    return LevelOutput(
        {k: dist_utils.gather_with_grad(v.float(), ctx) for k, v in out.embeddings.items()},
        {k: dist_utils.gather_with_grad(v.float(), ctx) for k, v in out.attribute_logits.items()},
        {k: dist_utils.gather_with_grad(v.to(torch.uint8), ctx).bool()
         for k, v in out.present.items()},  # fmt: skip
    )


def hard_negative_clips(clip_out: LevelOutput | None, batch: TrainBatch,
                        ctx: dist_utils.DistContext, on: bool,
                        ) -> tuple[LevelOutput, torch.Tensor] | None:  # fmt: skip
    """Encoded hard negative clips (float32, this rank's) and the rows of the gathered batch
    of the captions they are false for; with ``on`` every rank must call it (it gathers)."""
    from mcsan.train.negatives import global_rows

    clips = None if clip_out is None else (float_output(clip_out, None), batch.negative_rows)
    if not on:
        return clips
    rows = global_rows(clips, len(batch), ctx)
    return None if clips is None or rows is None else (clips[0], rows)


def resume_differences(state: dict[str, Any], cfg: RunConfig) -> list[str]:
    """Config keys that differ between a saved run ``state`` and ``cfg``, besides those a
    resumed run may change (``train.epochs``, the loading / threads keys and the
    evaluation's shortlist, ``RERANK_KEYS``)."""
    keep = ("train.epochs", *loading.LOADING_KEYS, *RERANK_KEYS)
    return config_differences(dict(state["config"]), cfg.to_dict(), ignore=keep)


def check_resume_features(state: dict[str, Any] | None, data: Any, path: Any) -> None:
    """Refuse to resume run ``path`` onto other features than it trained on: another spec
    (frames, size, streams...) or another feature file of the same spec (its identity)."""
    if state is None:
        return
    from mcsan.data.native import feature_path
    from mcsan.data.video.identity import check_identity
    from mcsan.data.video.store import FeatureSpec

    store = feature_path(data.root, data.feature_set)
    if state.get("feature_spec") and (
        problem := data.feature_spec.mismatch(FeatureSpec.from_json(state["feature_spec"]))
    ):
        raise CheckpointError(
            f"{path}: --resume onto {store}, whose features differ from those the run trained "
            f"on ({problem}); resume with the original features or start a new --out"
        )
    try:
        check_identity(data.feature_identity, state.get("feature_identity"), store,
                       f"the run's checkpoint {path}",
                       "resume with the original features or start a new --out")  # fmt: skip
    except FeatureError as exc:
        raise CheckpointError(f"--resume: {exc}") from None
