"""The ActionFormer-lineage detector: backbone -> identity neck -> shared heads on every pyramid point.

Feature grids are level-0 units (feature indices); see :mod:`detect.tasks.segments.targets`.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers.backbone import Backbone, BackboneConfig
from ..layers.heads import ClsHead, FPNIdentity, RegHead
from ..ops.graphs import capturing
from ..outputs import DetectorOutput, make_points

DEFAULT_RANGES = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000))


@dataclass
class DetectorConfig:
    """Shared by the detectors of this family; each registered model narrows ``backbone`` to its
    block type (:mod:`detect.models.actionformer`). Targets, loss and post-processing settings
    are the ``segments`` task's (:class:`detect.tasks.segments.config.SegmentsConfig`)."""

    num_classes: int
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head_dim: int = 512
    head_layers: int = 3
    head_kernel: int = 3
    cls_prior_prob: float = 0.01
    head_empty_cls: tuple[int, ...] = ()
    regression_range: tuple[tuple[float, float], ...] = DEFAULT_RANGES

    def __post_init__(self) -> None:
        if isinstance(self.backbone, dict):
            self.backbone = typing.get_type_hints(type(self))["backbone"](**self.backbone)
        self.regression_range = tuple(tuple(r) for r in self.regression_range)
        self.head_empty_cls = tuple(self.head_empty_cls)
        if len(self.regression_range) != self.backbone.num_levels:
            raise ValueError(f"{len(self.regression_range)} regression ranges for {self.backbone.num_levels} "
                             f"pyramid levels (arch {self.backbone.arch})")


class ActionDetector(nn.Module):
    # the forward neither syncs with nor copies from the host: predict may replay it from a CUDA
    # graph (detect.ops.graphed_forward)
    graph_capturable = True

    def __init__(self, cfg: DetectorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        bb = cfg.backbone
        self.backbone = Backbone(bb)
        self.neck = FPNIdentity(bb.embd_dim, bb.num_levels)
        self.cls_head = ClsHead(bb.embd_dim, cfg.head_dim, cfg.num_classes, cfg.head_layers, cfg.head_kernel,
                                cfg.cls_prior_prob, tuple(cfg.head_empty_cls))
        self.reg_head = RegHead(bb.embd_dim, cfg.head_dim, bb.num_levels, cfg.head_layers, cfg.head_kernel)
        self.strides = [bb.scale_factor ** level for level in range(bb.num_levels)]
        self._point_rows: list[torch.Tensor] | None = None

    def points(self, lengths: list[int], device: torch.device) -> list[torch.Tensor]:
        """Per level ``(T_l, 4)`` point rows (:func:`~detect.outputs.make_points`) for level lengths
        ``lengths``: views of rows made once for the longest input so far, since making them
        launches six kernels per level and an eager forward at batch 1 is launch-bound. Rows made
        while a CUDA graph is being captured are not kept (they live in the graph's memory)."""
        rows = self._point_rows
        if rows is None or rows[0].device != device or rows[0].shape[0] < lengths[0]:
            rows = make_points(lengths, self.strides, list(self.cfg.regression_range), device)
            if not capturing(device):
                self._point_rows = rows
        return [r[:n] for r, n in zip(rows, lengths)]

    @property
    def length_multiple(self) -> int:
        """Inputs are padded to a multiple of this (the largest stride)."""
        return self.strides[-1]

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        """``features (B, C, T)`` and ``mask (B, T)``, T a multiple of :attr:`length_multiple`."""
        if features.shape[-1] % self.length_multiple:
            raise ValueError(f"length {features.shape[-1]} is not a multiple of the largest stride "
                             f"{self.length_multiple}")
        levels, masks = self.backbone(features, mask[:, None])
        levels, masks = self.neck(levels, masks)
        cls = self.cls_head(levels, masks)
        reg = self.reg_head(levels, masks)
        masks = [m[:, 0] for m in masks]
        points = self.points([m.shape[1] for m in masks], features.device)
        return DetectorOutput([c.transpose(1, 2) for c in cls], [r.transpose(1, 2) for r in reg], masks,
                              self.strides, points)
