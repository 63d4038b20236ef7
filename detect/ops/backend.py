"""Choosing between mamba-ssm's CUDA kernels, our Triton scan and our pure-PyTorch ops.

``backend`` is ``"auto"``, ``"cuda"``, ``"triton"`` or ``"torch"`` (config key
``model.backend``, or the ``MAMBA_TAD_BACKEND`` environment variable). For CUDA tensors ``auto``
picks ``cuda`` when both compiled extensions import, else ``triton`` when Triton imports (it
comes with PyTorch's CUDA wheels: no compiling), else ``torch``. CPU tensors always run
``torch``. ``triton`` runs the selective scan fused in Triton and the causal conv through
PyTorch's own (cuDNN) conv. The kernels are probed lazily, never at package import:
``import mamba_ssm`` fails outright on machines without its compiled extension.
"""
from __future__ import annotations

import functools
import logging
import os

import torch

from ..errors import BackendError, ConfigError

BACKENDS = ("auto", "cuda", "triton", "torch")
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


@functools.lru_cache(maxsize=None)
def triton_available() -> tuple[bool, str]:
    """(available, reason): whether Triton imports."""
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, f"triton {triton.__version__} imports"


def resolve(backend: str | None, device: torch.device) -> str:
    """The backend that will run for tensors on ``device``: ``"cuda"``, ``"triton"`` or ``"torch"``."""
    backend = backend or os.environ.get("MAMBA_TAD_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} (model backend or $MAMBA_TAD_BACKEND); "
                          f"expected one of {BACKENDS}")
    if backend == "torch":
        return "torch"
    if device.type != "cuda":
        if backend != "auto":
            raise BackendError(f"backend {backend!r} needs CUDA tensors, got tensors on {device}")
        return "torch"
    if backend == "triton":
        available, reason = triton_available()
        if not available:
            raise BackendError(f"backend 'triton' is unavailable ({reason}); pip install triton")
        return "triton"
    available, reason = cuda_kernels()
    if backend == "cuda" and not available:
        raise BackendError(f"backend 'cuda' is unavailable ({reason}); {INSTALL_HINT}")
    if available:
        _announce("cuda", reason)
        return "cuda"
    fallback, why = triton_available()
    chosen = "triton" if fallback else "torch"
    _announce(chosen, f"{reason}; {why}")
    return chosen


@functools.lru_cache(maxsize=None)
def _announce(chosen: str, reason: str) -> None:
    log.info("selective scan backend: %s (%s)", chosen, reason)
