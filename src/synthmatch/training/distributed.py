"""Distributed data parallel under torchrun: set-up, rank queries, and tear-down.

`torchrun --nproc_per_node=N -m synthmatch train ...` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
variables; `init_distributed` then joins the process group: gloo on CPU, nccl on CUDA. The learning rate
is not scaled with the world size (the effective batch grows N times; scale --lr yourself if you want).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "init_distributed", "shutdown_distributed", "is_distributed_env", "all_reduce_sum"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when running in a process group (any torchrun launch, even with one process)."""
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_distributed_env() -> bool:
    """Launched by torchrun (which sets RANK, WORLD_SIZE and the rendezvous address)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def init_distributed(device_type: str) -> DistInfo:
    """Join the torchrun process group when launched by torchrun; a plain single process otherwise."""
    if not is_distributed_env():
        return DistInfo()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.info("DDP rank %d/%d on %s (backend %s)", rank, world, device_type, backend)
    return DistInfo(rank, world, local, backend)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a (CPU) tensor over all ranks; NCCL needs it on the GPU, gloo takes it where it is."""
    if dist.get_backend() == "nccl":
        x = t.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(x)
        return x.cpu()
    dist.all_reduce(t)
    return t
