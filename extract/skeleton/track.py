"""One person's keypoints per frame from the pose model's candidates.

Start from the highest-scoring candidate of the first frame that has one scoring at least
``min_score``; in each later frame follow the candidate whose box overlaps the last followed box
most (IoU at least ``min_iou``); when none does, take the best-scoring candidate if it scores at
least ``min_score``, else the frame has no person (confidence 0).
"""
from __future__ import annotations

import torch


def box_iou(a: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of box ``a (4,)`` with ``boxes (P, 4)``, as ``(x0, y0, x1, y1)``."""
    lo = torch.maximum(a[:2], boxes[:, :2])
    hi = torch.minimum(a[2:], boxes[:, 2:])
    inter = (hi - lo).clamp_min(0).prod(-1)
    area = lambda b: (b[..., 2:] - b[..., :2]).clamp_min(0).prod(-1)  # noqa: E731
    return inter / (area(a) + area(boxes) - inter).clamp_min(1e-9)


def follow_person(candidates: torch.Tensor, keypoints: int, min_score: float = 0.5,
                  min_iou: float = 0.3) -> torch.Tensor:
    """``candidates (T, P, K*3 + 5)`` -> ``(T, K, 3)`` keypoints of the followed person (zeros
    where there is none)."""
    t = candidates.shape[0]
    out = torch.zeros(t, keypoints, 3, dtype=candidates.dtype)
    last = None
    for i in range(t):
        boxes, scores = candidates[i, :, -5:-1], candidates[i, :, -1]
        pick = None
        if last is not None:
            iou = box_iou(last, boxes) * (scores > 0)
            if iou.max() >= min_iou:
                pick = int(iou.argmax())
        if pick is None and scores.max() >= min_score:
            pick = int(scores.argmax())
        if pick is not None:
            out[i] = candidates[i, pick, : keypoints * 3].reshape(keypoints, 3)
            last = boxes[pick]
    return out
