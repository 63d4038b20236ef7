"""How many processes and threads data loading may use on this machine."""
from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def loader_workers(requested: int) -> int:
    """DataLoader workers: as asked, but leaving the main process a core of its own (on 2 cores,
    4 workers plus the main process's threads fight over the CPU and training crawls)."""
    return max(0, min(requested, available_cores() - 1))
