"""Where a detector's GPU time goes: the top operators of inference forwards and training steps.

Runs ``torch.profiler`` over ``--steps`` inference forwards (batch 1, THUMOS-like lengths) and
training steps (the trainer's: loss, backward, clipping, fused AdamW, EMA) after a warm-up, and
prints the operators with the most GPU time (self time, so nested calls are not counted twice),
what bounds a step (wall time against the GPU's busy time and the kernel launches per step), and
the training step's peak memory split into what stays resident and what the step allocates.

``--task segments`` (THUMOS14 shape, batch 2 x 2048 x 2304), ``dense`` (MS-Temba, TSU shape, batch
1 x 1024 x 2500) or ``sgmamba`` (stage 2: batch 4 windows of 38 valid steps padded to 192, 2048-d
features and 8 x 56 x 56 heatmaps per step); the last two profile training only.

    python benchmarks/profile_detector.py --model actionmamba-dbm --backend cuda
    python benchmarks/profile_detector.py --model actionformer --mode infer --precision fp32 --rows 40
    python benchmarks/profile_detector.py --task dense --mode train
    python benchmarks/profile_detector.py --task sgmamba --mode train
    python benchmarks/profile_detector.py --task sgmamba --mode train --graph --option heatmap.max_windows=152
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from detect_speed import dense_batch, sg_inputs, timed  # noqa: E402
from segment_bench import make_model, thumos_train_batch, timed_detections, training_step_fn  # noqa: E402

from detect.config import apply_overrides  # noqa: E402
from detect.errors import DetectError  # noqa: E402
from detect.ops.graphed_forward import GraphedForward  # noqa: E402
from detect.tasks.segments.config import SegmentsConfig  # noqa: E402
from detect.tasks.segments.task import SegmentLoss  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("segments", "dense", "sgmamba"), default="segments")
    p.add_argument("--model", default="actionmamba-dbm", help="segments: the detector")
    p.add_argument("--backend", default="cuda", help="cuda, triton or torch")
    p.add_argument("--mode", default="infer,train", help="infer and/or train")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--graphs", action="store_true", help="inference replayed from CUDA graphs, as predict runs it")
    p.add_argument("--option", action="append", default=[], help="key=value of the backbone (segments) or the "
                   "model (dense, sgmamba), e.g. recompute=false, heatmap.max_windows=152")
    p.add_argument("--graph", action="store_true", help="training: the step replayed from a CUDA graph")
    args = p.parse_args()
    amp = args.precision == "bf16"
    torch.manual_seed(0)
    g = torch.Generator(device="cuda").manual_seed(0)
    try:
        model, inputs, batch, criterion, shape = build(args, g)
    except (DetectError, KeyError, TypeError, ValueError) as err:  # an unknown model, option or value: one line
        what = args.model if args.task == "segments" else args.task
        raise SystemExit(f"{what} {args.option}: {err}") from None
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.task}, "
          f"{args.model if args.task == 'segments' else type(model).__name__}, backend {args.backend}, "
          f"{args.precision}{', graphed step' if args.graph else ''}")
    if "infer" in args.mode and args.task == "segments":
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
        step = training_step_fn(model.train(), criterion, inputs, batch, amp, graph=args.graph)
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(args.steps):
                step()
            torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / args.steps
        peak = torch.cuda.max_memory_allocated() - before
        print(f"\ntraining, {args.steps} steps of {shape}: resident {step.footprint() / 2**30:.2f} GiB "
              f"(weights, gradients, optimizer, EMA), step peak above it {peak / 2**30:.2f} GiB")
        bound(prof, wall, args.steps)
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.rows))
        unprofiled = timed(step, args.steps)
        print(f"without the profiler: {1000 * unprofiled:.1f} ms/step ({1 / unprofiled:.2f} it/s)")


def build(args, g: torch.Generator):
    """``(model, inputs, batch, criterion, shape)`` of the task's training step."""
    if args.task == "segments":
        model = make_model(args.model, args.backend, **apply_overrides({}, args.option))
        feats, mask, segments, labels = thumos_train_batch(g)
        return (model, {"features": feats, "mask": mask}, {"segments": segments, "labels": labels},
                SegmentLoss(SegmentsConfig(), model.cfg.num_classes).cuda(), "batch 2 x 2048 x 2304")
    from detect.models import create_model

    if args.task == "dense":
        from detect.tasks.dense import DenseLoss

        model = create_model("ms-temba", num_classes=51, backend=args.backend,
                             **apply_overrides({}, args.option)).cuda()
        return (model, *dense_batch(2500, g), DenseLoss(aux_weight=0.3), "batch 1 x 1024 x 2500")
    model = create_model("sg-mamba", num_classes=7,
                         **apply_overrides({"backbone": {"backend": args.backend}}, args.option)).cuda()
    inputs, batch = sg_inputs(g, 4, 38, 192)
    return (model, inputs, batch, SegmentLoss(SegmentsConfig(), 7).cuda(),
            "4 windows x 38 valid of 192 steps, 2048-d + 8 x 56 x 56 heatmaps")


def bound(prof, wall: float, steps: int) -> None:
    """Wall time per step against the GPU's busy time (kernels and copies, one stream) and the
    launches: far more wall than GPU time means the host (launches, Python), not the kernels."""
    events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]   # kernels, copies, memsets
    busy = sum(e.self_device_time_total for e in events) / 1000 / steps   # us -> ms
    kernels = len(events) / steps
    print(f"per step: wall {1000 * wall:.1f} ms (profiled), GPU busy {busy:.1f} ms ({100 * busy / (1000 * wall):.0f}%), "
          f"{kernels:.0f} GPU operations")


if __name__ == "__main__":
    main()
