"""``sg-mamba``: SG-Mamba's skeleton-guided two-tower detector (appearance + skeleton heatmaps).

    features (B, 2048, T)  --[down_proj 1x1: d_down]-------------\\
                                                                   CCM (cross-Mamba, both ways) -> appearance tower
    heatmaps (B, T, w, S, S) -- HeatmapStem --> (B, 576, T) -----/                               -> skeleton tower
    each tower: an ActionMamba detector (DBM blocks); per level, logits and offsets fused as
    (1 - vw) * skeleton + vw * appearance; training sums both towers' losses.

Both streams sit on one grid (the skeleton store's frames are windowed onto the appearance grid
by :mod:`detect.data.streams`) and are cropped together. ``towers`` keeps one tower only (the
single-modality baselines); ``down_dim: null`` runs CCM at the full 2048-d width, as the public
code (70.7 M parameters of CCM alone, against 12.3 M at 512).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from ..layers.backbone import DBMBackboneConfig
from ..layers.cross_mamba import CCMFusion
from .detector import ActionDetector, DetectorConfig
from ..layers.heatmap_stem import HeatmapStem, HeatmapStemConfig
from ..layers.masked import MaskedConv1D
from ..outputs import DetectorOutput
from .registry import register_model

TOWERS = ("both", "appearance", "skeleton")
VFSS_RANGES = ((0, 4), (4, 8), (8, 16), (16, 32), (32, 10000))


def _vfss_backbone() -> DBMBackboneConfig:
    return DBMBackboneConfig(input_dim=512, arch=(2, 2, 4), max_seq_len=192)


@dataclass
class SGMambaConfig(DetectorConfig):
    backbone: DBMBackboneConfig = field(default_factory=_vfss_backbone)   # both towers' detector backbone
    regression_range: tuple[tuple[float, float], ...] = VFSS_RANGES
    appearance_dim: int = 2048                  # I3D RGB || flow
    down_dim: int | None = 512                  # appearance width inside CCM and its tower; None: appearance_dim
    heatmap: HeatmapStemConfig = field(default_factory=HeatmapStemConfig)
    ccm_layers: int = 3
    ccm_init_scale: float = 0.1
    ccm_drop_path: float = 0.1
    fusion_weight: float = 0.6                  # vw: weight of the appearance tower in the late fusion
    towers: str = "both"

    def __post_init__(self) -> None:
        if isinstance(self.heatmap, dict):
            self.heatmap = HeatmapStemConfig(**self.heatmap)
        if isinstance(self.backbone, dict):  # options on top of the VFSS defaults, not the class defaults
            if "input_dim" in self.backbone:
                raise ValueError("backbone.input_dim is derived (the appearance width after down_proj): set "
                                 "down_dim or appearance_dim")
            self.backbone = dataclasses.replace(_vfss_backbone(), **self.backbone)
        super().__post_init__()
        if self.towers not in TOWERS:
            raise ValueError(f"towers must be one of {TOWERS}, got {self.towers!r}")
        if not 0 <= self.fusion_weight <= 1:
            raise ValueError(f"fusion_weight must be in [0, 1], got {self.fusion_weight}")
        self.backbone.input_dim = self.tower_input

    @property
    def tower_input(self) -> int:
        return self.down_dim or self.appearance_dim


def tower_config(cfg: SGMambaConfig, input_dim: int) -> DetectorConfig:
    """The detector config of one tower: the shared settings with its own input width."""
    shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(DetectorConfig)}
    return DetectorConfig(**{**shared, "backbone": dataclasses.replace(cfg.backbone, input_dim=input_dim)})


def fuse(skeleton: DetectorOutput, appearance: DetectorOutput, vw: float) -> DetectorOutput:
    """Per level ``(1 - vw) * skeleton + vw * appearance`` on logits and offsets; the appearance
    tower's points and masks."""
    mix = lambda a, b: [(1 - vw) * x + vw * y for x, y in zip(a, b)]  # noqa: E731
    return DetectorOutput(mix(skeleton.cls_logits, appearance.cls_logits), mix(skeleton.offsets, appearance.offsets),
                          appearance.masks, appearance.strides, appearance.points, towers=[appearance, skeleton])


@register_model("sg-mamba", config=SGMambaConfig, output=DetectorOutput, streams=("features", "heatmaps"),
                description="SG-Mamba: appearance + skeleton-heatmap towers, cross-Mamba (CCM) fusion",
                example={"num_classes": 7},
                input_shapes=lambda cfg: {"features": ("model.appearance_dim", (cfg.appearance_dim,)),
                                          "heatmaps": ("model.heatmap", (cfg.heatmap.window, cfg.heatmap.size,
                                                                         cfg.heatmap.size))},
                tiny={"appearance_dim": 12, "down_dim": 8, "head_dim": 8, "ccm_layers": 1,
                      "heatmap": {"window": 4, "size": 14, "patch": 7, "dim": 8, "depth": 1},
                      "backbone": {"embd_dim": 8, "arch": [1, 1, 2], "backend": "torch"},
                      "regression_range": [[0, 4], [4, 8], [8, 1000]]})
class SGMamba(nn.Module):
    def __init__(self, cfg: SGMambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        backend = cfg.backbone.backend
        if cfg.towers != "skeleton":
            self.down_proj = MaskedConv1D(cfg.appearance_dim, cfg.down_dim, 1) if cfg.down_dim else None
            self.appearance = ActionDetector(tower_config(cfg, cfg.tower_input))
        if cfg.towers != "appearance":
            self.stem = HeatmapStem(cfg.heatmap, backend)
            self.skeleton = ActionDetector(tower_config(cfg, cfg.heatmap.dim))
        if cfg.towers == "both":
            self.ccm = CCMFusion(cfg.tower_input, cfg.heatmap.dim, cfg.ccm_layers, cfg.ccm_init_scale,
                                 cfg.ccm_drop_path, d_state=cfg.backbone.d_state, backend=backend)
        first = self.appearance if cfg.towers != "skeleton" else self.skeleton
        self.strides = first.strides

    @property
    def length_multiple(self) -> int:
        return self.strides[-1]

    @property
    def capturable(self) -> bool:
        """Whether the forward never waits for the GPU: the stem's window count must be fixed."""
        return self.cfg.towers == "appearance" or self.cfg.heatmap.max_windows is not None

    def check_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        """What a graph replay cannot check, on the batch's host tensors."""
        if self.cfg.towers != "appearance" and self.cfg.heatmap.max_windows is not None:
            self.stem.check_windows(inputs["mask"])

    def forward(self, mask: torch.Tensor, features: torch.Tensor | None = None,
                heatmaps: torch.Tensor | None = None) -> DetectorOutput:
        """``features (B, 2048, T)``, ``heatmaps (B, T, w, S, S)``, ``mask (B, T)``."""
        v = h = None
        if self.cfg.towers != "skeleton":
            v = features if self.down_proj is None else self.down_proj(features, mask[:, None])[0]
        if self.cfg.towers != "appearance":
            h = self.stem(heatmaps, mask)
        if self.cfg.towers == "both":
            v, h = self.ccm(v, h, mask, mask)
            return fuse(self.skeleton(h, mask), self.appearance(v, mask), self.cfg.fusion_weight)
        return self.appearance(v, mask) if v is not None else self.skeleton(h, mask)
