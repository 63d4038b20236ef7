"""torchrun integration: rank, world size and the process group."""
from __future__ import annotations

import os

import torch

from ..data.workers import available_cores


def init_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def configure_cpu_threads(workers: int, device: torch.device) -> int:
    """Intra-op threads of a CPU training: the cores the workers leave (at least 1). Returns it."""
    if device.type == "cpu":
        torch.set_num_threads(max(1, available_cores() - workers))
    return torch.get_num_threads()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def close_distributed(world: int) -> None:
    if world > 1:
        torch.distributed.destroy_process_group()
