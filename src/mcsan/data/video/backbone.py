"""Frame encoders: uint8 frames in, named per-frame feature streams out.

Streams of the EfficientNet-Lite0 encoder (shape per frame):

- ``head`` (1280,): the final 1280-channel map, average-pooled;
- ``head_grid{G}`` (G*G, 1280): the final map average-pooled to a G x G grid (row-major);
- ``block{N}`` (C_N,) and ``block{N}_grid{G}`` (G*G, C_N): the output of MBConv block N
  (``block10``: 112 channels, stride 16), pooled or on a grid;
- ``rgbhist`` (256,): a 2x2-cell RGB histogram of the frame, 4x4x4 bins per cell,
  L1-normalised per cell (cells row-major). ImageNet features encode colour poorly;
- ``logits`` (1000,): the ImageNet-1k class logits of the pretrained classifier ``_fc``
  on the pooled ``head`` (softmax gives the class probabilities; order as
  ``mcsan/search/imagenet_classes.txt``). Concept search keeps them per clip.

A stream name written without its grid size (``head_grid``) takes the ``grid`` argument.
Encoders are looked up by name in a registry (:func:`get_backbone`,
:func:`register_backbone`), so another network slots in without touching the callers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from mcsan.core.errors import ConfigError

DEFAULT_BACKBONE = "efficientnet_lite0"
WORLD_STREAMS: tuple[str, ...] = ("head_grid2", "block10", "rgbhist", "block10_grid4")
"""Streams of the embedded default world: where things are, motion, colour, and a 4 x 4
grid of block 10 (112 channels) for the cell branches (mcsan.model.cells): a grounding
probe located objects from their colour and shape better on it than on the 2 x 2 head grid
(pair order 0.990 vs 0.959; docs/RELATIONS_RESULTS.md)."""

HIST_CELLS = 2
HIST_BINS = 4
HIST_DIM = HIST_CELLS * HIST_CELLS * HIST_BINS**3
LOGITS_STREAM = "logits"
LOGITS_DIM = 1000

# The Lite models were trained on inputs scaled to [-1, 1] (mean 127, std 128 on 0..255);
# with these the shipped weights classify the scikit-image photos with the highest confidence.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

_STREAM_RE = re.compile(r"^(head|block(\d+))(?:_grid(\d*))?$")


class FrameEncoder(Protocol):
    """What the extraction driver needs from a backbone."""

    name: str
    streams: tuple[str, ...]

    def stream_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shape of every stream this encoder outputs."""
        ...

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Features (N, *shape) float32 per stream of uint8 frames (N, H, W, 3)."""
        ...


def resolve_streams(streams: Sequence[str] | str, grid: int = 2) -> tuple[str, ...]:
    """Canonical stream names: a comma list or sequence; ``world`` expands to the preset;
    a grid stream without a size (``head_grid``) gets ``grid``."""
    items = streams.split(",") if isinstance(streams, str) else list(streams)
    resolved: list[str] = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        expanded = WORLD_STREAMS if name == "world" else (name,)
        for item in expanded:
            if item.endswith("_grid"):
                item = f"{item}{grid}"
            if item not in resolved:
                resolved.append(item)
    if not resolved:
        raise ConfigError("no feature streams given; use e.g. --streams head_grid2,block10,rgbhist")
    return tuple(resolved)


def rgb_histogram(frames: np.ndarray) -> np.ndarray:
    """2x2-cell RGB histograms (N, 256) float32 of uint8 frames (N, H, W, 3), L1 per cell."""
    n, height, width, _ = frames.shape
    bins = (frames >> (8 - 2)).astype(np.int64)  # 4 levels per channel
    code = bins[..., 0] * HIST_BINS**2 + bins[..., 1] * HIST_BINS + bins[..., 2]
    rows = (np.arange(height) * HIST_CELLS // height)[:, None]
    cols = (np.arange(width) * HIST_CELLS // width)[None, :]
    cell = rows * HIST_CELLS + cols  # (H, W)
    per_cell = HIST_BINS**3
    flat = (np.arange(n)[:, None, None] * HIST_CELLS**2 + cell[None]) * per_cell + code
    counts = np.bincount(flat.ravel(), minlength=n * HIST_DIM).reshape(n, HIST_CELLS**2, per_cell)
    counts = counts.astype(np.float32)
    counts /= np.maximum(counts.sum(axis=2, keepdims=True), 1.0)
    return counts.reshape(n, HIST_DIM)


class EfficientNetLiteEncoder:
    """EfficientNet-Lite0 (ImageNet weights) producing the named streams, batched on CPU."""

    name = DEFAULT_BACKBONE

    def __init__(
        self,
        streams: Sequence[str] | str = WORLD_STREAMS,
        grid: int = 2,
        batch_size: int = 64,
        device: str = "cpu",
        weights: str | None = None,
    ) -> None:
        import torch

        from mcsan.data.video.efficientnet import block_channels

        self.streams = resolve_streams(streams, grid)
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        self.block_channels = block_channels()
        self._weights = weights
        self._model: Any = None
        self._plan = {name: self._parse(name) for name in self.streams}
        self._taps = tuple(sorted({p[0] for p in self._plan.values() if p and p[0] >= 0}))
        self._needs_net = any(p is not None for p in self._plan.values())
        self._mean = torch.tensor(LITE_MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(LITE_STD, device=self.device).view(1, 3, 1, 1) * 255.0
        if self._needs_net:
            _ = self.model

    @property
    def model(self) -> Any:
        """The network (loaded on first use; an rgbhist-only encoder never loads it)."""
        if self._model is None:
            import torch

            from mcsan.data.video.efficientnet import load_lite0

            net = load_lite0(self._weights).to(self.device)
            self._model = net.to(memory_format=torch.channels_last)
        return self._model

    def _parse(self, name: str) -> tuple[int, int] | None:
        """(block index or -1 for head, grid or 0 for pooled); None for rgbhist;
        (-1, -1) for the class logits (the pooled head through ``_fc``)."""
        if name == "rgbhist":
            return None
        if name == LOGITS_STREAM:
            return -1, -1
        match = _STREAM_RE.match(name)
        if not match or (match.group(3) is not None and not match.group(3)):
            raise ConfigError(
                f"unknown feature stream {name!r} for {self.name}; use head, head_grid<G>, "
                "block<N>, block<N>_grid<G>, rgbhist or logits"
            )
        block = -1 if match.group(2) is None else int(match.group(2))
        if block >= len(self.block_channels):
            raise ConfigError(
                f"stream {name!r}: {self.name} has blocks 0..{len(self.block_channels) - 1}"
            )
        grid = int(match.group(3)) if match.group(3) else 0
        if match.group(3) is not None and grid < 1:
            raise ConfigError(f"stream {name!r}: the grid size must be at least 1")
        return block, grid

    def stream_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-frame shape of every stream."""
        shapes: dict[str, tuple[int, ...]] = {}
        for name, plan in self._plan.items():
            if plan is None:
                shapes[name] = (HIST_DIM,)
                continue
            block, grid = plan
            if grid < 0:
                shapes[name] = (LOGITS_DIM,)
                continue
            channels = 1280 if block < 0 else self.block_channels[block]
            shapes[name] = (grid * grid, channels) if grid else (channels,)
        return shapes

    def preprocess(self, frames: np.ndarray) -> Any:
        """uint8 (N, H, W, 3) -> normalised float tensor (N, 3, H, W) in channels_last."""
        import torch

        array = np.ascontiguousarray(frames)
        if not array.flags.writeable:
            array = array.copy()
        batch = torch.from_numpy(array).to(self.device)
        batch = batch.permute(0, 3, 1, 2).float()  # NHWC memory = channels_last NCHW
        return ((batch - self._mean) / self._std).contiguous(memory_format=torch.channels_last)

    def encode(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Features (N, *shape) float32 per stream of uint8 frames (N, H, W, 3)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ConfigError(
                f"expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.streams}
        for start in range(0, len(frames), self.batch_size):
            part = frames[start : start + self.batch_size]
            for name, value in self._encode_batch(part).items():
                chunks[name].append(value)
        shapes = self.stream_shapes()
        return {
            name: np.concatenate(parts) if parts else np.zeros((0, *shapes[name]), np.float32)
            for name, parts in chunks.items()
        }

    def _encode_batch(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        out: dict[str, np.ndarray] = {}
        maps: dict[int, torch.Tensor] = {}
        if self._needs_net:
            with torch.inference_mode():
                head, tapped = self.model.features(self.preprocess(frames), self._taps)
                maps = {-1: head, **tapped}
                for name, plan in self._plan.items():
                    if plan is None:
                        continue
                    block, grid = plan
                    fmap = maps[block]
                    if grid < 0:
                        value = self.model._fc(fmap.mean(dim=(2, 3)))
                    elif grid:
                        pooled = F.adaptive_avg_pool2d(fmap, grid)  # (N, C, G, G)
                        value = pooled.flatten(2).transpose(1, 2)  # (N, G*G, C)
                    else:
                        value = fmap.mean(dim=(2, 3))
                    out[name] = value.float().cpu().numpy().astype(np.float32, copy=False)
        if "rgbhist" in self._plan:
            out["rgbhist"] = rgb_histogram(frames)
        return out

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """ImageNet class probabilities (N, 1000) with the pretrained ``_fc`` head."""
        import torch

        with torch.inference_mode():
            logits = self.model(self.preprocess(frames))
            return logits.softmax(dim=-1).cpu().numpy()


BackboneFactory = Callable[..., FrameEncoder]
_REGISTRY: dict[str, BackboneFactory] = {DEFAULT_BACKBONE: EfficientNetLiteEncoder}


def register_backbone(name: str, factory: BackboneFactory) -> None:
    """Make ``factory(streams=..., grid=..., batch_size=..., **options)`` available by name."""
    _REGISTRY[name] = factory


def available_backbones() -> list[str]:
    """Names accepted by :func:`get_backbone`."""
    return sorted(_REGISTRY)


def get_backbone(
    name: str = DEFAULT_BACKBONE,
    streams: Sequence[str] | str = WORLD_STREAMS,
    grid: int = 2,
    batch_size: int = 64,
    **options: Any,
) -> FrameEncoder:
    """A frame encoder by registry name, producing ``streams``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backbone {name!r}; available: {', '.join(available_backbones())}"
        ) from None
    return factory(streams=streams, grid=grid, batch_size=batch_size, **options)
