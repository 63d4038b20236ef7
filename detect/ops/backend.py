"""Choosing between mamba-ssm's CUDA kernels and our pure-PyTorch ops.

``backend`` is ``"auto"``, ``"cuda"`` or ``"torch"`` (config key ``model.backend``, or the
``MAMBA_TAD_BACKEND`` environment variable). ``auto`` picks ``cuda`` for CUDA tensors when both
compiled extensions import, else ``torch``. The kernels are probed lazily, never at package
import: ``import mamba_ssm`` fails outright on machines without its compiled extension.
"""
from __future__ import annotations

import functools
import logging
import os

import torch

BACKENDS = ("auto", "cuda", "torch")
log = logging.getLogger(__name__)

INSTALL_HINT = ('install the GPU kernels after torch, without build isolation: '
                'pip install --no-build-isolation "mamba-tad[cuda]"')


@functools.lru_cache(maxsize=None)
def cuda_kernels() -> tuple[bool, str]:
    """(available, reason): whether mamba-ssm's scan and causal-conv1d's conv both import."""
    try:
        import causal_conv1d_cuda  # noqa: F401 - torch is already imported, as these require
        import selective_scan_cuda  # noqa: F401
        from causal_conv1d import causal_conv1d_fn  # noqa: F401
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except ImportError as exc:  # also raised for an ABI mismatch with the installed torch
        return False, f"{type(exc).__name__}: {exc}"
    return True, "selective_scan_cuda and causal_conv1d_cuda import"


def resolve(backend: str | None, device: torch.device) -> str:
    """The backend that will run for tensors on ``device``: ``"cuda"`` or ``"torch"``."""
    backend = backend or os.environ.get("MAMBA_TAD_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    if device.type != "cuda":
        if backend == "cuda":
            raise RuntimeError(f"backend 'cuda' needs CUDA tensors, got tensors on {device}")
        return "torch"
    available, reason = cuda_kernels()
    if backend == "cuda" and not available:
        raise RuntimeError(f"backend 'cuda' is unavailable ({reason}); {INSTALL_HINT}")
    _announce("cuda" if available else "torch", reason)
    return "cuda" if available else "torch"


@functools.lru_cache(maxsize=None)
def _announce(chosen: str, reason: str) -> None:
    log.info("selective scan backend: %s (%s)", chosen, reason)
