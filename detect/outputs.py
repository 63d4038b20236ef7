"""What models return, one type per task; the task's loss, inference and metric read these.
Each output type tells what one video of a batch owns (``video``): the registry-wide tests
compare a video alone and batched through it."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class DetectorOutput:
    """``segments`` task. Per pyramid level: ``cls_logits (B, T_l, K)``, ``offsets (B, T_l, 2)``
    in units of the level's stride, ``masks (B, T_l)``, ``points (T_l, 4)`` rows
    ``(t, range_lo, range_hi, stride)`` (:func:`make_points`).
    ``towers``: a multi-tower model's per-tower outputs (on the same points), each trained with
    its own loss; the fields above are then the fused prediction that inference decodes."""

    cls_logits: list[torch.Tensor]
    offsets: list[torch.Tensor]
    masks: list[torch.Tensor]
    strides: list[int]
    points: list[torch.Tensor]
    towers: list["DetectorOutput"] = field(default_factory=list)

    def video(self, index: int, length: int) -> list[torch.Tensor]:
        """What video ``index`` of the batch owns: its logits and offsets on the valid points of
        every level (``length`` valid level-0 steps)."""
        rows = []
        for logits, offsets, stride in zip(self.cls_logits, self.offsets, self.strides):
            valid = -(-length // stride)
            rows += [logits[index, :valid], offsets[index, :valid]]
        return rows


@dataclass
class FrameOutput:
    """``dense`` task: per-step multi-label ``logits (B, T, K)``; ``aux_logits`` are deep-supervision
    outputs of the same shape, weighted by the task's ``aux_weight``; ``extra_losses`` are
    model-specific terms, already weighted, added to the loss as they are."""

    logits: torch.Tensor
    aux_logits: list[torch.Tensor] = field(default_factory=list)
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)

    def video(self, index: int, length: int) -> list[torch.Tensor]:
        """What video ``index`` of the batch owns: its ``length`` valid steps of every output."""
        return [x[index, :length] for x in [self.logits, *self.aux_logits]]


@dataclass
class ClipOutput:
    """``clips`` task: one ``logits (B, K)`` row per clip."""

    logits: torch.Tensor

    def video(self, index: int, length: int) -> list[torch.Tensor]:
        """What clip ``index`` of the batch owns: its logits row."""
        return [self.logits[index]]


def make_points(lengths: list[int], strides: list[int], ranges: list[tuple[float, float]],
                device: torch.device | None = None) -> list[torch.Tensor]:
    """Per level, ``(T_l, 4)`` rows ``(t, range_lo, range_hi, stride)``."""
    if not len(lengths) == len(strides) == len(ranges):
        raise ValueError(f"{len(lengths)} levels but {len(strides)} strides and {len(ranges)} regression ranges")
    points = []
    for length, stride, (lo, hi) in zip(lengths, strides, ranges):
        t = torch.arange(length, device=device, dtype=torch.float32) * stride
        # filled on the device: no host-to-device copy, so a CUDA graph can capture the forward
        points.append(torch.stack([t, *(torch.full_like(t, v) for v in (lo, hi, stride))], dim=1))
    return points
