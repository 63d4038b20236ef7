"""The training step replayed from a CUDA graph (``optim.cuda_graph``) against the eager step:
the same model, batches and schedule from the same state, in fp32 and bf16.

Runs the eager step twice (how far two eager runs already differ: atomics in some backward
kernels are not deterministic) and the graphed step once, ``--steps`` steps each over different
batches (with a learning-rate change every step, as the schedule does), and prints the largest
relative difference of the losses and of the final weights, EMA weights and AdamW moments.

    python benchmarks/graphed_step_check.py --steps 8
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import make_model  # noqa: E402

from detect.engine.ema import ModelEma  # noqa: E402
from detect.engine.graphed_step import GraphedStep, graph_ready_optimizer, keep_lr_tensors  # noqa: E402
from detect.engine.optim import param_groups  # noqa: E402
from detect.tasks.segments.config import SegmentsConfig  # noqa: E402
from detect.tasks.segments.task import SegmentLoss  # noqa: E402


def batches(n: int) -> list[dict]:
    g = torch.Generator(device="cuda").manual_seed(1)
    out = []
    for k in range(n):
        feats = torch.randn(2, 2048, 2304, device="cuda", generator=g)
        mask = torch.ones(2, 2304, dtype=torch.bool, device="cuda")
        mask[1, 1500 + 50 * k:] = False
        starts = torch.rand(2, 3, device="cuda", generator=g) * 1400
        segments = [torch.stack([s, s + 20 + 60 * k], 1) for s in starts]
        labels = [torch.randint(0, 20, (3,), device="cuda", generator=g) for _ in range(2)]
        out.append({"inputs": {"features": feats, "mask": mask}, "segments": segments, "labels": labels})
    return out


def run(model, data, amp: bool, graph: bool):
    model = copy.deepcopy(model).train()
    criterion = SegmentLoss(SegmentsConfig(), 20).cuda().train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4, fused=True)
    ema = ModelEma(model, 0.999)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    losses = []
    if graph:
        graph_ready_optimizer(opt, torch.device("cuda"))
        lrs = [g["lr"] for g in opt.param_groups]
        stepper = GraphedStep(model, criterion, opt, ema, 1.0, amp)
    for batch in data:
        if graph:
            out, _ = stepper.step(batch["inputs"], batch)
            losses.append(out["final_loss"].item())
            sched.step()
            keep_lr_tensors(opt, lrs)
            continue
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = criterion(model(**batch["inputs"]), batch)
        out["final_loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.update(model)
        losses.append(out["final_loss"].item())
    moments = [v for s in opt.state.values() for k, v in s.items() if k in ("exp_avg", "exp_avg_sq")]
    return losses, [*model.state_dict().values()], [*ema.module.state_dict().values()], moments


def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    num = sum(float((x.double() - y.double()).norm() ** 2) for x, y in zip(a, b) if x.is_floating_point())
    den = sum(float(y.double().norm() ** 2) for y in b if y.is_floating_point())
    return (num / den) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--model", default="actionmamba-dbm")
    args = p.parse_args()
    torch.manual_seed(0)
    model = make_model(args.model, "cuda", drop_path=0.0)
    data = batches(args.steps)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}: {args.model}, {args.steps} steps, "
          "relative L2 differences")
    print(f"{'precision':<10}{'pair':<18}{'losses':>12}{'weights':>12}{'EMA':>12}{'AdamW moments':>15}")
    for precision in ("fp32", "bf16"):
        amp = precision == "bf16"
        eager = run(model, data, amp, graph=False)
        again = run(model, data, amp, graph=False)
        graphed = run(model, data, amp, graph=True)
        for pair, other in (("eager vs eager", again), ("graph vs eager", graphed)):
            loss = max(abs(a - b) / abs(b) for a, b in zip(other[0], eager[0]))
            print(f"{precision:<10}{pair:<18}{loss:>12.1e}{rel(other[1], eager[1]):>12.1e}"
                  f"{rel(other[2], eager[2]):>12.1e}{rel(other[3], eager[3]):>15.1e}")
        print(f"{'':<10}losses eager {[round(x, 4) for x in eager[0]]}")


if __name__ == "__main__":
    main()
