"""The ``segments`` task's settings: a run's ``task:`` section (ActionFormer's ``train_cfg`` and
``test_cfg``, the data crops, the evaluation protocol and score fusion)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .postprocess import PostprocessConfig

FUSION_MODES = ("sqrt", "product")


@dataclass
class SegmentsConfig:
    # training videos: crops and resizing
    trunc_thresh: float = 0.5               # a crop keeps a segment if it keeps this fraction of it
    crop_ratio: list[float] | None = field(default_factory=lambda: [0.9, 1.0])
    downsample_rate: int = 1
    resize_to: int | None = None            # linearly resize every video to this many steps (ActivityNet: 192)
    class_agnostic: bool = False            # one "action" class; names come from ext_score_file
    # targets and loss
    center_sample_radius: float = 1.5       # in strides of the point's level
    loss_weight: float = 1.0                # regression loss weight; <= 0: cls_loss / reg_loss each step
    init_loss_norm: float = 100.0           # start of the EMA of the positive count that normalises the loss
    label_smoothing: float = 0.0
    # inference
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # evaluation: the dataset card's protocol unless set
    tiou: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7])  # the card's unless set
    clean_gt: bool = True                   # merge overlapping ground truth of a class first (THUMOS14)
    restrict_to_subset: bool = False        # ignore detections on videos outside the split (else false positives)
    # class-agnostic proposals labelled by an external video classifier (ActivityNet, HACS)
    ext_score_file: str | None = None       # {"results": {video: [p, ...]}, "class": [names]}
    fusion_topk: int = 2
    fusion_mode: str = "sqrt"               # sqrt(p_cls * p_seg) (ActionMamba) or product (ActionFormer)

    def __post_init__(self) -> None:
        if isinstance(self.postprocess, dict):
            self.postprocess = PostprocessConfig(**self.postprocess)
        if self.downsample_rate < 1 or self.fusion_topk < 1 or self.init_loss_norm <= 0:
            raise ValueError(f"need downsample_rate >= 1, fusion_topk >= 1 and init_loss_norm > 0, got "
                             f"{self.downsample_rate}, {self.fusion_topk}, {self.init_loss_norm}")
        if not self.tiou or not all(0 < t < 1 for t in self.tiou):
            raise ValueError(f"tiou must be thresholds in (0, 1), got {self.tiou}")
        if self.fusion_mode not in FUSION_MODES:
            raise ValueError(f"fusion_mode must be one of {FUSION_MODES}, got {self.fusion_mode!r}")

    @staticmethod
    def card_defaults(evaluation: dict[str, Any]) -> dict[str, Any]:
        return {"tiou": [float(t) for t in evaluation["tiou"]], "clean_gt": evaluation.get("protocol") == "clean-gt"}
