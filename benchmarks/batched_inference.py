"""Segment inference over a THUMOS-shaped test set, one video per forward and decoded alone (as
``predict`` ran before batching) against batches of videos of similar length decoded together
(``predict`` now: sorted by length, :mod:`detect.tasks.segments.decode`), the same batches
decoded one video at a time, and batches in id order.

212 random videos of 300..6000 steps (2048-d, on the GPU), the forward replayed from CUDA graphs
per length bucket as ``predict`` runs it, then decoding, Soft-NMS and conversion to seconds per
video: videos/s over the whole set. Each variant runs the set once first (graph capture); then
``--reps`` rounds run the variants interleaved. The batched detections are compared with the
one-at-a-time ones (same count, largest score and boundary difference).

    python benchmarks/batched_inference.py --models actionmamba-dbm,actionformer --batch 4
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import _Item, make_model, spread  # noqa: E402

from detect.ops.graphed_forward import GraphedForward  # noqa: E402
from detect.tasks.segments.postprocess import PostprocessConfig  # noqa: E402
from detect.tasks.segments.decode import decode_batch_to_host, decode_to_host  # noqa: E402
from detect.tasks.segments.task import to_seconds  # noqa: E402


@torch.no_grad()
def run_set(model, forward, videos: list[torch.Tensor], order: list[int], batch: int, amp: bool,
            batch_decode: bool = True) -> dict:
    """Detections of every video, ``batch`` videos per forward in ``order``, decoded together as
    ``predict`` decodes them (or with ``batch_decode=False`` one video at a time)."""
    pp, out_all = PostprocessConfig(), {}
    for start in range(0, len(order), batch):
        ids = order[start:start + batch]
        longest = max(videos[i].shape[-1] for i in ids)
        padded = -(-longest // model.length_multiple) * model.length_multiple
        feats = torch.stack([torch.nn.functional.pad(videos[i], (0, padded - videos[i].shape[-1])) for i in ids])
        mask = torch.arange(padded, device="cuda")[None] < torch.tensor([videos[i].shape[-1] for i in ids],
                                                                       device="cuda")[:, None]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = forward(features=feats, mask=mask)
        decoded = decode_batch_to_host(out, pp) if batch_decode else [decode_to_host(out, k, pp) for k in range(len(ids))]
        for i, (segs, scores, labels) in zip(ids, decoded):
            out_all[i] = (to_seconds(segs, _Item(videos[i].shape[-1])), scores, labels)
    return out_all


def compare(a: dict, b: dict) -> str:
    """Segments of ``a`` with a counterpart in ``b`` (same label, boundaries within 0.05 s, score
    within 1e-3: near-tied scores may swap places, so ranks are not compared), and the largest
    score difference between counterparts."""
    matched = total = 0
    worst = 0.0
    for i in a:
        (sa, pa, la), (sb, pb, lb) = a[i], b[i]
        if not len(pa) or not len(pb):
            total += len(pa)
            continue
        close = ((sa[:, None] - sb[None]).abs().amax(-1) < 0.05) & (la[:, None] == lb[None])
        diff = (pa[:, None] - pb[None]).abs()
        hit = close & (diff < 1e-3)
        matched, total = matched + int(hit.any(1).sum()), total + len(pa)
        if hit.any():
            worst = max(worst, float(diff[hit].max()))
    return f"{matched}/{total} segments have a counterpart; largest score difference between them {worst:.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="actionmamba-dbm")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--videos", type=int, default=212)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--precision", default="bf16,fp32")
    args = p.parse_args()
    g = torch.Generator(device="cuda").manual_seed(0)
    lengths = torch.randint(300, 6000, (args.videos,), generator=torch.Generator().manual_seed(0)).tolist()
    videos = [torch.randn(2048, n, device="cuda", generator=g) for n in lengths]
    by_length = sorted(range(len(videos)), key=lambda i: lengths[i])
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.videos} videos of 300..6000 steps, "
          f"batch {args.batch}, {args.reps} interleaved rounds")
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = make_model(name, "cuda").eval()
        for precision in args.precision.split(","):
            amp = precision == "bf16"
            variants = {"one video per forward": (list(range(len(videos))), 1, False),
                        f"batch {args.batch}, id order": (list(range(len(videos))), args.batch, True),
                        f"batch {args.batch}, by length, each video decoded": (by_length, args.batch, False),
                        f"batch {args.batch}, by length": (by_length, args.batch, True)}
            # a graph cache per variant: batch sizes x length buckets would exceed one cache's 32 graphs
            forwards = {v: GraphedForward(model, max_graphs=64) for v in variants}
            first = {v: run_set(model, forwards[v], videos, order, b, amp, d) for v, (order, b, d) in variants.items()}
            rates: dict[str, list[float]] = {v: [] for v in variants}
            for _ in range(args.reps):
                for v, (order, b, d) in variants.items():
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    run_set(model, forwards[v], videos, order, b, amp, d)
                    rates[v].append(len(videos) / (time.perf_counter() - t0))
            base = rates["one video per forward"]
            print(f"\n{name}, {precision}: videos/s, median (min-max); ratio to one video per forward within rounds")
            for v, r in rates.items():
                print(f"  {v:<44}{spread(r):>24}{spread([a / b for a, b in zip(r, base)]):>24}")
            print(f"  by length vs one at a time: {compare(first[f'batch {args.batch}, by length'], first['one video per forward'])}")


if __name__ == "__main__":
    main()
