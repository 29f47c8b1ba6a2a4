"""Data-parallel SAE training under `torchrun` (torch.distributed, initialised from env vars).

Every rank reads the same stream of *global* batches and keeps its own contiguous slice, so no
sampler or data sharding has to be coordinated. After backward, gradients are averaged over ranks
with one all-reduce; since each rank's loss is a mean over an equal-size slice, the average equals
the gradient of the global-batch mean, and every rank takes the same optimiser step.
Latent fire counts are summed over ranks so the dead-latent mask is identical everywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from interplab.common import InterplabError


class DistInfo(NamedTuple):
    """Where this process sits in the job."""

    rank: int
    """Global rank (0 when not distributed)."""
    world_size: int
    """Number of processes (1 when not distributed)."""
    local_rank: int
    """Rank on this machine (picks the GPU)."""

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files and logs."""
        return self.rank == 0


def current() -> DistInfo:
    """The job layout if torch.distributed is initialised, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo(0, 1, 0)


def init_from_env(backend: str | None = None) -> DistInfo:
    """Join the job described by torchrun's env vars (WORLD_SIZE, RANK, MASTER_ADDR...); no-op when absent.

    Backend: NCCL on CUDA, gloo on CPU, unless given.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return current()
    if not dist.is_available():
        raise InterplabError("this torch build has no torch.distributed; run with a single process")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend, init_method="env://")
    info = current()
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    return info


def shutdown() -> None:
    """Leave the process group (if any); call it from a `finally` block.

    On a normal exit every rank first waits at a barrier, so no rank tears gloo down while a peer is
    still talking to it (that race aborted a rank with "terminate called without an active exception").
    While an exception is propagating, the barrier is skipped: the peers may never reach it.
    """
    if dist.is_available() and dist.is_initialized():
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()


def local_slice(x_BD: Tensor, info: DistInfo) -> Tensor:
    """This rank's contiguous share of a global batch (the global batch must split evenly)."""
    if info.world_size == 1:
        return x_BD
    if x_BD.shape[0] % info.world_size:
        raise InterplabError(f"global batch of {x_BD.shape[0]} rows does not split over {info.world_size} "
                             "processes; use a batch size divisible by the number of processes")
    n = x_BD.shape[0] // info.world_size
    return x_BD[info.rank * n : (info.rank + 1) * n]


@torch.no_grad()
def average_gradients_(params: Iterable[nn.Parameter], info: DistInfo) -> None:
    """Replace each .grad by its mean over ranks (one coalesced all-reduce)."""
    if info.world_size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def sum_over_ranks(t: Tensor, info: DistInfo) -> Tensor:
    """All-reduced sum of `t` (returned; `t` itself is not changed)."""
    if info.world_size == 1:
        return t
    out = t.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out
