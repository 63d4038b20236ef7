"""How many CPU cores this process may use: what decoding workers and data loaders share."""
from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
