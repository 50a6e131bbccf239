"""Data-parallel helpers: set up only when launched by torchrun, never at import.

A plain ``mcsan train`` is one process and touches nothing here but :func:`DistContext`
defaults. Under ``torchrun --nproc_per_node N -m mcsan train ...`` the environment holds
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT and :func:`init_from_env`
creates the process group (gloo on CPU, nccl on CUDA).

The triplet loss needs the global batch, so each rank all-gathers embeddings, attribute
logits, video keys and targets with :func:`gather_with_grad`: the local shard keeps its
autograd graph, the other ranks' shards are constants. Every rank then computes the same
global loss; each rank's backward yields the gradient through its own shard, and summing
those over ranks (DDP averages, so the trainer scales the loss by the world size) gives
exactly the gradient a single process would get on the whole global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

TORCHRUN_VARS: tuple[str, ...] = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size and local rank (single process: 0, 1, 0)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that evaluates, logs and writes checkpoints)."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when every variable torchrun sets is present."""
    return all(name in os.environ for name in TORCHRUN_VARS)


def init_from_env(device_type: str) -> DistContext:
    """Join the process group described by torchrun's variables; single process otherwise.

    ``device_type`` is "cpu" (gloo) or "cuda" (nccl; the process is pinned to LOCAL_RANK).
    Calling it again once the group exists returns the current context.
    """
    if not launched_by_torchrun():
        return DistContext()
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if world_size <= 1:
        return DistContext(rank, world_size, local_rank)
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return DistContext(rank, world_size, local_rank)


def shutdown() -> None:
    """Destroy the process group if one exists."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shard_bounds(batch_size: int, ctx: DistContext) -> tuple[int, int]:
    """[start, end) of this rank's contiguous slice of a global batch of ``batch_size``.

    Slices are as equal as possible and concatenate in rank order to the global batch.
    """
    base, extra = divmod(batch_size, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return start, start + base + (1 if ctx.rank < extra else 0)


def _device() -> torch.device:
    return (torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available()
            else torch.device("cpu"))  # fmt: skip


def rank_offset(local_size: int, ctx: DistContext) -> int:
    """Rows of the ranks before this one in a batch gathered in rank order (every rank must
    call it: it all-gathers the sizes). Single process: 0."""
    if not ctx.enabled:
        return 0
    mine = torch.tensor([local_size], dtype=torch.long, device=_device())
    sizes = [torch.zeros_like(mine) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, mine)
    return int(sum(int(s) for s in sizes[: ctx.rank]))


def gather_with_grad(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate ``tensor`` (dim 0, sizes may differ) from every rank in rank order.

    This rank's slice of the result is ``tensor`` itself, so gradients flow into it;
    the other slices are detached copies. Single process: ``tensor`` unchanged.
    """
    if not ctx.enabled:
        return tensor
    local_n = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(local_n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, local_n)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = tensor.detach()
    if tensor.shape[0] < longest:
        pad = torch.zeros(
            (longest - tensor.shape[0], *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device
        )
        padded = torch.cat([padded, pad])
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded.contiguous())
    pieces = [part[:count] for part, count in zip(parts, counts, strict=True)]
    pieces[ctx.rank] = tensor
    return torch.cat(pieces)
