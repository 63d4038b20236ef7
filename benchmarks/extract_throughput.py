"""End-to-end extraction throughput vs the model-only ceiling, on synthetic videos.

Makes N one-minute 30 fps videos (h264, 320x240, like THUMOS14), then measures, for I3D-RGB
(16/4 snippets, 224 px), CLIP ViT-L/14 (16-frame window means, 224 px) and InternVideo2
S14/B14/L14/1B (16/4 snippets of 16 frames, 224 px, bf16 weights, last block's tokens pooled):

* end to end: ``extract.runner.extract`` with decoding workers, into a throwaway store;
* model only: the same batch size on random input already on the GPU (the ceiling);
* decode only: the workers' frames turned into snippets, no model.

Weights are random (throughput does not depend on their values; no download needed).

    python benchmarks/extract_throughput.py --videos 8 --workers 16
    python benchmarks/extract_throughput.py --models iv2-s14,iv2-b14,iv2-l14,iv2-1b --videos 4 --seconds 30
    python benchmarks/extract_throughput.py --models skeleton-coco --videos 4 --seconds 30
    python benchmarks/extract_throughput.py --models i3d-both,iv2-l14 --videos 8 --seconds 60
    python benchmarks/extract_throughput.py --models i3d-rgb --videos 4 --seconds 120 --workers 12 --decode-threads 1

``skeleton-coco`` counts frames, not snippets: pose (torchvision Keypoint R-CNN, random
weights, 3 candidates per frame, 256 px frames) per decoded frame through the runner, then the
per-video pass (following, smoothing, rendering 56 x 56 fused maps on the GPU); model only is
the pose model on random frames.
"""
from __future__ import annotations

import argparse
import functools
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch


def make_videos(root: Path, durations: list[int], first: int = 0) -> list[Path]:
    """Synthetic THUMOS-like videos (ffmpeg ``testsrc2``, 320x240 h264, 30 fps), one per duration
    in seconds, each with its own hue; named ``video_NNN.mp4`` from ``first`` on. Encoded a few at
    a time: x264 barely uses several cores at 320x240, and this is set-up, not measured."""
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from extract.video.ffmpeg import ffmpeg_exe

    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"video_{i:03d}.mp4" for i in range(first, first + len(durations))]

    def encode(i: int) -> None:
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=320x240:rate=30:duration={durations[i]}", "-vf", f"hue=h={(first + i) * 37}",
                        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(paths[i])], check=True)

    with ThreadPoolExecutor(max(1, (os.cpu_count() or 2) // 2)) as pool:
        list(pool.map(encode, range(len(durations))))
    return paths


def i3d_stream(device, in_channels: int = 3):
    from extract.models.i3d import InceptionI3d

    model = InceptionI3d(in_channels).eval().to(device).to(memory_format=torch.channels_last_3d)

    def features(x):
        x = x.permute(0, 4, 1, 2, 3).float().mul_(2 / 255).sub_(1).contiguous(memory_format=torch.channels_last_3d)
        return model.features(x)

    return features


def clip_stream(device):
    import open_clip

    from extract.models.clip import ClipModel

    model = open_clip.create_model("ViT-L-14-quickgelu", pretrained=None).eval().to(device)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN, device=device)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD, device=device)
    return ClipModel(model, mean, std, 224, {}).snippets


def iv2_stream(variant: str, device):
    from extract.models.internvideo2 import IMAGENET_MEAN, IMAGENET_STD, VARIANTS, InternVideo2, InternVideo2Config

    cfg = InternVideo2Config(**VARIANTS[variant], num_frames=8, num_classes=400)
    model = InternVideo2(cfg).eval().to(device, torch.bfloat16)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1, 1)

    def features(x):
        x = x.permute(0, 4, 1, 2, 3).float().div_(255)
        return model.features(((x - mean) / std).to(torch.bfloat16)).float()

    return features


def skeleton_stream(device, weights: Path):
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    from extract.models.pose import coco_keypoint_rcnn

    torch.save(keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), weights)
    pose = coco_keypoint_rcnn(device, 3, weights)
    return lambda x: pose.run(x[:, 0]).reshape(len(x), -1), pose


def skeleton_row(root: Path, sources, args, device) -> dict:
    """Frames/s of the skeleton pipeline end to end, its two phases, and the pose model alone."""
    from extract.runner import Plan, Stream, extract
    from extract.skeleton.maps import RenderSpec, render_store
    from extract.skeleton.render import COCO_EDGES
    from extract.store import StoreInfo
    from extract.video.decode import DecodeSpec

    fn, pose = skeleton_stream(device, root / "kprcnn_random.pt")
    ceiling = model_only(fn, args.batch_size, 1, device, None, size=256)
    spec = DecodeSpec(size=256, spatial="resize")
    plan = Plan([Stream("pose", fn)], spec, window=1, stride=1, batch_size=args.batch_size, device=device)
    info = StoreInfo(feature="pose", dtype="float32", num_shards=4,
                     extra={"keypoints": 17, "persons": 3, "frame_size": [256, 256]})
    shutil.rmtree(root / "pose", ignore_errors=True)
    start = time.perf_counter()
    summary = extract(sources, root / "pose", info, plan, workers=args.workers, progress=False)
    pose_s = time.perf_counter() - start
    torch.cuda.synchronize()
    start = time.perf_counter()
    render_store(root / "pose", root / "maps", root / "kps", RenderSpec(edges=COCO_EDGES), device)
    render_s = time.perf_counter() - start
    frames = summary["snippets"]
    return {"model": "skeleton-coco", "snippets": frames, "end_to_end": frames / (pose_s + render_s),
            "model_only": ceiling, "ratio": frames / (pose_s + render_s) / ceiling,
            "decode_only": decode_only(sources, spec, 1, 1, args.workers), "peak_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
            "pose_phase": frames / pose_s, "render_phase": frames / render_s}


def i3d_both_row(root: Path, sources, spec, args, device, dtype) -> dict:
    """I3D RGB + flow, 16/4 snippets: torchvision RAFT-large flow (random weights, 12 updates, as
    ``extract i3d --stream both``) feeding the flow I3D, through the runner; the ceiling is the
    three models alone on GPU-resident input: per snippet one RGB and one flow I3D forward and
    RAFT on 4 new frame pairs."""
    from extract.models.flow import FlowStream, load_raft
    from extract.runner import Plan, Stream, extract
    from extract.store import StoreInfo

    rgb, flow_i3d = i3d_stream(device), i3d_stream(device, in_channels=2)
    raft = load_raft("raft_large", device, pretrained=False)
    window, stride = 16, 4
    torch.cuda.reset_peak_memory_stats()
    rgb_rate = model_only(rgb, args.batch_size, window, device, dtype)
    flow_rate = model_only(flow_i3d, args.batch_size, window, device, dtype, channels=2)
    frames = torch.randint(0, 256, (args.batch_size * stride + 1, 224, 224, 3), dtype=torch.uint8, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
        for repeat in range(4):                                     # one warm-up push, three timed
            if repeat == 1:
                torch.cuda.synchronize()
                start = time.perf_counter()
            FlowStream(raft, device).push(frames)
        torch.cuda.synchronize()
    pairs_rate = 3 * (len(frames) - 1) / (time.perf_counter() - start)
    ceiling = 1 / (1 / rgb_rate + 1 / flow_rate + stride / pairs_rate)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30
    plan = Plan([Stream("rgb", rgb), Stream("flow", flow_i3d, flow=lambda: FlowStream(raft, device))], spec,
                window=window, stride=stride, batch_size=args.batch_size, device=device, autocast=dtype)
    shutil.rmtree(root / "store", ignore_errors=True)
    summary = extract(sources, root / "store", StoreInfo(feature="i3d_both", dtype="float32", num_shards=4), plan,
                      workers=args.workers, progress=False)
    snippets = summary["snippets"] // 2    # the runner counts each stream's forwards; a snippet here is both
    e2e = snippets / summary["seconds"]
    print(f"i3d-both model only: RGB I3D {rgb_rate:.1f} snippets/s, flow I3D {flow_rate:.1f} snippets/s, "
          f"RAFT {pairs_rate:.1f} frame pairs/s")
    return {"model": "i3d-both", "snippets": snippets, "end_to_end": e2e, "model_only": ceiling,
            "decode_only": decode_only(sources, spec, window, stride, args.workers), "ratio": e2e / ceiling,
            "peak_gib": peak}


MODELS = {"i3d-rgb": (i3d_stream, 16, 4), "clip-vit-l14": (clip_stream, 16, 16),
          **{f"iv2-{v.lower()}": (functools.partial(iv2_stream, v), 16, 4) for v in ("S14", "B14", "L14", "1B")}}


def model_only(fn, batch: int, window: int, device, dtype, repeats: int = 10, size: int = 224,
               channels: int = 3) -> float:
    x = torch.randint(0, 256, (batch, window, size, size, channels), dtype=torch.uint8, device=device)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(3):
            fn(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn(x)
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def decode_only(sources, spec, window: int, stride: int, workers: int) -> float:
    from extract.runner import _as_is, _Decoded
    from extract.snippets import SnippetCutter

    loader = torch.utils.data.DataLoader(_Decoded(sources, spec), batch_size=None, collate_fn=_as_is,
                                         num_workers=workers)
    cutters, count = {}, 0
    start = time.perf_counter()
    for kind, vid, payload in loader:
        cutter = cutters.setdefault(vid, SnippetCutter(window, stride))
        if kind == "chunk":
            count += len(cutter.push(payload))
        elif kind == "end":
            count += len(cutter.finish())
    return count / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--models", default="i3d-rgb,clip-vit-l14", help=f"any of {', '.join(MODELS)}, i3d-both, skeleton-coco")
    p.add_argument("--decode-threads", type=int, default=0,
                   help="decoder threads per video (0: the runner shares the cores among busy workers)")
    p.add_argument("--json", help="write the rows here too")
    args = p.parse_args()
    if args.decode_threads < 0:
        p.error(f"--decode-threads must be 0 (automatic) or positive, got {args.decode_threads}")
    from extract.runner import Plan, Stream, extract
    from extract.store import StoreInfo
    from extract.video.decode import DecodeSpec
    from extract.video.sources import find_videos

    device = torch.device("cuda")
    dtype = torch.bfloat16
    root = Path(tempfile.mkdtemp(prefix="extract_bench_"))
    rows = []
    try:
        (root / "videos").mkdir()
        make_videos(root / "videos", [args.seconds] * args.videos)
        sources = find_videos(root / "videos")
        spec = DecodeSpec(size=224, threads=args.decode_threads)
        for name in args.models.split(","):
            if name == "i3d-both":
                rows.append(i3d_both_row(root, sources, spec, args, device, dtype))
                continue
            if name == "skeleton-coco":
                rows.append(skeleton_row(root, sources, args, device))
                print(f"skeleton: pose phase {rows[-1]['pose_phase']:.1f} frames/s, render phase "
                      f"{rows[-1]['render_phase']:.1f} frames/s")
                continue
            make, window, stride = MODELS[name]
            fn = make(device)
            torch.cuda.reset_peak_memory_stats()
            ceiling = model_only(fn, args.batch_size, window, device, dtype)
            peak = torch.cuda.max_memory_allocated() / 2 ** 30
            decode = decode_only(sources, spec, window, stride, args.workers)
            plan = Plan([Stream(name, fn)], spec, window=window, stride=stride, batch_size=args.batch_size,
                        device=device, autocast=dtype)
            shutil.rmtree(root / "store", ignore_errors=True)
            summary = extract(sources, root / "store", StoreInfo(feature=name, dtype="float32", num_shards=4), plan,
                              workers=args.workers, progress=False)
            e2e = summary["snippets"] / summary["seconds"]
            rows.append({"model": name, "snippets": summary["snippets"], "end_to_end": e2e, "model_only": ceiling,
                         "decode_only": decode, "ratio": e2e / ceiling, "peak_gib": peak})
            del fn
            torch.cuda.empty_cache()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{torch.cuda.get_device_name()}, {args.videos} x {args.seconds} s 30 fps 320x240 h264 videos, "
          f"{args.workers} decoding workers, {args.decode_threads or 'automatic'} decoder threads per video, "
          f"batch {args.batch_size}, bf16; snippets/s")
    print(f"{'model':<14}{'snippets':>9}{'end-to-end':>12}{'model only':>12}{'ratio':>7}{'decode only':>13}"
          f"{'peak GiB':>10}")
    for r in rows:
        print(f"{r['model']:<14}{r['snippets']:>9}{r['end_to_end']:>12.1f}{r['model_only']:>12.1f}{r['ratio']:>7.2f}"
              f"{r['decode_only']:>13.1f}{r['peak_gib']:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
