"""How many operators a detector's eager forward dispatches: the count that bounds it when launch-bound.

At batch 1 an eager forward on a GPU is bound by kernel launches, not by arithmetic (see
``profile_detector.py``: wall time far above GPU busy time), so fewer dispatched operators is
what makes it faster. This counts the aten operators of one forward (THUMOS14 shape, 2048 x
``--length``, no padding) on any device, the CPU included, grouped by name, with the lines of
``detect`` that dispatch the most. Views (``view``, ``transpose``, ``expand``...) launch no
kernel and are counted apart. A proxy, not a timing: the GPU confirms with ``profile_detector.py``.

    python benchmarks/dispatch_count.py --model actionformer
    python benchmarks/dispatch_count.py --model actionmamba-dbm --backend torch --sites 20
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


class DispatchCounter(TorchDispatchMode):
    """Counts dispatched aten operators by name and, for kernels, by the ``detect`` line that called them."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()
        self.sites: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name not in VIEWS:
            ours = [f for f in traceback.extract_stack() if "/detect/" in f.filename]
            if ours:
                self.sites[f"{name} {ours[-1].filename.split('detect/', 1)[-1]}:{ours[-1].lineno}"] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="actionformer")
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
    x = torch.randn(1, 2048, args.length, device=args.device)
    mask = torch.ones(1, args.length, dtype=torch.bool, device=args.device)
    with torch.no_grad():
        model(x, mask)  # lazily built state outside the count
        with DispatchCounter() as counter:
            model(x, mask)
    kernels = {k: v for k, v in counter.ops.items() if k not in VIEWS}
    print(f"{args.model} ({args.backend}), 1 x 2048 x {args.length}, torch {torch.__version__}: "
          f"{sum(counter.ops.values())} operators per forward, {sum(kernels.values())} of them not views")
    print("  ".join(f"{k} {v}" for k, v in sorted(kernels.items(), key=lambda kv: -kv[1])))
    print("\nlines of detect that dispatch the most non-view operators:")
    for site, n in counter.sites.most_common(args.sites):
        print(f"{n:6d}  {site}")


if __name__ == "__main__":
    main()
