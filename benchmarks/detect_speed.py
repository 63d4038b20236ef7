"""Detector speed, per model and backend.

Segments (``--task segments``, THUMOS14-shaped): training at batch 2 x 2048-d x 2304 steps, 6
pyramid levels, d 512, bf16 autocast, AdamW step included: iterations/s and peak GPU memory.
Inference: a 212-video test set with THUMOS-like lengths (300..6000 steps, batch 1, as
ActionFormer evaluates), the forward replayed from CUDA graphs as ``predict`` runs it, decoding,
Soft-NMS and conversion to seconds: ms per video. Every contestant first runs each video once
(graph capture) and trains for ``--warmup-s``; then ``--reps`` rounds run them interleaved.

Dense (``--task dense``, MS-Temba on TSU-shaped inputs, 1024-d I3D, 51 classes): the trainer's
step (fused AdamW, clipping, EMA; ``BACKEND+graph``: replayed from a CUDA graph) in steps/s and
peak memory at batch 1 x 2500 steps (the public TSU recipe), inference ms/video at 2500 steps,
and with ``--lengths`` the peak memory of inference and of an eager training step at 1k, 5k, 20k
and 50k steps (whole videos: the public code pads to 2500 and truncates longer test videos).
Medians (min-max) of ``--reps`` interleaved rounds after a warm-up.

    python benchmarks/detect_speed.py                      # all detectors, cuda and torch backends
    python benchmarks/detect_speed.py --models actionmamba-dbm --backends cuda
    python benchmarks/detect_speed.py --task dense --backends cuda,cuda+graph --reps 5 --lengths
    python benchmarks/detect_speed.py --task sgmamba --reps 3
    python benchmarks/detect_speed.py --task msf --reps 3

MSF-Mamba (``--task msf``): recognition inference ms/clip (batch 8) and training clips/s (batch 8,
random resized crop and flip on the GPU, AdamW) at 16 x 224 x 224, bf16 autocast, for T, S, T+
and S+ beside the VideoMamba-equivalent models without MCFM (``msf: null``), with parameters.

SG-Mamba (``--task sgmamba``): stage-2 training steps/s, peak memory and parameters with the
down-projection (512) and at full width, at SG-Mamba's stage-2 shape (batch 4 windows of 38
valid steps padded to 192, 2048-d features, 8 x 56 x 56 heatmaps per step, bf16 autocast, AdamW);
and the cascade's inference videos/s: per 64 s clip (637 steps), stage 1 (one-class DBM) with
decoding, then stage 2 on two 4 s windows with decoding.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from detect.models import create_model
from detect.ops.graphed_forward import GraphedForward
from segment_bench import (make_model, segment_step_fn, spread, thumos_train_batch, timed_detections, timed_steps,
                           training_step_fn)


def dense_batch(length: int, g: torch.Generator) -> tuple[dict, dict]:
    """``(inputs, batch)`` of one TSU-shaped video, as the dense task's loader gives them."""
    feats = torch.randn(1, 1024, length, device="cuda", generator=g)
    frames = (torch.rand(1, length, 51, device="cuda", generator=g) < 0.05).float()
    mask = torch.ones(1, length, dtype=torch.bool, device="cuda")
    return {"features": feats, "mask": mask}, {"inputs": {"mask": mask}, "frames": frames}


def timed(fn, iters: int) -> float:
    """Seconds per call of ``fn`` (synchronised)."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def peak_gib(fn) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2 ** 30


def dense_main(args) -> None:
    from detect.tasks.dense import DenseLoss

    g = torch.Generator(device="cuda").manual_seed(0)
    contestants = args.backends.split(",")   # a backend, "+graph": the step replayed from a CUDA graph
    criterion = DenseLoss(aux_weight=0.3)
    inputs, batch = dense_batch(2500, g)
    models, steps = {}, {}
    for name in contestants:
        torch.manual_seed(0)
        models[name] = create_model("ms-temba", num_classes=51, backend=name.split("+")[0]).cuda()
        steps[name] = training_step_fn(models[name].train(), criterion, inputs, batch, amp=True,
                                       graph=name.endswith("+graph"))
    first = contestants[0]
    for name in contestants[1:]:  # same weights: the backends must agree (fp32) before their speeds are compared
        with torch.no_grad():
            ref = models[first].eval()(**inputs).logits
            err = ((models[name].eval()(**inputs).logits - ref).norm() / ref.norm()).item()
        print(f"fp32 logits, {name} vs {first}: relative error {err:.2e}")
    for name in contestants:  # warm-up: capture, compilation, autotuning, clocks
        models[name].train()
        for _ in range(args.warmup):
            steps[name]()
    train = {name: [] for name in contestants}
    infer = {name: [] for name in contestants}
    for _ in range(args.reps):  # interleaved rounds
        for name in contestants:
            model = models[name].train()
            train[name].append(timed_steps(steps[name], args.iters))
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                infer[name].append(1000 * timed(lambda: model(**inputs).logits.float().cpu(), args.iters))
    rows = []
    for name in contestants:
        its = [r[0] for r in train[name]]
        rows.append({"contestant": name, "params_m": sum(q.numel() for q in models[name].parameters()) / 1e6,
                     "train_it_s": its, "train_vs_first": [a[0] / b[0] for a, b in zip(train[name], train[first])],
                     "train_peak_gib_2500": statistics.median(r[1] for r in train[name]),
                     "infer_ms": infer[name]})
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; ms-temba (I3D 1024-d, 51 classes), bf16 "
          f"autocast, the trainer's step (fused AdamW, clipping, EMA); median (min-max) of {args.reps} "
          f"interleaved rounds of {args.iters} steps; ratios to {first} within each round")
    print(f"{'contestant':<14}{'params M':>9}{'train it/s @2500':>24}{'vs ' + first:>20}{'infer ms @2500':>22}"
          f"{'train GiB @2500':>16}")
    for r in rows:
        print(f"{r['contestant']:<14}{r['params_m']:>9.2f}{spread(r['train_it_s']):>24}"
              f"{spread(r['train_vs_first']):>20}{spread(r['infer_ms']):>22}{r['train_peak_gib_2500']:>16.2f}")
    eager = [name for name in contestants if "+" not in name]
    if args.lengths and eager:
        print(f"\npeak GiB by video length (batch 1, eager)\n{'backend':<9}{'mode':<7}"
              + "".join(f"{n:>10}" for n in LENGTHS) + f"{'GiB per 10k steps':>19}")
    for name in eager if args.lengths else []:
        model, row = models[name], next(r for r in rows if r["contestant"] == name)
        for length in LENGTHS:
            long_inputs, long_batch = dense_batch(length, g)
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                row[f"infer_gib_{length}"] = peak_gib(lambda: model(**long_inputs).logits.float().cpu())
            model.train()
            row[f"train_gib_{length}"] = peak_gib(training_step_fn(model, criterion, long_inputs, long_batch, True))
        for mode in ("infer", "train"):
            gib = [row[f"{mode}_gib_{n}"] for n in LENGTHS]
            slope = (gib[-1] - gib[1]) / 4.5  # 5k -> 50k
            print(f"{name:<9}{mode:<7}" + "".join(f"{v:>10.3f}" for v in gib) + f"{slope:>19.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


LENGTHS = (1000, 5000, 20000, 50000)


def sg_inputs(g: torch.Generator, batch: int, valid: int, length: int):
    feats = torch.randn(batch, 2048, length, device="cuda", generator=g)
    heat = torch.rand(batch, length, 8, 56, 56, device="cuda", generator=g)
    mask = (torch.arange(length, device="cuda") < valid)[None].expand(batch, -1).contiguous()
    segments = [torch.tensor([[5.0, 15.0], [20.0, 30.0]], device="cuda")] * batch
    labels = [torch.tensor([1, 4], device="cuda")] * batch
    # the batch as a loader gives it: targets, and the inputs' host copies (what a graphed step checks)
    return ({"mask": mask, "features": feats, "heatmaps": heat},
            {"segments": segments, "labels": labels, "inputs": {"mask": mask.cpu()}})


def sgmamba_main(args) -> None:
    from detect.tasks.segments.config import SegmentsConfig
    from detect.tasks.segments.task import SegmentLoss

    g = torch.Generator(device="cuda").manual_seed(0)
    variants = {"down 512": {}, "full 2048": {"down_dim": None}}
    models, opts, losses = {}, {}, {}
    for name, extra in variants.items():
        torch.manual_seed(0)
        models[name] = create_model("sg-mamba", num_classes=7, **extra).cuda()
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-4)
        losses[name] = SegmentLoss(SegmentsConfig(), models[name].cfg.num_classes).cuda()
    inputs, targets = sg_inputs(g, 4, 38, 192)

    def step(name):
        opts[name].zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = losses[name](models[name](**inputs), targets)["final_loss"]
        loss.backward()
        opts[name].step()

    for name in variants:
        models[name].train()
        for _ in range(args.warmup):
            step(name)
    speed = {name: [] for name in variants}
    for _ in range(args.reps):
        for name in variants:
            speed[name].append(1 / timed(lambda: step(name), args.iters))
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; sg-mamba stage 2, batch 4 x 38 valid of 192 "
          f"steps, bf16; median (min-max) of {args.reps} interleaved repetitions of {args.iters} steps")
    print(f"{'variant':<11}{'params M':>10}{'CCM M':>8}{'train it/s':>24}{'peak GiB':>10}")
    rows = []
    for name in variants:
        model = models[name]
        gib = peak_gib(lambda: step(name))
        n = sum(p.numel() for p in model.parameters()) / 1e6
        ccm = sum(p.numel() for p in model.ccm.parameters()) / 1e6
        rows.append({"variant": name, "params_m": n, "ccm_m": ccm, "train_it_s": speed[name], "peak_gib": gib})
        print(f"{name:<11}{n:>10.1f}{ccm:>8.1f}{spread(speed[name]):>24}{gib:>10.2f}")
    # the cascade, per video: stage 1 on the clip, stage 2 on two windows
    from detect.tasks.segments.postprocess import PostprocessConfig
    from detect.tasks.segments.decode import decode_video

    stage1 = create_model("actionmamba-dbm", num_classes=1).cuda().eval()
    stage2 = models["down 512"].eval()
    clip = torch.randn(1, 2048, 640, device="cuda", generator=g)
    clip_mask = torch.arange(640, device="cuda")[None] < 637
    windows, _ = sg_inputs(g, 2, 38, 48)

    @torch.no_grad()
    def video():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out1 = stage1(clip, clip_mask)
            decode_video(out1, 0, PostprocessConfig())
            out2 = stage2(**windows)
            for i in range(2):
                segs = decode_video(out2, i, PostprocessConfig())[0]
        segs.cpu()

    for _ in range(5):
        video()
    per_video = [timed(video, args.iters) for _ in range(args.reps)]
    rates = [1 / t for t in per_video]
    print(f"\ncascade inference (stage 1 + 2 windows of stage 2, decoding included): {spread(rates)} videos/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"stage2": rows, "cascade_videos_s": rates}, fh, indent=2)


def msf_main(args) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    variants = {"VideoMamba-T (no MCFM)": ("msf-mamba-t", {"msf": None}), "MSF-Mamba-T": ("msf-mamba-t", {}),
                "MSF-Mamba-T+": ("msf-mamba-t+", {}), "VideoMamba-S (no MCFM)": ("msf-mamba-s", {"msf": None}),
                "MSF-Mamba-S": ("msf-mamba-s", {}), "MSF-Mamba-S+": ("msf-mamba-s+", {})}
    frames = torch.randint(0, 256, (8, 16, 224, 224, 3), dtype=torch.uint8, device="cuda", generator=g)
    labels = torch.randint(0, 17, (8,), device="cuda", generator=g)
    models = {n: create_model(name, num_classes=17, **extra).cuda() for n, (name, extra) in variants.items()}
    opts = {n: torch.optim.AdamW(m.parameters(), lr=1e-4) for n, m in models.items()}

    def step(n):
        models[n].train()
        opts[n].zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(models[n](frames).logits.float(), labels)
        loss.backward()
        opts[n].step()

    @torch.no_grad()
    def infer(n):
        models[n].eval()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            models[n](frames).logits.float().cpu()

    for n in variants:
        for _ in range(args.warmup):
            step(n)
            infer(n)
    train_rate, infer_ms = {n: [] for n in variants}, {n: [] for n in variants}
    for _ in range(args.reps):
        for n in variants:
            train_rate[n].append(8 / timed(lambda: step(n), args.iters))
            infer_ms[n].append(1000 * timed(lambda: infer(n), args.iters) / 8)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; 16 x 224 x 224 clips, batch 8, bf16; "
          f"median (min-max) of {args.reps} interleaved repetitions of {args.iters} steps")
    print(f"{'model':<24}{'params M':>9}{'train clips/s':>24}{'infer ms/clip':>24}{'peak GiB (train)':>18}")
    rows = []
    for n in variants:
        gib = peak_gib(lambda: step(n))
        p = sum(q.numel() for q in models[n].parameters()) / 1e6
        rows.append({"model": n, "params_m": p, "train_clips_s": train_rate[n], "infer_ms": infer_ms[n], "peak_gib": gib})
        print(f"{n:<24}{p:>9.2f}{spread(train_rate[n]):>24}{spread(infer_ms[n]):>24}{gib:>18.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("segments", "dense", "sgmamba", "msf"), default="segments")
    p.add_argument("--models", default="actionformer,actionmamba-vim,actionmamba-dbm", help="segments: detectors")
    p.add_argument("--backends", default="cuda,torch",
                   help="scan backends; dense: also BACKEND+graph (the step replayed from a CUDA graph)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--warmup", type=int, default=30, help="dense: warm-up training steps per backend")
    p.add_argument("--warmup-s", type=float, default=10.0, help="segments: warm-up seconds per contestant")
    p.add_argument("--videos", type=int, default=212)
    p.add_argument("--lengths", action="store_true", help="dense: also peak memory at 1k..50k steps")
    p.add_argument("--json", help="write the rows here too")
    args = p.parse_args()
    if args.task != "segments":
        {"dense": dense_main, "sgmamba": sgmamba_main, "msf": msf_main}[args.task](args)
        return
    segments_main(args)


def segments_main(args) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    feats, mask, segments, labels = thumos_train_batch(g)
    lengths = torch.randint(300, 6000, (args.videos,), generator=torch.Generator().manual_seed(0)).tolist()
    videos = [torch.randn(2048, n, device="cuda", generator=g) for n in lengths]
    models, steps, forwards = {}, {}, {}
    for name in args.models.split(","):
        for backend in (args.backends.split(",") if "mamba" in name else ["-"]):
            torch.manual_seed(0)
            key = name if backend == "-" else f"{name}@{backend}"
            models[key] = make_model(name, backend if backend != "-" else "torch")
            steps[key] = segment_step_fn(models[key], feats, mask, segments, labels, amp=True)
            forwards[key] = GraphedForward(models[key])
    for key, model in models.items():  # captures every length bucket's graph, then clocks settle
        model.eval()
        for x in videos:
            timed_detections(model, forwards[key], x, amp=True)
        model.train()
        end = time.perf_counter() + args.warmup_s
        while time.perf_counter() < end:
            steps[key]()
    train = {key: [] for key in models}
    infer = {key: [] for key in models}
    for _ in range(args.reps):
        for key, model in models.items():
            train[key].append(timed_steps(steps[key], args.iters))
            model.eval()
            infer[key].append(statistics.mean(sum(timed_detections(model, forwards[key], x, amp=True)[0][:2])
                                              for x in videos))
            model.train()
    base = next(iter(models))
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; train: batch 2 x 2048 x 2304, bf16; "
          f"inference: {args.videos} videos, batch 1, graph-replayed forward, decoding and Soft-NMS; "
          f"median (min-max) of {args.reps} interleaved rounds after {args.warmup_s:.0f} s warm-up each; "
          f"ratios to {base} within each round")
    print(f"{'model':<26}{'params M':>9}{'train it/s':>20}{'vs ' + base[:12]:>18}{'peak GiB':>10}"
          f"{'infer ms/video':>20}{'vs ' + base[:12]:>18}")
    rows = []
    for key, model in models.items():
        its, gib = [r[0] for r in train[key]], [r[1] for r in train[key]]
        row = {"model": key, "params_m": sum(q.numel() for q in model.parameters()) / 1e6,
               "train_it_s": its, "peak_gib": statistics.median(gib), "infer_ms_per_video": infer[key],
               "train_vs_base": [a[0] / b[0] for a, b in zip(train[key], train[base])],
               "infer_vs_base": [a / b for a, b in zip(infer[key], infer[base])]}
        rows.append(row)
        print(f"{key:<26}{row['params_m']:>9.1f}{spread(its):>20}{spread(row['train_vs_base']):>18}"
              f"{row['peak_gib']:>10.2f}{spread(infer[key]):>20}{spread(row['infer_vs_base']):>18}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)

if __name__ == "__main__":
    main()
