"""Exponential moving average of a model's weights (the evaluated model)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Exponential moving average of every floating-point state-dict tensor."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema, cur in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.dtype.is_floating_point:
                ema.mul_(self.decay).add_(cur.detach(), alpha=1 - self.decay)
            else:
                ema.copy_(cur)
