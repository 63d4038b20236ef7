"""``clip``: CLIP image features through open_clip, per frame or averaged per snippet."""
from __future__ import annotations

import argparse
from pathlib import Path

from . import EXTRACTORS
from .base import Extraction, Extractor


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

    @staticmethod
    def add_arguments(p, inputs):
        p.add_argument("--model", default="ViT-L-14", help="open_clip architecture, or hf-hub:ORG/REPO")
        p.add_argument("--pretrained", default="openai", help="pretrained tag, or a local checkpoint file")
        p.add_argument("--model-config", type=Path, help="JSON config of a custom architecture (open_clip format)")
        p.add_argument("--quick-gelu", choices=("auto", "yes", "no"), default="auto",
                       help="auto: as the pretrained tag says (required for a local file whose training used it: yes)")
        p.add_argument("--pool", default="window", choices=("window", "frame"), help="mean over snippets, or per frame")
        p.add_argument("--window", type=int, default=16, help="frames per snippet for --pool window (default 16)")
        p.add_argument("--stride", type=int, default=16, help="frames between snippets (default 16: non-overlapping)")
        p.add_argument("--tail", default="pad", choices=("drop", "pad"), help="frames after the last whole window")
        p.add_argument("--normalize", action="store_true", help="L2-normalise the features")
        p.set_defaults(size=None, flow_dir=None)

    @staticmethod
    def build(args: argparse.Namespace, device) -> Extraction:
        from ..models.clip import load_clip
        from ..runner import Stream
        from ..store import StoreInfo
        from ..weights import weights_dir

        if args.model_config:
            import open_clip

            open_clip.add_model_config(args.model_config)
        clip = load_clip(args.model, args.pretrained, device, args.normalize,
                         None if args.quick_gelu == "auto" else args.quick_gelu == "yes",
                         cache_dir=str(weights_dir() / "open_clip"))
        window, stride = (1, 1) if args.pool == "frame" else (args.window, args.stride)
        size = args.size or clip.image_size
        identity = clip.identity
        info = StoreInfo(feature=f"clip_{args.model}_{args.pool}".replace("/", "_"), dtype="float32",
                         num_shards=args.shards,
                         model={"name": f"{identity['arch']}/{identity['pretrained']}", "sha256": None},
                         preprocessing={**identity, "decoder_resize": f"{args.spatial}, bilinear", "size": size,
                                        "pool": args.pool, "fps": args.fps, "dtype": args.dtype},
                         grid={"window": window, "stride": stride, "tail": args.tail, "fps": args.fps})
        return Extraction([Stream("clip", clip.snippets)], info, size, window, stride)
