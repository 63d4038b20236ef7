"""Sigmoid focal loss and 1-D DIoU loss (ActionFormer), both summed; the caller normalises.

``where`` selects the elements that count by a mask instead of boolean indexing: the sum is the
same, and no host synchronisation is needed to learn how many elements were selected, so a
training step can run ahead of the GPU (and be captured)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _summed(loss: torch.Tensor, where: torch.Tensor | None) -> torch.Tensor:
    return loss.sum() if where is None else torch.where(where, loss, 0.0).sum()


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, where: torch.Tensor | None = None) -> torch.Tensor:
    """Summed focal loss: ``alpha_t * BCE * (1 - p_t) ** gamma`` with ``p_t`` the prob. of the
    target; ``where`` (broadcastable to ``logits``) masks the elements that count."""
    p = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = bce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _summed(loss, where)


def diou_loss_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8,
                 where: torch.Tensor | None = None) -> torch.Tensor:
    """Summed 1-D distance-IoU loss over ``(..., 2)`` (left, right) offsets, both non-negative;
    ``where`` (``(...)``) masks the pairs that count."""
    lp, rp = pred[..., 0], pred[..., 1]
    lg, rg = target[..., 0], target[..., 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = lp + rp + lg + rg - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * ((rp - lp) - (rg - lg))
    return _summed(1 - iou + (rho / enclosing.clamp(min=eps)) ** 2, where)
