"""Depthwise causal conv1d: ``y[b,d,l] = act(bias[d] + sum_k w[d,k] x[b,d,l-W+1+k])``, zeros before 0."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backend import resolve

ACTIVATIONS = (None, "silu", "swish")


def causal_conv1d_torch(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                        activation: str | None = None) -> torch.Tensor:
    """``x (Bt, D, L)``, ``weight (D, W)``: grouped ``conv1d`` padded by W-1, first L outputs."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    width = weight.shape[1]
    y = F.conv1d(x, weight.unsqueeze(1).to(x.dtype), None if bias is None else bias.to(x.dtype),
                 padding=width - 1, groups=x.shape[1])[..., : x.shape[-1]]
    return F.silu(y) if activation else y


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str | None = None, backend: str | None = None) -> torch.Tensor:
    """Causal depthwise conv on the chosen backend (causal-conv1d's kernel for ``cuda``)."""
    if resolve(backend, x.device) == "cuda":
        from causal_conv1d import causal_conv1d_fn

        return causal_conv1d_fn(x, weight, bias=bias, activation=activation)
    return causal_conv1d_torch(x, weight, bias, activation)
