"""``frame-conv``: the minimal dense (per-frame, multi-label) model, a baseline for the ``dense``
task: 1x1 input projection, residual masked temporal convs, per-step linear head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.masked import MaskedConv1D
from ..outputs import FrameOutput
from .registry import register_model


@dataclass
class FrameConvConfig:
    num_classes: int
    input_dim: int = 1024
    dim: int = 256
    layers: int = 2
    kernel: int = 3
    dropout: float = 0.1


@register_model("frame-conv", config=FrameConvConfig, output=FrameOutput, streams=("features",),
                description="per-frame multi-label baseline: residual temporal convs, linear head",
                example={"num_classes": 157},
                input_shapes=lambda cfg: {"features": ("model.input_dim", (cfg.input_dim,))},
                tiny={"input_dim": 8, "dim": 16})
class FrameConvClassifier(nn.Module):
    def __init__(self, cfg: FrameConvConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.proj = MaskedConv1D(cfg.input_dim, cfg.dim, 1)
        self.convs = nn.ModuleList(MaskedConv1D(cfg.dim, cfg.dim, cfg.kernel) for _ in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Conv1d(cfg.dim, cfg.num_classes, 1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> FrameOutput:
        """``features (B, C, T)``, ``mask (B, T)`` -> logits ``(B, T, K)``."""
        m = mask[:, None]
        x, _ = self.proj(features, m)
        for conv in self.convs:
            x = x + F.relu(conv(self.dropout(x), m)[0])
        return FrameOutput(self.head(self.dropout(x)).transpose(1, 2))
