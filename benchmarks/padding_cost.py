"""What exact padding costs: training and inference speed of the detectors with every masked
conv zeroing its input (ours) against the leaky variant that only masks its output (the
official ActionFormer code's), interleaved in one run on THUMOS14-shaped inputs.

Each repetition times both variants back to back (order alternating); the table gives medians
with min-max over the repetitions and the ratio exact / leaky of the medians.

    python benchmarks/padding_cost.py --reps 5 --iters 20
"""
from __future__ import annotations

import argparse
import statistics

import torch

from detect.layers import masked as layers
from segment_bench import make_model, segment_step_fn, spread, thumos_train_batch, timed_detections, timed_steps

EXACT = layers.MaskedConv1D.forward


def leaky_forward(self, x, mask, zeroed=False):
    out_mask = layers.downsample_mask(mask, self.stride)
    return self.conv(x) * out_mask.to(x.dtype), out_mask


def timed(model, step, variant: str, iters: int, videos: list[torch.Tensor]) -> tuple[float, float]:
    """``(train it/s, inference ms/video)``; the plain forward (a captured graph would not see the
    variant)."""
    layers.MaskedConv1D.forward = EXACT if variant == "exact" else leaky_forward
    try:
        its, _ = timed_steps(step, iters)
        model.eval()
        ms = statistics.mean(sum(timed_detections(model, model, x, amp=True)[0][:2]) for x in videos)
        model.train()
        return its, ms
    finally:
        layers.MaskedConv1D.forward = EXACT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="actionformer,actionmamba-dbm")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--videos", type=int, default=40)
    p.add_argument("--warmup", type=int, default=60, help="training iterations before timing (GPU clocks settle)")
    args = p.parse_args()
    g = torch.Generator(device="cuda").manual_seed(0)
    batch = thumos_train_batch(g)
    lengths = torch.randint(300, 6000, (args.videos,), generator=torch.Generator().manual_seed(0)).tolist()
    videos = [torch.randn(2048, n, device="cuda", generator=g) for n in lengths]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; train batch 2 x 2048 x 2304 bf16; "
          f"inference {args.videos} videos; {args.reps} interleaved repetitions, medians (min-max)")
    print(f"{'model':<17}{'train it/s exact':>22}{'leaky':>22}{'ratio':>8}  {'infer ms exact':>24}{'leaky':>24}{'ratio':>8}")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = make_model(name, "cuda").train()
        step = segment_step_fn(model, *batch, amp=True)
        timed_steps(step, args.warmup)
        runs = {"exact": [], "leaky": []}
        for rep in range(args.reps):
            for variant in (("exact", "leaky") if rep % 2 == 0 else ("leaky", "exact")):
                runs[variant].append(timed(model, step, variant, args.iters, videos))
        its = {v: [r[0] for r in runs[v]] for v in runs}
        ms = {v: [r[1] for r in runs[v]] for v in runs}
        print(f"{name:<17}{spread(its['exact']):>22}{spread(its['leaky']):>22}"
              f"{statistics.median(its['exact']) / statistics.median(its['leaky']):>8.3f}  "
              f"{spread(ms['exact']):>24}{spread(ms['leaky']):>24}"
              f"{statistics.median(ms['exact']) / statistics.median(ms['leaky']):>8.3f}")
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
