"""Small masked layers shared by the backbones and heads. Tensors are channel-first ``(B, C, T)``;
masks are ``(B, 1, T)`` booleans, True on valid steps."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.graphs import capturing


def downsample_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Nearest-neighbour downsampling of a ``(B, 1, T)`` mask, as the strided convs see it."""
    if stride == 1:
        return mask
    if mask.shape[-1] % stride == 0:  # nearest picks every stride-th step: a view, no kernel launches
        return mask[..., ::stride]
    return F.interpolate(mask.float(), size=mask.shape[-1] // stride, mode="nearest").bool()


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with zeros where the (broadcastable) boolean ``mask`` is False.

    The product with the boolean mask itself is one kernel that casts as it reads, forward and
    backward; ``x * mask.to(x.dtype)`` launches a cast first, and eager forwards at batch 1 are
    launch-bound, with masks in every layer. Same values: the cast gives exactly 1 and 0. The
    result keeps ``x``'s dtype (a bf16 ``x`` stays bf16, where a float32 mask would promote it).
    """
    return x * mask


def masked_max_pool(x: torch.Tensor, mask: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``MaxPool1d(3, stride, 1)`` that ignores padded steps (a zeroed pad would win over negative
    values at the boundary, so results would depend on how much padding follows)."""
    out_mask = downsample_mask(mask, stride)
    pooled = F.max_pool1d(x.masked_fill(~mask, float("-inf")), 3, stride, 1)
    return pooled.masked_fill(~out_mask, 0.0), out_mask


class MaskedConv1D(nn.Module):
    """``Conv1d`` with "same" padding that reads zeros on padded steps and writes zeros there.

    Zeroing the *input* is what makes padding exact: a per-step layer before the conv (a
    LayerNorm's bias, ``relu(bias)``) leaves non-zero values on padded steps, which a kernel-3
    conv would otherwise read at the last valid steps.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = True, dilation: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.stride = stride
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, stride, dilation * (kernel_size // 2), dilation, groups, bias)
        if bias:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, zeroed: bool = False,
                zero_output: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``zeroed``: the caller guarantees ``x`` is zero on padded steps, so the input product is
        skipped (a product would be one more full-size tensor saved for backward).
        ``zero_output=False``: the caller only feeds the output to per-step layers and zeroes or
        ignores padding after them, so zeroing it here would be a wasted kernel."""
        if x.shape[-1] % self.stride:
            raise ValueError(f"sequence length {x.shape[-1]} is not a multiple of the stride {self.stride}")
        out_mask = downsample_mask(mask, self.stride)
        out = self.conv(x if zeroed else zero_padding(x, mask))
        return (zero_padding(out, out_mask) if zero_output else out), out_mask


class LayerNorm(nn.Module):
    """LayerNorm over the channels of ``(B, C, T)``; parameters shaped ``(1, C, 1)`` as in ActionFormer.

    One fused ``layer_norm`` on the ``(B, T, C)`` view, which saves only its input and per-step
    statistics for backward (ActionFormer's elementwise version saves two more full-size tensors
    and launches ~7 kernels forward and ~12 backward). The result keeps the input's dtype under
    autocast (statistics in float32 inside the kernel) and is the ``(B, C, T)`` view of a
    channels-last buffer.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self._cast: tuple | None = None   # (key, weight, bias) in a lower precision, for inference

    def affine(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight and bias ``(C,)`` in ``dtype``: CUDA's kernel takes only the input's dtype (the
        CPU one takes float32 too). Without gradients the cast is kept until the parameters
        change, so an eager bf16 forward launches no casts (not kept while a graph captures)."""
        weight, bias = self.weight.view(-1), self.bias.view(-1)
        if dtype == weight.dtype:
            return weight, bias
        if torch.is_grad_enabled():
            return weight.to(dtype), bias.to(dtype)
        key = (dtype, weight.device, weight._version, bias._version, weight.data_ptr(), bias.data_ptr())
        if self._cast is not None and self._cast[0] == key:
            return self._cast[1:]
        cast = (key, weight.to(dtype), bias.to(dtype))
        if not capturing(weight.device):
            self._cast = cast
        return cast[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.affine(x.dtype)
        with torch.autocast(x.device.type, enabled=False):
            out = F.layer_norm(x.transpose(1, 2), x.shape[1:2], weight, bias, self.eps)
        return out.transpose(1, 2)


class Scale(nn.Module):
    """A learnable scalar (per pyramid level in the regression head)."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop whole samples of a residual branch (batch first) with rate ``p``."""
    if not training or p == 0:
        return x
    keep = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), device=x.device) >= p
    return x * keep.to(x.dtype) / (1 - p)


class AffineDropPath(nn.Module):
    """Per-channel learnable scale (init ``init_scale``), then stochastic depth with rate ``p``."""

    def __init__(self, channels: int, p: float = 0.0, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.p = p
        self.scale = nn.Parameter(init_scale * torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(self.scale * x, self.p, self.training)


def sinusoid_position_encoding(length: int, channels: int) -> torch.Tensor:
    """``(1, C, T)`` sinusoidal absolute position encoding."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float32) * (-torch.log(torch.tensor(10000.0)) / channels))
    pe = torch.zeros(length, channels)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: channels // 2])
    return pe.t()[None]
