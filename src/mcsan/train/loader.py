"""How training batches reach the model: the DataLoader settings and torch's threads.

:func:`epoch_loader` wraps one epoch's fixed list of caption-row batches (the order comes
from :func:`mcsan.data.loading.dataset.epoch_batches`, so it is the same with or without worker
processes) in a ``torch.utils.data.DataLoader``. On CPU batches are built in the training
process by default: vectorised collation costs ~1% of a step there, and a worker would
take a core from the step on a small machine. On CUDA the defaults are 4 worker processes,
pinned (page-locked) memory for asynchronous copies and 2 batches prefetched per worker.

:func:`training_threads` picks torch's intra-op thread count: on CPU the default is one
thread, measured (``benchmarks/bench_loader.py``) to be as fast as two on an idle 2-core
machine and several times faster when another process is busy beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcsan.config.run import TrainConfig
from mcsan.data.loading.dataset import CaptionDataset, Collator, RetrievalData, epoch_batches
from mcsan.data.loading.video_features import VideoFeatures
from mcsan.train.distributed import DistContext, shard_bounds

LOADING_KEYS = (
    "train.num_workers", "train.pin_memory", "train.prefetch_factor", "train.threads",
    "data.feature_memory", "data.resident_limit_gb", "data.feature_cache_gb",
)  # fmt: skip
"""Config keys that change how data is loaded but not the numbers computed (a resumed run
may change them)."""
CUDA_WORKERS = 4
"""Default worker processes when training on CUDA."""


@dataclass(frozen=True)
class LoaderSettings:
    """Resolved DataLoader options (the config's None = auto replaced)."""

    num_workers: int
    pin_memory: bool
    prefetch_factor: int | None

    def describe(self) -> str:
        """One line for the training log."""
        if not self.num_workers:
            where = "in the training process"
        else:
            where = f"by {self.num_workers} worker processes, {self.prefetch_factor} ahead each"
        return f"batches built {where}; pinned memory {'on' if self.pin_memory else 'off'}"


def loader_settings(cfg: TrainConfig, device: torch.device) -> LoaderSettings:
    """The DataLoader options for ``device`` from ``cfg`` (auto: see the module doc)."""
    cuda = device.type == "cuda"
    workers = cfg.num_workers if cfg.num_workers is not None else (CUDA_WORKERS if cuda else 0)
    pin = cfg.pin_memory if cfg.pin_memory is not None else cuda
    return LoaderSettings(workers, bool(pin and cuda), cfg.prefetch_factor if workers else None)


def epoch_loader(
    data: RetrievalData,
    batch_size: int,
    seed: int,
    epoch: int,
    ctx: DistContext,
    settings: LoaderSettings,
) -> torch.utils.data.DataLoader:
    """This rank's batches of ``epoch``: the global batches of :func:`epoch_batches` (an
    order that depends only on seed and epoch), each cut to this rank's contiguous shard."""
    dataset = CaptionDataset(data)
    shards = []
    for batch in epoch_batches(len(dataset), batch_size, seed, epoch, ctx.world_size):
        start, end = shard_bounds(len(batch), ctx)
        shards.append(batch[start:end].tolist())
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=shards,
        collate_fn=Collator(data),
        num_workers=settings.num_workers,
        pin_memory=settings.pin_memory,
        prefetch_factor=settings.prefetch_factor,
    )


def setup_line(device: torch.device, threads: int, settings: LoaderSettings,
               features: VideoFeatures) -> str:  # fmt: skip
    """What training runs on, for the log: device, threads, batch building, features."""
    return (f"training on {device} with {threads} torch thread(s); {settings.describe()}; "
            f"features: {features.describe()}")  # fmt: skip


def training_threads(cfg: TrainConfig, device: torch.device) -> int:
    """Set and return torch's intra-op thread count for training (``cfg.threads``; 0 = auto:
    1 on CPU, torch's own choice on CUDA where the host only feeds the device)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif device.type == "cpu":
        torch.set_num_threads(1)
    return torch.get_num_threads()
