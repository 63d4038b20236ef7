"""How many processes and threads data loading may use on this machine."""
from __future__ import annotations

from extract.cores import available_cores


def loader_workers(requested: int) -> int:
    """DataLoader workers: as asked, but leaving the main process a core of its own (on 2 cores,
    4 workers plus the main process's threads fight over the CPU and training crawls)."""
    return max(0, min(requested, available_cores() - 1))
