"""Soft-NMS on the GPU: the Triton kernel against the tensor-operation reference, same candidates.

Candidates are THUMOS-like: ``--candidates`` segments over ``--classes`` classes (random
starts, lengths and scores), 200 kept, sigma 0.5. Prints, per candidate count, whether both
paths keep the same segments (labels equal, scores and segments within 1e-6) and their times
(median (min-max) of ``--reps`` interleaved rounds of ``--iters`` calls).

    python benchmarks/soft_nms_speed.py --candidates 1000,4000,12000
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from detect.tasks.segments.postprocess import soft_nms


def candidates(n: int, classes: int, g: torch.Generator):
    starts = torch.rand(n, device="cuda", generator=g) * 2000
    segs = torch.stack([starts, starts + 1 + torch.rand(n, device="cuda", generator=g) * 100], 1)
    return segs, torch.rand(n, device="cuda", generator=g) ** 4, torch.randint(0, classes, (n,), device="cuda",
                                                                                 generator=g)


def run(path: str, segs, scores, labels):
    os.environ["MAMBA_TAD_TRITON_NMS"] = "1" if path == "triton" else "0"
    out = soft_nms(segs, scores, labels, 0.5, 0.001, 200)
    torch.cuda.synchronize()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", default="1000,4000,12000")
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    g = torch.Generator(device="cuda").manual_seed(0)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; {args.classes} classes, 200 kept")
    print(f"{'candidates':>10}{'same output':>13}{'reference ms':>22}{'triton ms':>22}{'speed-up':>10}")
    for n in map(int, args.candidates.split(",")):
        segs, scores, labels = candidates(n, args.classes, g)
        ref, fast = run("reference", segs, scores, labels), run("triton", segs, scores, labels)
        same = (torch.equal(ref[2], fast[2]) and torch.allclose(ref[1], fast[1], rtol=1e-6, atol=1e-7)
                and torch.allclose(ref[0], fast[0], rtol=1e-6, atol=1e-6))
        for _ in range(3):
            run("reference", segs, scores, labels), run("triton", segs, scores, labels)
        times = {"reference": [], "triton": []}
        for _ in range(args.reps):
            for path in times:
                start = time.perf_counter()
                for _ in range(args.iters):
                    run(path, segs, scores, labels)
                times[path].append(1000 * (time.perf_counter() - start) / args.iters)
        spread = {k: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" for k, v in times.items()}
        ratio = statistics.median(times["reference"]) / statistics.median(times["triton"])
        print(f"{n:>10}{str(same):>13}{spread['reference']:>22}{spread['triton']:>22}{ratio:>9.1f}x")
    os.environ.pop("MAMBA_TAD_TRITON_NMS")


if __name__ == "__main__":
    main()
