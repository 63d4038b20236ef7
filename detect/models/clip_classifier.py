"""``clip-pool``: the minimal clip classifier, a baseline for the ``clips`` task: masked mean and
max pooling of the clip's feature sequence, LayerNorm, linear head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..outputs import ClipOutput
from .registry import register_model


@dataclass
class ClipPoolConfig:
    num_classes: int
    input_dim: int = 1024
    dropout: float = 0.2


@register_model("clip-pool", config=ClipPoolConfig, output=ClipOutput, streams=("features",),
                description="clip classification baseline: masked mean+max pooling, linear head",
                example={"num_classes": 17},
                input_shapes=lambda cfg: {"features": ("model.input_dim", (cfg.input_dim,))},
                tiny={"input_dim": 8})
class ClipPoolClassifier(nn.Module):
    def __init__(self, cfg: ClipPoolConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = nn.LayerNorm(2 * cfg.input_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.input_dim, cfg.num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> ClipOutput:
        """``features (B, C, T)``, ``mask (B, T)`` -> logits ``(B, K)``."""
        m = mask[:, None].to(features.dtype)
        mean = (features * m).sum(-1) / m.sum(-1).clamp(min=1)
        peak = features.masked_fill(~mask[:, None], float("-inf")).amax(-1)
        return ClipOutput(self.head(self.dropout(self.norm(torch.cat([mean, peak], dim=1)))))
