"""Local-window attention: blocks of queries with their window's keys against the ``T x T`` masked
reference (``detect/ops/local_attention.py``), on ActionFormer's shapes.

Per length: batch ``--batch``, 4 heads of 128 channels (THUMOS14's 512), window 19, the last
10% of steps padded; forward alone and forward + backward; bf16 under autocast on CUDA, float32
on the CPU. Prints the largest difference of the two outputs (relative to the reference's
largest value) and their times, median (min-max) of ``--reps`` interleaved rounds of ``--iters``
calls after a warm-up of ``--warmup-s`` seconds, and the ratio within rounds.

    python benchmarks/local_attention_speed.py --lengths 2304,6144
    python benchmarks/local_attention_speed.py --device cpu --lengths 2304 --reps 5 --iters 2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import spread  # noqa: E402

from detect.ops.local_attention import BlockBand, local_attention, local_attention_reference  # noqa: E402

HEADS, DIM, WINDOW = 4, 128, 19


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="2304,6144")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup-s", type=float, default=3.0)
    args = p.parse_args()
    try:
        lengths = [int(n) for n in args.lengths.split(",")]
    except ValueError:
        p.error(f"--lengths takes comma-separated whole numbers, got {args.lengths!r}")
    if min(lengths) < 1 or args.reps < 1 or args.iters < 1 or args.batch < 1:
        p.error("--lengths, --batch, --reps and --iters must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU here (use --device cpu)")
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    band = BlockBand.for_window(WINDOW)                  # as LocalMaskedMHCA makes it
    half = band.half_window
    paths = {"reference": lambda q, k, v, m: local_attention_reference(q, k, v, m, half),
             "blocked": lambda q, k, v, m: local_attention(q, k, v, m, band)}

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    print(f"{torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}; batch {args.batch}, "
          f"{HEADS} heads x {DIM}, window {WINDOW}, {'bf16 autocast' if cuda else 'float32'}; ms per call, "
          f"median (min-max) of {args.reps} interleaved rounds")
    print(f"{'length':>7}{'pass':>10}{'max rel diff':>14}{'reference ms':>26}{'blocked ms':>22}"
          f"{'reference / blocked':>24}")
    for length in lengths:
        g = torch.Generator(device).manual_seed(0)
        q, k, v = (torch.randn(args.batch, HEADS, length, DIM, device=device, generator=g, requires_grad=True)
                   for _ in range(3))
        key_mask = (torch.arange(length, device=device) < length - length // 10)[None].expand(args.batch, -1)
        for backward in (False, True):
            def call(name: str) -> torch.Tensor:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    out = paths[name](q, k, v, key_mask)
                if backward:
                    out.float().sum().backward()
                return out

            with torch.no_grad() if not backward else torch.enable_grad():
                ref, ours = call("reference").float(), call("blocked").float()
                diff = ((ref - ours).abs().max() / ref.abs().max()).item()
                end = time.perf_counter() + args.warmup_s
                while time.perf_counter() < end:
                    call("reference"), call("blocked")
                times = {name: [] for name in paths}
                for _ in range(args.reps):
                    for name in paths:
                        sync()
                        start = time.perf_counter()
                        for _ in range(args.iters):
                            call(name)
                        sync()
                        times[name].append(1000 * (time.perf_counter() - start) / args.iters)
            ratios = [a / b for a, b in zip(times["reference"], times["blocked"])]
            print(f"{length:>7}{'fwd+bwd' if backward else 'fwd':>10}{diff:>14.1e}{spread(times['reference']):>26}"
                  f"{spread(times['blocked']):>22}{spread(ratios):>24}")


if __name__ == "__main__":
    main()
