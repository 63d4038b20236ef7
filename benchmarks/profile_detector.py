"""Where a detector's GPU time goes: the top operators of inference forwards and training steps.

Runs ``torch.profiler`` over ``--steps`` inference forwards (batch 1, THUMOS-like lengths) and
training steps (batch 2 x 2048 x 2304, loss, backward, AdamW) after a warm-up, and prints the
operators with the most GPU time (self time, so nested calls are not counted twice), plus the
training step's peak memory split into what stays resident and what the step allocates.

    python benchmarks/profile_detector.py --model actionmamba-dbm --backend cuda
    python benchmarks/profile_detector.py --model actionformer --mode infer --precision fp32 --rows 40
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import make_model, segment_step_fn, thumos_train_batch, timed_detections  # noqa: E402

from detect.config import apply_overrides  # noqa: E402
from detect.errors import DetectError  # noqa: E402
from detect.ops.graphed_forward import GraphedForward  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="actionmamba-dbm")
    p.add_argument("--backend", default="cuda", help="cuda, triton or torch")
    p.add_argument("--mode", default="infer,train", help="infer and/or train")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--graphs", action="store_true", help="inference replayed from CUDA graphs, as predict runs it")
    p.add_argument("--option", action="append", default=[], help="backbone key=value, e.g. recompute=false")
    args = p.parse_args()
    amp = args.precision == "bf16"
    torch.manual_seed(0)
    try:
        model = make_model(args.model, args.backend, **apply_overrides({}, args.option))
    except (DetectError, KeyError, TypeError, ValueError) as err:  # an unknown model, option or value: one line
        raise SystemExit(f"{args.model} {args.option}: {err}") from None
    g = torch.Generator(device="cuda").manual_seed(0)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.model}, backend {args.backend}, "
          f"{args.precision}")
    if "infer" in args.mode:
        model.eval()
        lengths = torch.randint(300, 6000, (args.steps,), generator=torch.Generator().manual_seed(0)).tolist()
        videos = [torch.randn(2048, n, device="cuda", generator=g) for n in lengths]
        forward = GraphedForward(model) if args.graphs else model
        for x in videos:
            timed_detections(model, forward, x, amp)
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for x in videos:
                timed_detections(model, forward, x, amp)
        print(f"\ninference, {args.steps} videos of {min(lengths)}..{max(lengths)} steps")
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.rows))
    if "train" in args.mode:
        step = segment_step_fn(model.train(), *thumos_train_batch(g), amp)
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(args.steps):
                step()
            torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
        print(f"\ntraining, {args.steps} steps of batch 2 x 2048 x 2304: resident {step.footprint() / 2**30:.2f} GiB "
              f"(weights, gradients, optimizer), step peak above it {peak / 2**30:.2f} GiB")
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
