"""What a training process sets up around the model: device, mixed precision, seeds, and
the module that DistributedDataParallel wraps (with the gathering of its outputs)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mcsan import distributed as dist_utils
from mcsan import train_loader as loading
from mcsan.batch import TextBatch
from mcsan.data.collate import TrainBatch
from mcsan.model import MCSAN, LevelOutput
from mcsan.typed_yaml import config_differences
from mcsan.validate import check_device

if TYPE_CHECKING:
    from mcsan.config import RunConfig


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


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class JointForward(nn.Module):
    """What DDP wraps: both encoders and the fused weights, so every parameter is reachable."""

    def __init__(self, model: MCSAN) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, batch: TrainBatch, negative_text: TextBatch | None = None
    ) -> tuple[LevelOutput, LevelOutput, dict[str, torch.Tensor], LevelOutput | None]:
        """Both encoders on the batch (and the text encoder on binding negatives, if any)."""
        video, text = self.model(batch.video, batch.text)
        negatives = None if negative_text is None else self.model.encode_text(negative_text)
        return video, text, self.model.level_weights(), negatives


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


def resume_differences(state: dict[str, Any], cfg: RunConfig) -> list[str]:
    """Config keys that differ between a saved run ``state`` and ``cfg``, besides those a
    resumed run may change (``train.epochs`` and the loading / threads keys)."""
    keep = ("train.epochs", *loading.LOADING_KEYS)
    return config_differences(dict(state["config"]), cfg.to_dict(), ignore=keep)
