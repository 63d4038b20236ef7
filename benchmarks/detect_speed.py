"""Detector speed on THUMOS14-shaped inputs, per backbone and backend.

Training: batch 2 x 2048-d x 2304 steps, 6 pyramid levels, d 512, bf16 autocast, AdamW step
included: iterations/s and peak GPU memory. Inference: a 212-video test set with THUMOS-like
lengths (300..6000 steps, batch 1, as ActionFormer evaluates), including decoding and Soft-NMS:
ms per video.

    python benchmarks/detect_speed.py                      # all detectors, cuda and torch backends
    python benchmarks/detect_speed.py --models actionmamba-dbm --backends cuda
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from detect.models import create_model
from detect.models.detector import ActionDetector
from detect.ops.graphs import clear_graphs
from detect.tasks.segments import SegmentLoss, decode_video


def make_model(name: str, backend: str) -> ActionDetector:
    backbone = {"input_dim": 2048, "embd_dim": 512, **({"backend": backend} if "mamba" in name else {})}
    return create_model(name, num_classes=20, head_dim=512, backbone=backbone).cuda()


def train_speed(model: ActionDetector, iters: int, g: torch.Generator) -> tuple[float, float]:
    feats = torch.randn(2, 2048, 2304, device="cuda", generator=g)
    mask = torch.ones(2, 2304, dtype=torch.bool, device="cuda")
    mask[1, 1800:] = False
    segments = [torch.tensor([[100.0, 180.0], [900.0, 1000.0]], device="cuda"), torch.tensor([[40.0, 60.0]], device="cuda")]
    labels = [torch.tensor([3, 7], device="cuda"), torch.tensor([1], device="cuda")]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = SegmentLoss(model.cfg).cuda()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = criterion(model(feats, mask), {"segments": segments, "labels": labels})["final_loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return iters / (time.perf_counter() - start), torch.cuda.max_memory_allocated() / 2 ** 30


@torch.no_grad()
def infer_speed(model: ActionDetector, videos: int, g: torch.Generator) -> float:
    model.eval()
    pp = model.cfg.postprocess
    lengths = torch.randint(300, 6000, (videos,), generator=torch.Generator().manual_seed(0)).tolist()
    inputs = [torch.randn(1, 2048, -(-n // 32) * 32, device="cuda", generator=g) for n in lengths[:4]]
    for x in inputs:  # warm-up
        decode_video(model(x, torch.ones(1, x.shape[-1], dtype=torch.bool, device="cuda")), 0, pp)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for n in lengths:
        padded = -(-n // model.length_multiple) * model.length_multiple
        x = torch.randn(1, 2048, padded, device="cuda", generator=g)
        mask = torch.arange(padded, device="cuda")[None] < n
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x, mask)
        segs, scores, labels = decode_video(out, 0, pp)
        segs.cpu()
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / videos


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="actionformer,actionmamba-vim,actionmamba-dbm")
    p.add_argument("--backends", default="cuda,torch")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--videos", type=int, default=212)
    p.add_argument("--json", help="write the rows here too")
    args = p.parse_args()
    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for backbone in args.models.split(","):
        for backend in (args.backends.split(",") if "mamba" in backbone else ["-"]):
            torch.manual_seed(0)
            model = make_model(backbone, backend if backend != "-" else "torch")
            its, mem = train_speed(model, args.iters, g)
            ms = infer_speed(model, args.videos, g)
            rows.append({"backbone": backbone, "backend": backend, "train_it_s": its, "peak_gib": mem,
                         "infer_ms_per_video": ms, "params_m": sum(q.numel() for q in model.parameters()) / 1e6})
            del model
            clear_graphs()
            torch.cuda.empty_cache()
    base = next((r for r in rows if r["backbone"] == "actionformer"), rows[0])
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; train: batch 2 x 2048 x 2304, bf16; "
          f"inference: {args.videos} videos, batch 1, with Soft-NMS")
    print(f"{'model':<17}{'backend':<9}{'params M':>9}{'train it/s':>12}{'vs AF':>11}{'peak GiB':>10}"
          f"{'infer ms/video':>16}")
    for r in rows:
        print(f"{r['backbone']:<17}{r['backend']:<9}{r['params_m']:>9.1f}{r['train_it_s']:>12.2f}"
              f"{r['train_it_s'] / base['train_it_s']:>11.2f}{r['peak_gib']:>10.2f}{r['infer_ms_per_video']:>16.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
