"""ActionFormer and ActionMamba: one detector (:class:`ActionDetector`), four block types.

``actionformer`` (local-window transformer, ActionFormer), ``actionmamba-dbm`` and
``actionmamba-vim`` (ActionMamba's decomposed bidirectional and Vim mixers), and
``actionformer-conv`` (ActionFormer's conv ablation). Their state dicts load the public
layouts strictly (tests/fixtures/*.json; :mod:`detect.models.convert` for released files).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..layers.backbone import (ConvBackboneConfig, DBMBackboneConfig, MSFBackboneConfig, TransformerBackboneConfig,
                       ViMBackboneConfig)
from .detector import ActionDetector, DetectorConfig
from ..outputs import DetectorOutput
from .registry import register_model

STREAMS = ("features",)
THUMOS14_I3D = {"num_classes": 20}      # the other defaults are ActionFormer's THUMOS14 I3D recipe


@dataclass
class ActionFormerConfig(DetectorConfig):
    backbone: TransformerBackboneConfig = field(default_factory=TransformerBackboneConfig)


@dataclass
class ActionMambaDBMConfig(DetectorConfig):
    backbone: DBMBackboneConfig = field(default_factory=DBMBackboneConfig)


@dataclass
class ActionMambaViMConfig(DetectorConfig):
    backbone: ViMBackboneConfig = field(default_factory=ViMBackboneConfig)


@dataclass
class ActionMambaMSFConfig(DetectorConfig):
    backbone: MSFBackboneConfig = field(default_factory=MSFBackboneConfig)


@dataclass
class ConvDetectorConfig(DetectorConfig):
    backbone: ConvBackboneConfig = field(default_factory=ConvBackboneConfig)


for _name, _config, _text in [
    ("actionformer", ActionFormerConfig, "ActionFormer: local-window transformer pyramid, shared heads"),
    ("actionmamba-dbm", ActionMambaDBMConfig, "ActionMamba with decomposed bidirectional Mamba (DBM) blocks"),
    ("actionmamba-vim", ActionMambaViMConfig, "ActionMamba with Vim (bimamba v2) blocks"),
    ("actionmamba-msf", ActionMambaMSFConfig, "ActionMamba DBM blocks with MSF-Mamba's state fusion over time"),
    ("actionformer-conv", ConvDetectorConfig, "ActionFormer's conv-block ablation"),
]:
    register_model(_name, config=_config, output=DetectorOutput, streams=STREAMS, description=_text,
                   example=THUMOS14_I3D,
                   input_shapes=lambda cfg: {"features": ("model.backbone.input_dim", (cfg.backbone.input_dim,))},
                   tiny={"head_dim": 16, "regression_range": [[0, 4], [4, 8], [8, 16], [16, 10000]],
                         "backbone": {"input_dim": 8, "embd_dim": 16, "arch": [2, 1, 3],
                                      **({"window": 5} if _name == "actionformer" else {})}},
                   )(ActionDetector)
