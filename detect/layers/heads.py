"""Neck and heads, shared across pyramid levels. Names follow ActionFormer: ``neck.fpn_norms.{i}``,
``cls_head.{head,norm}.{i}``, ``cls_head.cls_head.conv``, ``reg_head.{head,norm}.{i}``,
``reg_head.scale.{i}.scale``, ``reg_head.offset_head.conv``."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .masked import LayerNorm, MaskedConv1D, Scale, zero_padding


class FPNIdentity(nn.Module):
    """One LayerNorm per level, zeroed on padding (the heads rely on it); no top-down path."""

    def __init__(self, channels: int, num_levels: int) -> None:
        super().__init__()
        self.fpn_norms = nn.ModuleList(LayerNorm(channels) for _ in range(num_levels))

    def forward(self, feats, masks):
        return [zero_padding(norm(f), m) for norm, f, m in zip(self.fpn_norms, feats, masks)], masks


class _Trunk(nn.Module):
    def __init__(self, c_in: int, c_head: int, layers: int, kernel: int) -> None:
        super().__init__()
        self.head = nn.ModuleList(MaskedConv1D(c_in if i == 0 else c_head, c_head, kernel, bias=False)
                                  for i in range(layers - 1))
        self.norm = nn.ModuleList(LayerNorm(c_head) for _ in range(layers - 1))

    def trunk(self, x, mask):
        """``x`` zero on padding (the neck's output) -> features zero on padding."""
        for conv, norm in zip(self.head, self.norm):
            x, _ = conv(x, mask, zeroed=True, zero_output=False)  # zeroed after the norm
            x = F.relu(zero_padding(norm(x), mask))  # masked before the relu: its saved output is the next conv's input
        return x


class ClsHead(_Trunk):
    """Per-level class logits ``(B, K, T_l)``; bias initialised to the prior ``prior_prob``."""

    def __init__(self, c_in: int, c_head: int, num_classes: int, layers: int = 3, kernel: int = 3,
                 prior_prob: float = 0.01, empty_classes: tuple[int, ...] = ()) -> None:
        super().__init__(c_in, c_head, layers, kernel)
        self.cls_head = MaskedConv1D(c_head, num_classes, kernel)
        with torch.no_grad():
            self.cls_head.conv.bias.fill_(-math.log((1 - prior_prob) / prior_prob))
            for c in empty_classes:  # classes absent from training: a far lower prior
                self.cls_head.conv.bias[c] = -math.log((1 - 1e-6) / 1e-6)

    def forward(self, feats, masks):
        return [self.cls_head(self.trunk(f, m), m, zeroed=True)[0] for f, m in zip(feats, masks)]


class RegHead(_Trunk):
    """Per-level distances to the start and end ``(B, 2, T_l)``, in units of the level stride."""

    def __init__(self, c_in: int, c_head: int, num_levels: int, layers: int = 3, kernel: int = 3) -> None:
        super().__init__(c_in, c_head, layers, kernel)
        self.scale = nn.ModuleList(Scale() for _ in range(num_levels))
        self.offset_head = MaskedConv1D(c_head, 2, kernel)

    def forward(self, feats, masks):
        return [F.relu(scale(self.offset_head(self.trunk(f, m), m, zeroed=True)[0]))
                for scale, f, m in zip(self.scale, feats, masks)]
