"""``clip``: CLIP image features through open_clip, per frame or averaged per snippet."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec import ExtractSpec, GridSpec, opt
from . import EXTRACTORS
from .base import Extraction, Extractor

POOLS = ("window", "frame")
QUICK_GELU = ("auto", "yes", "no")


@dataclass(kw_only=True)
class ClipSpec(GridSpec):
    size: int | None = opt(None, "frame size fed to the model (default: the model's own)")
    stride: int = 16                        # non-overlapping 16-frame windows
    tail: str = "pad"
    model: str = opt("ViT-L-14", "open_clip architecture, or hf-hub:ORG/REPO")
    pretrained: str = opt("openai", "pretrained tag, or a local checkpoint file")
    model_config: Path | None = opt(None, "JSON config of a custom architecture (open_clip format)")
    quick_gelu: str = opt("auto", "auto: as the pretrained tag says (required for a local file whose training "
                                  "used it: yes)", choices=QUICK_GELU)
    pool: str = opt("window", "mean over each snippet's frames, or one vector per frame", choices=POOLS)
    normalize: bool = opt(False, "L2-normalise the features")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pool not in POOLS or self.quick_gelu not in QUICK_GELU:
            raise ValueError(f"--pool must be one of {POOLS} and --quick-gelu one of {QUICK_GELU}")

    def grid(self) -> dict[str, Any]:
        return super().grid() if self.pool == "window" else ExtractSpec.grid(self)


@EXTRACTORS.register("clip")
class Clip(Extractor):
    help = "CLIP image features (open_clip) per frame or per snippet"
    examples = """
examples:
  python -m extract clip --video-dir videos/ --out stores/charades_clip --model ViT-L-14 --pretrained openai \\
      --pool window --window 16 --stride 16          # MS-Temba-style 16-frame means (768-d)
  python -m extract clip --video-dir videos/ --out stores/x --model ViT-B-32 --pretrained laion2b_s34b_b79k \\
      --pool frame                                   # one vector per frame
  python -m extract clip --video-dir videos/ --out stores/x --model hf-hub:timm/ViT-B-16-SigLIP --pretrained ""

Preprocessing (mean, std, size) comes from the model's own config; frames are resized by the
decoder (bilinear, open_clip uses bicubic). OpenAI / LAION-400M weights get QuickGELU as their
tag requires. Features are not L2-normalised unless --normalize.
"""

    spec = ClipSpec

    @staticmethod
    def build(spec: ClipSpec, store: Path, device) -> Extraction:
        from ..models.clip import load_clip
        from ..runner import Stream
        from ..store import StoreInfo
        from ..weights import weights_dir

        if spec.model_config:
            import open_clip

            open_clip.add_model_config(spec.model_config)
        clip = load_clip(spec.model, spec.pretrained, device, spec.normalize,
                         None if spec.quick_gelu == "auto" else spec.quick_gelu == "yes",
                         cache_dir=str(weights_dir() / "open_clip"))
        size = spec.size or clip.image_size
        identity = clip.identity
        info = StoreInfo(feature=f"clip_{spec.model}_{spec.pool}".replace("/", "_"), dtype="float32",
                         model={"name": f"{identity['arch']}/{identity['pretrained']}", "sha256": None},
                         preprocessing={**identity, "decoder_resize": f"{spec.spatial}, bilinear", "size": size,
                                        "pool": spec.pool, "fps": spec.fps, "dtype": spec.dtype})
        return Extraction([Stream("clip", clip.snippets)], info, size)
