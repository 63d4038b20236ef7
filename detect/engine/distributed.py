"""torchrun integration: rank, world size and the process group."""
from __future__ import annotations

import os
import sys

import torch

from extract.cores import available_cores


def init_distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_threads(workers: int) -> tuple[int, str]:
    """Intra-op threads for a CPU training, and why: what the user set (``OMP_NUM_THREADS``,
    ``MKL_NUM_THREADS``, Slurm's ``SLURM_CPUS_PER_TASK`` less the loader workers, or a caller's
    ``torch.set_num_threads``, which only ever lowers the count), else the cores the loader
    workers leave."""
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value), f"{name}={value}"
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return max(1, int(slurm) - workers), f"SLURM_CPUS_PER_TASK={slurm}, {workers} loader workers"
    cap = max(1, available_cores() - workers)
    if torch.get_num_threads() < cap:
        return torch.get_num_threads(), "set by the caller (torch.set_num_threads)"
    return cap, f"{available_cores()} cores, {workers} loader workers"


def configure_cpu_threads(workers: int, device: torch.device) -> str | None:
    """Set the intra-op threads of a CPU training; returns the choice in words (None on a GPU),
    which a terminal also shows once (beside the progress bars: stdout may be ``--json``, and a
    script's stderr holds only errors)."""
    if device.type != "cpu":
        return None
    threads, why = cpu_threads(workers)
    torch.set_num_threads(threads)
    choice = f"CPU threads: {threads} ({why})"
    if sys.stderr.isatty():
        print(choice, file=sys.stderr, flush=True)
    return choice


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def close_distributed(world: int) -> None:
    if world > 1:
        torch.distributed.destroy_process_group()
