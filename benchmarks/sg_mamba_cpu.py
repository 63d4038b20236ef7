"""SG-Mamba training steps on the CPU: the torch selective scan in chunks vs as one chunk.

The tiny config of issue 27 (appearance 64-d, down-projection, towers and heatmap stem 32-d, 2
stem layers, 16x16 heatmaps in 8x8 patches, windows of 8, batch 4 x 152 steps): the heatmap stem
scans 608 windows of 33 tokens with a 64 x 16 state each, which is where a step's time goes.
Interleaved rounds after a warm-up; median (min-max) seconds per step and the ratio.

    python benchmarks/sg_mamba_cpu.py [--rounds 5] [--steps 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import importlib
import platform
import statistics
import time

import torch

from detect.models import create_model
from detect.tasks.segments.config import SegmentsConfig
from detect.tasks.segments.task import SegmentLoss

scan = importlib.import_module("detect.ops.selective_scan")
WAYS = {"chunks (before)": 1 << 62, "one chunk (now)": scan.CPU_ONE_CHUNK_STATE}


def tiny_step(batch: int = 4, steps: int = 152):
    torch.manual_seed(0)
    model = create_model("sg-mamba", num_classes=4, appearance_dim=64, down_dim=32, head_dim=32, ccm_layers=1,
                         heatmap={"window": 8, "size": 16, "patch": 8, "dim": 32, "depth": 2},
                         backbone={"embd_dim": 32, "arch": [1, 1, 2], "backend": "torch", "max_seq_len": 160},
                         regression_range=[[0, 4], [4, 8], [8, 10000]]).train()
    inputs = {"features": torch.randn(batch, 64, steps), "heatmaps": torch.rand(batch, steps, 8, 16, 16),
              "mask": torch.ones(batch, steps, dtype=torch.bool)}
    targets = {"segments": [torch.tensor([[10.0, 30.0], [60.0, 90.0]])] * batch,
               "labels": [torch.tensor([1, 2])] * batch}
    loss_fn = SegmentLoss(SegmentsConfig(), 4)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(**inputs), targets)["final_loss"].backward()
        opt.step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="training steps per round and way")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    step = tiny_step()
    times = {way: [] for way in WAYS}
    for way, threshold in WAYS.items():  # warm-up: allocator and first-call costs
        scan.CPU_ONE_CHUNK_STATE = threshold
        step()
    for _ in range(args.rounds):
        for way, threshold in WAYS.items():
            scan.CPU_ONE_CHUNK_STATE = threshold
            t = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[way].append((time.perf_counter() - t) / args.steps)
    print(f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}; "
          f"median (min-max) of {args.rounds} interleaved rounds of {args.steps} steps")
    base = statistics.median(times["chunks (before)"])
    print(f"{'torch scan':<18}{'s/step':>22}{'ratio':>8}")
    for way, values in times.items():
        print(f"{way:<18}{statistics.median(values):>9.2f} ({min(values):.2f}-{max(values):.2f})"
              f"{statistics.median(values) / base:>12.2f}")


if __name__ == "__main__":
    main()
