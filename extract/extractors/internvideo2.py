"""``internvideo2``: InternVideo2 snippet features (block tokens, mean-pooled), S14 to 6B."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..spec import GridSpec, opt
from . import EXTRACTORS
from .base import Extraction, Extractor


@dataclass(kw_only=True)
class InternVideo2Spec(GridSpec):
    tail: str = "pad"
    dtype: str = "bf16"                     # bf16 weights and autocast on a GPU; the CPU stays in fp32
    model: str | None = opt(None, "registry weights, e.g. internvideo2-1b-k400-f16 (python -m extract weights "
                                  "lists them); or --checkpoint")
    checkpoint: Path | None = opt(None, "a checkpoint file, or a folder of safetensors shards; or --model")
    model_config: Path | None = opt(None, "YAML/JSON of encoder fields (InternVideo2Config) that the file's shapes "
                                          "cannot tell, e.g. num_heads, img_size")
    layer: int = opt(-1, "block whose tokens are pooled (-1: the last)")
    snippet_frames: int | None = opt(None, "frames of a snippet fed to the encoder (default: all of --window)")

    def __post_init__(self) -> None:
        super().__post_init__()
        frames = self.window if self.snippet_frames is None else self.snippet_frames
        if not 1 <= frames <= self.window:
            raise ValueError(f"--snippet-frames must be in 1..--window ({self.window}), got {frames}")
        if (self.model is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of --model (registry weights) or --checkpoint (a file or folder)")
        _read_config(self.model_config)  # a bad file is refused before any video is looked at


def _read_config(path: Path | None) -> dict:
    """The fields a ``--model-config`` file sets, typed and checked against InternVideo2Config."""
    if path is None:
        return {}
    from ..models.internvideo2 import InternVideo2Config
    from ..typed_config import read_yaml, typed_fields

    return typed_fields(InternVideo2Config, read_yaml(path) or {}, str(path))  # FieldError: file and field


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

    spec = InternVideo2Spec

    @staticmethod
    def build(spec: InternVideo2Spec, store: Path, device) -> Extraction:
        import torch

        from ..models.internvideo2 import IMAGENET_MEAN, IMAGENET_STD
        from ..models.internvideo2_load import CheckpointError, load_internvideo2
        from ..runner import Stream
        from ..store import StoreInfo
        from ..weights import resolve, sha256_of

        frames = spec.window if spec.snippet_frames is None else spec.snippet_frames
        path = Path(spec.checkpoint) if spec.checkpoint else resolve(spec.model)
        dtype = torch.bfloat16 if device.type == "cuda" and spec.dtype == "bf16" else torch.float32
        fields = _read_config(spec.model_config)
        try:
            model, report = load_internvideo2(path, device, dtype, **fields)
        except CheckpointError as exc:
            raise ValueError(str(exc)) from None
        layer = model.resolve_layer(spec.layer)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1, 1)
        pick = torch.linspace(0, spec.window - 1, frames).round().long().to(device)

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
            feature=f"internvideo2_{cfg['embed_dim']}d_block{layer}", dtype="float32",
            step_shape=[cfg["embed_dim"]],
            model={"name": spec.model or Path(spec.checkpoint).name,
                   "sha256": sha256_of(path) if path.is_file() else None, "config": cfg, "layer": layer,
                   "ignored_keys": report.ignored, "key_prefix": report.prefix},
            preprocessing={"size": spec.size, "spatial": spec.spatial, "interpolation": "bilinear",
                           "scale": "x / 255", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                           "snippet_frames": frames, "frame_indices": pick.tolist(), "fps": spec.fps,
                           "pooled": f"tokens after block {layer} of {cfg['depth']}, class token excluded, mean over "
                                     "time and space, before the projector",
                           "dtype": str(dtype).replace("torch.", "")})
        return Extraction([Stream("internvideo2", features)], info, spec.size)
