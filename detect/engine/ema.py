"""Exponential moving average of a model's weights (the evaluated model)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """Exponential moving average of every floating-point state-dict tensor; other tensors (step
    counters) are copied. One multi-tensor ``mul`` and ``add`` per update rather than two small
    kernels per tensor: the same arithmetic, so the same bits."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._pairs: tuple[int, list, list, list, list] | None = None

    def _tensors(self, model: nn.Module) -> tuple[list, list, list, list]:
        if self._pairs is None or self._pairs[0] != id(model):
            pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))
            floats = [(e, c) for e, c in pairs if e.dtype.is_floating_point]
            others = [(e, c) for e, c in pairs if not e.dtype.is_floating_point]
            self._pairs = (id(model), [e for e, _ in floats], [c for _, c in floats],
                           [e for e, _ in others], [c for _, c in others])
        return self._pairs[1:]

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema, cur, ema_other, cur_other = self._tensors(model)
        torch._foreach_mul_(ema, self.decay)
        torch._foreach_add_(ema, cur, alpha=1 - self.decay)
        for e, c in zip(ema_other, cur_other):
            e.copy_(c)
