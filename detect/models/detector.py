"""The ActionFormer-lineage detector: backbone -> identity neck -> shared heads on every pyramid point.

Feature grids are level-0 units (feature indices); see :mod:`detect.models.targets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .backbone import Backbone, BackboneConfig
from .heads import ClsHead, FPNIdentity, RegHead
from .losses import diou_loss_1d, sigmoid_focal_loss
from .postprocess import PostprocessConfig, decode_level, soft_nms, vote_boundaries
from .targets import assign_targets, make_points

DEFAULT_RANGES = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000))


@dataclass
class DetectorConfig:
    num_classes: int
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head_dim: int = 512
    head_layers: int = 3
    head_kernel: int = 3
    cls_prior_prob: float = 0.01
    head_empty_cls: tuple[int, ...] = ()
    regression_range: tuple[tuple[float, float], ...] = DEFAULT_RANGES
    center_sample_radius: float = 1.5
    loss_weight: float = 1.0               # <= 0: adapt to cls_loss / reg_loss each step
    init_loss_norm: float = 100.0
    label_smoothing: float = 0.0
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        if isinstance(self.backbone, dict):
            self.backbone = BackboneConfig(**self.backbone)
        if isinstance(self.postprocess, dict):
            self.postprocess = PostprocessConfig(**self.postprocess)
        self.regression_range = tuple(tuple(r) for r in self.regression_range)
        if len(self.regression_range) != self.backbone.num_levels:
            raise ValueError(f"{len(self.regression_range)} regression ranges for {self.backbone.num_levels} "
                             f"pyramid levels (arch {self.backbone.arch})")


@dataclass
class DetectorOutput:
    """Per level: ``cls_logits (B, T_l, K)``, ``offsets (B, T_l, 2)``, ``masks (B, T_l)``."""

    cls_logits: list[torch.Tensor]
    offsets: list[torch.Tensor]
    masks: list[torch.Tensor]


class ActionDetector(nn.Module):
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
        # A buffer, so that checkpoints resume the loss normaliser exactly.
        self.register_buffer("loss_normalizer", torch.tensor(float(cfg.init_loss_norm)))

    @property
    def max_stride(self) -> int:
        return self.strides[-1]

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        """``feats (B, C, T)`` and ``mask (B, T)``, T a multiple of :attr:`max_stride`."""
        if feats.shape[-1] % self.max_stride:
            raise ValueError(f"length {feats.shape[-1]} is not a multiple of the largest stride {self.max_stride}")
        levels, masks = self.backbone(feats, mask[:, None])
        levels, masks = self.neck(levels, masks)
        cls = self.cls_head(levels, masks)
        reg = self.reg_head(levels, masks)
        return DetectorOutput([c.transpose(1, 2) for c in cls], [r.transpose(1, 2) for r in reg],
                              [m[:, 0] for m in masks])

    def points(self, out: DetectorOutput) -> list[torch.Tensor]:
        return make_points([m.shape[1] for m in out.masks], self.strides, list(self.cfg.regression_range),
                           out.masks[0].device)

    def loss(self, out: DetectorOutput, segments: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Focal + DIoU losses normalised by an EMA of the positive count (updated in training)."""
        points = torch.cat(self.points(out))
        targets = [assign_targets(points, s, l, self.cfg.num_classes, self.cfg.center_sample_radius)
                   for s, l in zip(segments, labels)]
        gt_cls = torch.stack([t[0] for t in targets])                       # (B, P, K)
        gt_reg = torch.stack([t[1] for t in targets])                       # (B, P, 2)
        logits = torch.cat(out.cls_logits, dim=1).float()
        offsets = torch.cat(out.offsets, dim=1).float()
        valid = torch.cat(out.masks, dim=1)
        positive = valid & (gt_cls.sum(-1) > 0)
        num_pos = positive.sum()
        if self.training:
            self.loss_normalizer.mul_(0.9).add_(0.1 * num_pos.clamp(min=1).float())
        eps = self.cfg.label_smoothing
        target = gt_cls[valid] * (1 - eps) + eps / (self.cfg.num_classes + 1)
        cls_loss = sigmoid_focal_loss(logits[valid], target) / self.loss_normalizer
        reg_loss = (diou_loss_1d(offsets[positive], gt_reg[positive]) / self.loss_normalizer
                    if num_pos > 0 else offsets.sum() * 0)
        weight = self.cfg.loss_weight
        if weight <= 0:
            weight = cls_loss.detach() / max(reg_loss.item(), 0.01)
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": cls_loss + weight * reg_loss}

    @torch.no_grad()
    def detect(self, out: DetectorOutput, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Detections of video ``index`` of the batch: segments (level-0 grid units), scores, labels."""
        pp = self.cfg.postprocess
        parts = [decode_level(c[index].float(), o[index].float(), m[index], s, pp)
                 for c, o, m, s in zip(out.cls_logits, out.offsets, out.masks, self.strides)]
        segs, scores, labels = (torch.cat([p[i] for p in parts]) for i in range(3))
        kept, kept_scores, kept_labels = soft_nms(segs, scores, labels, pp.nms_sigma, pp.min_score, pp.max_seg_num,
                                                  class_agnostic=not pp.multiclass_nms)
        if pp.voting_thresh > 0 and kept.numel():
            kept = vote_boundaries(kept, segs, scores, pp.voting_thresh)
        return kept, kept_scores, kept_labels
