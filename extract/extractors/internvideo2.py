"""``internvideo2``: InternVideo2 snippet features (block tokens, mean-pooled), S14 to 6B."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import EXTRACTORS
from .base import Extraction, Extractor


def _read_config(path: Path | None) -> dict:
    if path is None:
        return {}
    import yaml

    from ..models.internvideo2 import InternVideo2Config

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML/JSON ({str(exc).splitlines()[0]})") from None
    known = set(InternVideo2Config.__dataclass_fields__)
    if not isinstance(data, dict) or set(data) - known:
        unknown = sorted(set(data) - known) if isinstance(data, dict) else data
        raise ValueError(f"{path}: unknown InternVideo2 config fields {unknown}; known: {', '.join(sorted(known))}")
    return data


@EXTRACTORS.register("internvideo2")
class InternVideo2Extractor(Extractor):
    help = "InternVideo2 snippet features: one block's tokens mean-pooled over space and time"
    examples = """
examples:
  python -m extract internvideo2 --video-dir videos/ --out stores/thumos_iv2_1b --model internvideo2-1b-k400-f16 \\
      --window 16 --stride 4 --layer -5 --dtype bf16
  python -m extract internvideo2 --video-dir videos/ --out stores/x --checkpoint ~/1B_ft_k710_ft_k400_f8.pth
  python -m extract internvideo2 --video-dir videos/ --out stores/x --checkpoint ~/iv2_6b/ --dtype bf16  # shards
  python -m extract internvideo2 --video-dir videos/ --out stores/x --checkpoint tiny.pth --model-config tiny.yaml

A snippet is --window frames (--snippet-frames of them, evenly spaced, go to the encoder; the
checkpoint's temporal position embedding is interpolated to that many). Frames: short side to
--size then centre crop (--spatial resize squashes, as the InternVideo2 lab code does), scaled to
[0, 1], ImageNet mean/std. The feature is the output of block --layer (N: block N; -k: k-th from
the end; the public TAL releases are believed to use an intermediate block), class token excluded,
mean over time and space, before any projector. Weights on the Hub are gated: accept the licence
on the model page and log in (`hf auth login` or HF_TOKEN), or pass a local file with --checkpoint.
"""

    @staticmethod
    def add_arguments(p, inputs):
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--model", help="registry weights, e.g. internvideo2-1b-k400-f16 "
                                           "(python -m extract weights lists them)")
        which.add_argument("--checkpoint", type=Path, help="a checkpoint file, or a folder of safetensors shards")
        p.add_argument("--model-config", type=Path, help="YAML/JSON of encoder fields (InternVideo2Config) that the "
                                                         "file's shapes cannot tell, e.g. num_heads, img_size")
        p.add_argument("--layer", type=int, default=-1, help="block whose tokens are pooled (default -1: the last)")
        p.add_argument("--window", type=int, default=16, help="frames per snippet (default 16)")
        p.add_argument("--stride", type=int, default=4, help="frames between snippets (default 4)")
        p.add_argument("--snippet-frames", type=int, help="frames of a snippet fed to the encoder (default: all)")
        p.add_argument("--tail", default="pad", choices=("drop", "pad"), help="frames after the last whole window")
        p.set_defaults(dtype="bf16")  # bf16 weights and autocast on a GPU; the CPU stays in fp32

    @staticmethod
    def build(args: argparse.Namespace, device) -> Extraction:
        import torch

        from ..models.internvideo2 import IMAGENET_MEAN, IMAGENET_STD
        from ..models.internvideo2_load import CheckpointError, load_internvideo2
        from ..runner import Stream
        from ..store import StoreInfo
        from ..weights import resolve, sha256_of

        frames = args.snippet_frames or args.window
        if not 1 <= frames <= args.window:
            raise ValueError(f"--snippet-frames must be in 1..--window ({args.window}), got {frames}")
        path = Path(args.checkpoint) if args.checkpoint else resolve(args.model)
        dtype = torch.bfloat16 if device.type == "cuda" and args.dtype == "bf16" else torch.float32
        fields = _read_config(args.model_config)
        try:
            model, report = load_internvideo2(path, device, dtype, **fields)
        except CheckpointError as exc:
            raise ValueError(str(exc)) from None
        except TypeError as exc:  # a --model-config value of the wrong type
            raise ValueError(f"{args.model_config}: {exc}") from None
        layer = model.resolve_layer(args.layer)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1, 1)
        pick = torch.linspace(0, args.window - 1, frames).round().long().to(device)

        @torch.inference_mode()
        def features(x: torch.Tensor) -> torch.Tensor:
            """uint8 ``(n, T, H, W, 3)`` -> ``(n, C)``."""
            x = x.index_select(1, pick).permute(0, 4, 1, 2, 3).float().div_(255)
            return model.features(((x - mean) / std).to(dtype), layer).float()

        print(f"InternVideo2 {report.config['embed_dim']}-d x {report.config['depth']} blocks from {path} "
              f"(prefix {report.prefix!r}, {len(report.ignored)} keys ignored by name); features of block {layer}; "
              f"peak host memory {report.peak_host_gib:.1f} GiB"
              + (f", GPU {report.peak_device_gib:.1f} GiB" if report.peak_device_gib is not None else ""))
        cfg = report.config
        info = StoreInfo(
            feature=f"internvideo2_{cfg['embed_dim']}d_block{layer}", dtype="float32", num_shards=args.shards,
            step_shape=[cfg["embed_dim"]],
            model={"name": args.model or Path(args.checkpoint).name,
                   "sha256": sha256_of(path) if path.is_file() else None, "config": cfg, "layer": layer,
                   "ignored_keys": report.ignored, "key_prefix": report.prefix},
            preprocessing={"size": args.size, "spatial": args.spatial, "interpolation": "bilinear",
                           "scale": "x / 255", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                           "snippet_frames": frames, "frame_indices": pick.tolist(), "fps": args.fps,
                           "pooled": f"tokens after block {layer} of {cfg['depth']}, class token excluded, mean over "
                                     "time and space, before the projector",
                           "dtype": str(dtype).replace("torch.", "")},
            grid={"window": args.window, "stride": args.stride, "tail": args.tail, "fps": args.fps})
        return Extraction([Stream("internvideo2", features)], info, args.size, args.window, args.stride)
