"""``python -m extract i3d``: snippet features from videos into a store."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DTYPES = ("fp32", "bf16", "fp16")

I3D_EXAMPLES = """
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


def add_input_args(p: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video-dir", type=Path, help="folder of videos (searched recursively by extension)")
    src.add_argument("--list", type=Path, help="text file with one video path per line")
    src.add_argument("--frame-dir", type=Path, help="folders of frames, e.g. from `python -m extract frames`")
    p.add_argument("--id-style", default="auto", choices=("auto", "stem", "relative"),
                   help="video ids: stems when unique (auto), always stems, or relative paths")
    p.add_argument("--out", required=True, type=Path, help="store to create or resume")
    p.add_argument("--fps", default="native", help="'native' or a frame rate to resample to (default native)")
    p.add_argument("--size", type=int, default=224, help="frame size fed to the model (default 224)")
    p.add_argument("--spatial", default="center-crop", choices=("center-crop", "resize"),
                   help="short side to --size then centre crop, or squash to --size x --size")
    p.add_argument("--decoder", default="auto", choices=("auto", "decord", "ffmpeg"),
                   help="auto: decord when its frame count checks out, else an ffmpeg pipe")
    p.add_argument("--batch-size", type=int, default=32, help="snippets per GPU batch (default 32)")
    p.add_argument("--workers", type=int, default=4, help="decoding processes (default 4)")
    p.add_argument("--device", default="auto", help="cuda, cuda:N or cpu (auto: this rank's GPU if any)")
    p.add_argument("--dtype", default="fp32", choices=DTYPES, help="autocast precision on CUDA")
    p.add_argument("--shards", type=int, default=16, help="shards of a new store")
    p.add_argument("--retry-failed", action="store_true", help="try again videos that failed before")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return src


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("i3d", help="I3D snippet features (RGB, flow or both) from videos",
                       description=__doc__, epilog=I3D_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = add_input_args(p)
    src.add_argument("--flow-dir", type=Path, help="precomputed flow (e.g. TV-L1): one folder per video of "
                     "x_NNNNN/y_NNNNN images (denseflow layout) and a frames.json or --fps; with --stream flow")
    p.add_argument("--stream", default="rgb", choices=("rgb", "flow", "both"))
    p.add_argument("--window", type=int, default=16, help="frames per snippet (default 16)")
    p.add_argument("--stride", type=int, default=4, help="frames between snippet starts (default 4)")
    p.add_argument("--tail", default="drop", choices=("drop", "pad"), help="frames after the last whole window")
    p.add_argument("--weights", default="i3d-rgb-imagenet", help="RGB I3D weights: registry name or file")
    p.add_argument("--flow-weights", default="i3d-flow-imagenet", help="flow I3D weights: registry name or file")
    p.add_argument("--flow-model", default="raft_large", choices=("raft_large", "raft_small"))
    p.set_defaults(func=run_i3d, flow_dir=None)


CLIP_EXAMPLES = """
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


def add_clip_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("clip", help="CLIP image features (open_clip) per frame or per snippet",
                       epilog=CLIP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(p)
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
    p.set_defaults(func=run_clip, size=None, flow_dir=None)


def _device(name: str):
    import os

    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        # one GPU per process: torchrun's LOCAL_RANK, else the first GPU (never all of them)
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def i3d_model(weights: str, device):
    """``uint8 (n, T, H, W, C) -> (n, 1024)`` with the given I3D weights."""
    import torch

    from .models.i3d import i3d_from_state_dict
    from .weights import load_state_dict, resolve, sha256_of

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


def _plan(args: argparse.Namespace, streams, device, size: int, window: int, stride: int):
    """The runner's plan from the options every extractor shares."""
    import torch

    from .runner import Plan
    from .video.decode import DecodeSpec

    fps = None if args.fps == "native" else float(args.fps)
    autocast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    return Plan(streams, DecodeSpec(size=size, spatial=args.spatial, fps=fps, decoder=args.decoder),
                window=window, stride=stride, tail=args.tail, batch_size=args.batch_size, device=device,
                autocast=autocast if device.type == "cuda" else None)


def _extract(sources, args: argparse.Namespace, info, plan) -> int:
    from .runner import extract
    from .store import StoreError

    if not sources:
        raise SystemExit("error: no videos found")
    try:
        summary = extract(sources, args.out, info, plan, workers=args.workers, retry_failed=args.retry_failed)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None
    return report(summary, args)


def run_i3d(args: argparse.Namespace) -> int:
    from .models.flow import FlowStream, load_raft
    from .runner import Stream
    from .store import StoreInfo
    from .video.sources import find_videos
    from .weights import MissingWeightsError

    device = _device(args.device)
    if args.flow_dir is not None:
        if args.stream != "flow":
            raise SystemExit("error: --flow-dir goes with --stream flow (extract RGB into another store; "
                             "detect concatenates stores on channels)")
        args.frame_dir, args.video_dir, args.list = args.flow_dir, None, None
    elif args.stream != "rgb" and args.size < 128:
        raise SystemExit("error: RAFT flow needs frames of at least 128 px (its correlation pyramid); raise --size")
    try:
        sources = find_videos(args.video_dir, args.list, args.frame_dir, args.id_style)
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
    except (FileNotFoundError, ValueError, MissingWeightsError, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    plan = _plan(args, streams, device, args.size, args.window, args.stride)
    info = StoreInfo(feature=f"i3d_{args.stream}", dtype="float32", num_shards=args.shards,
                     model={"name": "+".join(m["name"] for m in models.values()),
                            "sha256": "+".join(m["sha256"] for m in models.values()), "streams": models},
                     preprocessing={"size": args.size, "spatial": args.spatial, "interpolation": "bilinear",
                                    "scale": "x / 255 * 2 - 1", "fps": args.fps,
                                    "flow": (f"precomputed ({args.flow_dir})" if args.flow_dir else args.flow_model)
                                    if args.stream != "rgb" else None,
                                    "flow_quantisation": "clamp +-20, round(128 + 255/40 f)" if args.stream != "rgb" else None,
                                    "dtype": args.dtype},
                     grid={"window": args.window, "stride": args.stride, "tail": args.tail, "fps": args.fps})
    return _extract(sources, args, info, plan)


def run_clip(args: argparse.Namespace) -> int:
    from .models.clip import load_clip
    from .runner import Stream
    from .store import StoreInfo
    from .video.sources import find_videos
    from .weights import weights_dir

    device = _device(args.device)
    try:
        if args.model_config:
            import open_clip

            open_clip.add_model_config(args.model_config)
        clip = load_clip(args.model, args.pretrained, device, args.normalize,
                         None if args.quick_gelu == "auto" else args.quick_gelu == "yes",
                         cache_dir=str(weights_dir() / "open_clip"))
        sources = find_videos(args.video_dir, args.list, args.frame_dir, args.id_style)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise SystemExit(f"error: {exc}") from None
    window, stride = (1, 1) if args.pool == "frame" else (args.window, args.stride)
    size = args.size or clip.image_size
    plan = _plan(args, [Stream("clip", clip.snippets)], device, size, window, stride)
    identity = clip.identity
    info = StoreInfo(feature=f"clip_{args.model}_{args.pool}".replace("/", "_"), dtype="float32",
                     num_shards=args.shards,
                     model={"name": f"{identity['arch']}/{identity['pretrained']}", "sha256": None},
                     preprocessing={**identity, "decoder_resize": f"{args.spatial}, bilinear", "size": size,
                                    "pool": args.pool, "fps": args.fps, "dtype": args.dtype},
                     grid={"window": window, "stride": stride, "tail": args.tail, "fps": args.fps})
    return _extract(sources, args, info, plan)


def report(summary: dict, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'written':<10}{summary['written']:>8}\n{'skipped':<10}{summary['skipped']:>8}\n"
              f"{'failed':<10}{len(summary['failed']):>8}\n{'snippets':<10}{summary['snippets']:>8}\n"
              f"{'time':<10}{summary['seconds']:>7.1f}s")
        for vid, error in summary["failed"].items():
            print(f"failed {vid}: {error}", file=sys.stderr)
    return 1 if summary["failed"] and not args.keep_going else 0
