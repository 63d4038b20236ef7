"""AdamW parameter groups and the per-iteration learning-rate schedule."""
from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..layers.masked import AffineDropPath, LayerNorm, Scale

NO_DECAY_MODULES = (LayerNorm, nn.LayerNorm, Scale, AffineDropPath)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for Linear/Conv weights only; biases, norms, scales, ``A_log``/``D``
    (flagged ``_no_weight_decay``) not."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_weight = name == "weight" and isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
            flagged = getattr(p, "_no_weight_decay", False) or isinstance(module, NO_DECAY_MODULES)
            (decay if is_weight and not flagged else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, warmup: int, total: int, base_lr: float, eta_min: float) -> float:
    """Multiplier for LambdaLR: linear from 0 over ``warmup`` steps, then cosine to ``eta_min``."""
    if step < warmup:
        return step / max(warmup, 1)
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return (eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * progress))) / base_lr
