"""``i3d``: Inception-I3D snippet features, RGB, flow (RAFT or precomputed TV-L1) or both."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import EXTRACTORS
from .base import Extraction, Extractor


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

    @staticmethod
    def add_arguments(p, inputs):
        inputs.add_argument("--flow-dir", type=Path, help="precomputed flow (e.g. TV-L1): one folder per video of "
                            "x_NNNNN/y_NNNNN images (denseflow layout) and a frames.json or --fps; with --stream flow")
        p.add_argument("--stream", default="rgb", choices=("rgb", "flow", "both"))
        p.add_argument("--window", type=int, default=16, help="frames per snippet (default 16)")
        p.add_argument("--stride", type=int, default=4, help="frames between snippet starts (default 4)")
        p.add_argument("--tail", default="drop", choices=("drop", "pad"), help="frames after the last whole window")
        p.add_argument("--weights", default="i3d-rgb-imagenet", help="RGB I3D weights: registry name or file")
        p.add_argument("--flow-weights", default="i3d-flow-imagenet", help="flow I3D weights: registry name or file")
        p.add_argument("--flow-model", default="raft_large", choices=("raft_large", "raft_small"))
        p.set_defaults(flow_dir=None)

    @staticmethod
    def build(args: argparse.Namespace, device) -> Extraction:
        from ..models.flow import FlowStream, load_raft
        from ..runner import Stream
        from ..store import StoreInfo

        if args.flow_dir is not None:
            if args.stream != "flow":
                raise ValueError("--flow-dir goes with --stream flow (extract RGB into another store; "
                                 "detect concatenates stores on channels)")
            args.frame_dir, args.video_dir, args.list = args.flow_dir, None, None
        elif args.stream != "rgb" and args.size < 128:
            raise ValueError("RAFT flow needs frames of at least 128 px (its correlation pyramid); raise --size")
        streams, models = [], {}
        if args.stream in ("rgb", "both"):
            rgb, models["rgb"] = i3d_model(args.weights, device)
            streams.append(Stream("rgb", rgb))
        if args.stream in ("flow", "both"):
            flow, models["flow"] = i3d_model(args.flow_weights, device)
            if args.flow_dir is not None:   # the decoded "frames" are already flow
                streams.append(Stream("flow", flow))
            else:
                raft = load_raft(args.flow_model, device)
                streams.append(Stream("flow", flow, flow=lambda: FlowStream(raft, device)))
        flow_used = args.stream != "rgb"
        info = StoreInfo(feature=f"i3d_{args.stream}", dtype="float32", num_shards=args.shards,
                         step_shape=[1024 * len(streams)],
                         model={"name": "+".join(m["name"] for m in models.values()),
                                "sha256": "+".join(m["sha256"] for m in models.values()), "streams": models},
                         preprocessing={"size": args.size, "spatial": args.spatial, "interpolation": "bilinear",
                                        "scale": "x / 255 * 2 - 1", "fps": args.fps,
                                        "flow": (f"precomputed ({args.flow_dir})" if args.flow_dir else args.flow_model)
                                        if flow_used else None,
                                        "flow_quantisation": "clamp +-20, round(128 + 255/40 f)" if flow_used else None,
                                        "dtype": args.dtype},
                         grid={"window": args.window, "stride": args.stride, "tail": args.tail, "fps": args.fps})
        return Extraction(streams, info, args.size, args.window, args.stride)
