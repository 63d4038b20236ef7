"""How many operators a detector's eager forward or training step dispatches: the count that
bounds it when launch-bound.

At batch 1 an eager forward on a GPU is bound by kernel launches, not by arithmetic (see
``profile_detector.py``: wall time far above GPU busy time), and so is the eager training step,
so fewer dispatched operators is what makes them faster. This counts the aten operators of one
forward (``--mode forward``: THUMOS14 shape, 1 x 2048 x ``--length``, no padding) or of one
training step as ``detect train`` takes it (``--mode train``: batch 2 x 2048 x ``--length``, at
the default length the second video 78% valid; loss, backward, clipping, fused AdamW, EMA) on any device, the CPU
included, grouped by name, with the lines that dispatch the most (``detect``'s, the optimizer's;
"autograd" for backward formulas). Views (``view``, ``transpose``, ``expand``...) launch no kernel
and are counted apart; so are the ``torch`` backend's reference scan loops (a few fused kernels on
the GPU), which the lines leave out. A proxy, not a timing: the GPU confirms with ``profile_detector.py``.

    python benchmarks/dispatch_count.py --model actionformer
    python benchmarks/dispatch_count.py --model actionmamba-dbm --mode train --sites 30
"""
from __future__ import annotations

import argparse
import sys
import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import make_model  # noqa: E402

VIEWS = {"view", "_unsafe_view", "transpose", "expand", "unsqueeze", "squeeze", "slice", "select", "permute",
         "as_strided", "alias", "detach", "t", "unbind", "split", "chunk", "narrow"}


# where a kernel's call is attributed: our code, then the optimizer and clipping of a training step
SITES = ("/detect/", "/torch/optim/", "/torch/nn/utils/")
REFERENCE_SCAN = "/detect/ops/selective_scan.py"


class DispatchCounter(TorchDispatchMode):
    """Counts dispatched aten operators by name and, for kernels, by the line that called them;
    the reference scan's operators (``scan``) apart."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()
        self.sites: Counter = Counter()
        self.scan = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name not in VIEWS:
            stack = traceback.extract_stack()
            if any(REFERENCE_SCAN in f.filename for f in stack):
                self.scan += 1
                return func(*args, **(kwargs or {}))
            ours = [f for f in stack if any(site in f.filename for site in SITES)]
            where = (f"{ours[-1].filename.rsplit('/', 2)[-2]}/{ours[-1].filename.rsplit('/', 1)[-1]}:{ours[-1].lineno}"
                     if ours else "autograd")
            self.sites[f"{name} {where}"] += 1
        return func(*args, **(kwargs or {}))


def forward_fn(model, length: int, device: str):
    """The eager forward of one unpadded THUMOS14-shaped video, as ``predict`` runs it."""
    model.eval()
    x = torch.randn(1, 2048, length, device=device)
    mask = torch.ones(1, length, dtype=torch.bool, device=device)

    def forward():
        with torch.no_grad():
            model(x, mask)
    return forward


def train_step_fn(model, length: int, device: str):
    """The trainer's eager step on a THUMOS14-shaped batch, with fused AdamW as on the GPU."""
    from segment_bench import segment_step_fn, thumos_train_batch

    feats, mask, segments, labels = thumos_train_batch(torch.Generator(device).manual_seed(0))
    feats, mask = feats[..., :length].contiguous(), mask[:, :length].contiguous()
    return segment_step_fn(model.train(), feats, mask, segments, labels, amp=False, fused=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="actionformer")
    p.add_argument("--mode", choices=("forward", "train"), default="forward")
    p.add_argument("--backend", default="torch", help="Mamba backend (torch runs anywhere)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--length", type=int, default=2304)
    p.add_argument("--sites", type=int, default=10, help="how many calling lines to list")
    args = p.parse_args()
    from extract.registry import RegistryError

    try:
        model = make_model(args.model, args.backend, device=args.device).eval()
    except (RegistryError, ValueError) as exc:
        raise SystemExit(f"dispatch_count: {exc}") from None
    run = (forward_fn if args.mode == "forward" else train_step_fn)(model, args.length, args.device)
    run()  # lazily built state (and the optimizer's) outside the count
    with DispatchCounter() as counter:
        run()
    kernels = {k: v for k, v in counter.ops.items() if k not in VIEWS}
    shape, unit = ("1", "forward") if args.mode == "forward" else ("2", "training step")
    print(f"{args.model} ({args.backend}), {shape} x 2048 x {args.length}, torch {torch.__version__}: "
          f"{sum(counter.ops.values())} operators per {unit}, {sum(kernels.values())} of them not views"
          + (f", {counter.scan} of those inside the reference scan" if counter.scan else ""))
    print("  ".join(f"{k} {v}" for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])))
    print("\nlines that dispatch the most non-view operators:")
    for site, n in counter.sites.most_common(args.sites):
        print(f"{n:6d}  {site}")


if __name__ == "__main__":
    main()
