"""What a training forward keeps alive for its backward pass, module by module.

Runs one training forward and loss (batch 2 x 2048 x 2304, as the side-by-side training runs)
under ``torch.autograd.graph.saved_tensors_hooks`` and counts every tensor autograd saves, once
per storage (views of one buffer count once), outside the parameters; each storage goes to the
innermost module running when it was first saved. Prints the modules (instance indices folded,
so ``backbone.branch.*.mamba`` sums the five branch blocks) with the most saved bytes, and the
total. On CUDA it also prints the peak memory of the forward and of forward + backward.

    python benchmarks/saved_tensors.py --model actionmamba-dbm --device cpu --backend torch
    python benchmarks/saved_tensors.py --model actionmamba-dbm,actionmamba-dbm:recompute=false \\
        --device cpu --backend torch
    python benchmarks/saved_tensors.py --model actionmamba-dbm --precision bf16       # CUDA, cuda backend
    python benchmarks/saved_tensors.py --actionformer-root AF --model actionformer     # the official one beside

On the CPU the scan runs the ``torch`` backend, which saves other tensors than the CUDA kernels;
everything outside the scan is what a GPU run saves in fp32.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from compare_actionformer import build_official  # noqa: E402
from segment_bench import make_model, thumos_train_batch  # noqa: E402

from detect.config import apply_overrides  # noqa: E402
from detect.errors import DetectError  # noqa: E402
from detect.tasks.segments.config import SegmentsConfig  # noqa: E402
from detect.tasks.segments.task import SegmentLoss  # noqa: E402


class SavedTensorCensus:
    """Bytes of the storages autograd saves, per innermost running module."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {m: re.sub(r"\.\d+(?=\.|$)", ".*", n) or "(model)" for n, m in model.named_modules()}
        self.resident = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.stack: list[str] = []
        self.bytes: dict[str, int] = defaultdict(int)
        self.seen: set[int] = set()

    def __enter__(self):
        def push(module, _):
            self.stack.append(self.names.get(module, type(module).__name__))

        def pop(*_):
            self.stack.pop()

        self.handles = [nn.modules.module.register_module_forward_pre_hook(push),
                        nn.modules.module.register_module_forward_hook(pop)]
        self.saving = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)
        self.saving.__enter__()
        return self

    def __exit__(self, *exc):
        self.saving.__exit__(*exc)
        for h in self.handles:
            h.remove()

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key not in self.resident and key not in self.seen:
            self.seen.add(key)
            self.bytes[self.stack[-1] if self.stack else "(loss and outside modules)"] += storage.nbytes()
        return t


def census(name: str, model: nn.Module, forward, rows: int, device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    with SavedTensorCensus(model) as c:
        loss = forward()
    total = sum(c.bytes.values())
    print(f"\n{name}: {total / 2**20:.0f} MiB saved for backward in {len(c.seen)} storages")
    for module, size in sorted(c.bytes.items(), key=lambda kv: -kv[1])[:rows]:
        print(f"  {size / 2**20:>9.1f} MiB  {100 * size / total:>5.1f}%  {module}")
    if device == "cuda":
        fwd_peak = torch.cuda.max_memory_allocated() - before
        loss.backward()
        torch.cuda.synchronize()
        print(f"  CUDA peak above resident: forward {fwd_peak / 2**30:.2f} GiB, "
              f"forward + backward {(torch.cuda.max_memory_allocated() - before) / 2**30:.2f} GiB")
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="actionmamba-dbm",
                   help="comma-separated registry names, each name[:backbone_key=value...]")
    p.add_argument("--backend", default=None, help="cuda, triton or torch (default: cuda on CUDA, torch on the CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=("bf16", "fp32"))
    p.add_argument("--actionformer-root", type=Path, default=None, help="also count the official ActionFormer")
    p.add_argument("--rows", type=int, default=15)
    args = p.parse_args()
    backend = args.backend or ("cuda" if args.device == "cuda" else "torch")
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.precision == "bf16")
    torch.manual_seed(0)
    feats, mask, segments, labels = thumos_train_batch(torch.Generator(device=args.device).manual_seed(0))
    print(f"{args.device}, torch {torch.__version__}, {args.precision}, batch 2 x 2048 x 2304")
    if args.actionformer_root:
        official = build_official(args.actionformer_root, args.device).train()
        videos = [{"feats": feats[i, :, :n], "segments": segments[i], "labels": labels[i]}
                  for i, n in enumerate(mask.sum(1).tolist())]

        def official_forward():
            with autocast:
                return official(videos)["final_loss"]
        census("official ActionFormer", official, official_forward, args.rows, args.device)
        del official
    for entry in args.model.split(","):
        name, *options = entry.split(":")
        try:
            model = make_model(name, backend, args.device, **apply_overrides({}, options)).train()
        except (DetectError, KeyError, TypeError, ValueError) as err:  # an unknown model, option or value: one line
            raise SystemExit(f"--model {entry}: {err}") from None
        criterion = SegmentLoss(SegmentsConfig(), model.cfg.num_classes).to(args.device)

        def forward():
            with autocast:
                return criterion(model(feats, mask), {"segments": segments, "labels": labels})["final_loss"]
        census(f"ours {entry} ({backend})", model, forward, args.rows, args.device)


if __name__ == "__main__":
    main()
