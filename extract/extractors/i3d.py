"""``i3d``: Inception-I3D snippet features, RGB, flow (RAFT or precomputed TV-L1) or both."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..spec import GridSpec, opt
from . import EXTRACTORS
from .base import Extraction, Extractor

STREAMS = ("rgb", "flow", "both")
FLOW_MODELS = ("raft_large", "raft_small")


@dataclass(kw_only=True)
class I3DSpec(GridSpec):
    stream: str = opt("rgb", "RGB, flow or both (RGB||flow, 2048-d)", choices=STREAMS)
    weights: str = opt("i3d-rgb-imagenet", "RGB I3D weights: registry name or file")
    flow_weights: str = opt("i3d-flow-imagenet", "flow I3D weights: registry name or file")
    flow_model: str = opt("raft_large", "RAFT model computing the flow", choices=FLOW_MODELS)
    flow_dir: Path | None = opt(None, "precomputed flow (e.g. TV-L1): one folder per video of x_NNNNN/y_NNNNN "
                                      "images (denseflow layout) and a frames.json or --fps; with --stream flow",
                                input=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stream not in STREAMS or self.flow_model not in FLOW_MODELS:
            raise ValueError(f"--stream must be one of {STREAMS} and --flow-model one of {FLOW_MODELS}, got "
                             f"{self.stream!r} and {self.flow_model!r}")
        if self.flow_dir is not None and self.stream != "flow":
            raise ValueError("--flow-dir goes with --stream flow (extract RGB into another store; "
                             "detect concatenates stores on channels)")
        if self.flow_dir is None and self.stream != "rgb" and self.size < 128:
            raise ValueError("RAFT flow needs frames of at least 128 px (its correlation pyramid); raise --size")


def i3d_model(weights: str, device):
    """``uint8 (n, T, H, W, C) -> (n, 1024)`` with the given I3D weights, and their identity."""
    import torch

    from ..models.i3d import i3d_from_state_dict
    from ..weights import load_state_dict, resolve, sha256_of

    path = resolve(weights)
    model = i3d_from_state_dict(load_state_dict(path)).eval().to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)

    def features(x):
        x = x.permute(0, 4, 1, 2, 3).float().mul_(2 / 255).sub_(1)   # (n, C, T, H, W) in [-1, 1]
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return model.features(x)

    return features, {"name": weights if not Path(weights).is_file() else Path(weights).name,
                      "sha256": sha256_of(path)}


@EXTRACTORS.register("i3d")
class I3D(Extractor):
    help = "I3D snippet features (RGB, flow or both) from videos"
    examples = """
examples:
  python -m extract i3d --video-dir videos/ --out stores/thumos14_i3d_rgb
  python -m extract i3d --video-dir videos/ --out stores/thumos14_i3d --stream both --dtype bf16 --batch-size 64
  python -m extract i3d --video-dir vfss/ --out stores/vfss_i3d --window 8 --stride 3 --size 128 \\
      --weights i3d-rgb-swallow
  torchrun --nproc-per-node 8 -m extract i3d --video-dir videos/ --out stores/x   # one GPU per rank

Defaults reproduce the public THUMOS14 I3D features: 16-frame snippets every 4 frames at the
native frame rate, short side 224 then centre crop, inputs scaled to [-1, 1], 1024-d per stream
(Mixed_5c, averaged); --stream both stores RGB||flow (2048-d). Flow is torchvision RAFT on the
GPU (the public features used TV-L1: not numerically identical; the store records which).
"""

    spec = I3DSpec

    @staticmethod
    def build(spec: I3DSpec, store: Path, device) -> Extraction:
        from ..models.flow import FlowStream, load_raft
        from ..runner import Stream
        from ..store import StoreInfo

        streams, models = [], {}
        if spec.stream in ("rgb", "both"):
            rgb, models["rgb"] = i3d_model(spec.weights, device)
            streams.append(Stream("rgb", rgb))
        if spec.stream in ("flow", "both"):
            flow, models["flow"] = i3d_model(spec.flow_weights, device)
            if spec.flow_dir is not None:   # the decoded "frames" are already flow
                streams.append(Stream("flow", flow))
            else:
                raft = load_raft(spec.flow_model, device)
                streams.append(Stream("flow", flow, flow=lambda: FlowStream(raft, device)))
        flow_used = spec.stream != "rgb"
        info = StoreInfo(feature=f"i3d_{spec.stream}", dtype="float32", step_shape=[1024 * len(streams)],
                         model={"name": "+".join(m["name"] for m in models.values()),
                                "sha256": "+".join(m["sha256"] for m in models.values()), "streams": models},
                         preprocessing={"size": spec.size, "spatial": spec.spatial, "interpolation": "bilinear",
                                        "scale": "x / 255 * 2 - 1", "fps": spec.fps,
                                        "flow": (f"precomputed ({spec.flow_dir})" if spec.flow_dir else spec.flow_model)
                                        if flow_used else None,
                                        "flow_quantisation": "clamp +-20, round(128 + 255/40 f)" if flow_used else None,
                                        "dtype": spec.dtype})
        return Extraction(streams, info, spec.size)
