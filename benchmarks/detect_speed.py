"""Detector speed, per model and backend.

Segments (``--task segments``, THUMOS14-shaped): training at batch 2 x 2048-d x 2304 steps, 6
pyramid levels, d 512, bf16 autocast, AdamW step included: iterations/s and peak GPU memory.
Inference: a 212-video test set with THUMOS-like lengths (300..6000 steps, batch 1, as
ActionFormer evaluates), including decoding and Soft-NMS: ms per video.

Dense (``--task dense``, MS-Temba on TSU-shaped inputs, 1024-d I3D, 51 classes): training steps/s
and peak memory at batch 1 x 2500 steps (the public TSU recipe), inference ms/video at 2500
steps, and peak memory of inference and of a training step at 1k, 5k, 20k and 50k steps (whole
videos: the public code pads to 2500 and truncates longer test videos). Medians (min-max) of
``--reps`` interleaved repetitions after a warm-up.

    python benchmarks/detect_speed.py                      # all detectors, cuda and torch backends
    python benchmarks/detect_speed.py --models actionmamba-dbm --backends cuda
    python benchmarks/detect_speed.py --task dense --reps 3
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
from detect.models.detector import ActionDetector
from detect.ops.graphs import clear_graphs
from detect.tasks.segments import SegmentLoss, decode_video


def make_model(name: str, backend: str) -> ActionDetector:
    backbone = {"input_dim": 2048, "embd_dim": 512, **({"backend": backend} if "mamba" in name else {})}
    return create_model(name, num_classes=20, head_dim=512, backbone=backbone).cuda()


def thumos_train_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, list, list]:
    """``(features, mask, segments, labels)``: batch 2 x 2048 x 2304, the second video 1800 steps."""
    feats = torch.randn(2, 2048, 2304, device="cuda", generator=g)
    mask = torch.ones(2, 2304, dtype=torch.bool, device="cuda")
    mask[1, 1800:] = False
    segments = [torch.tensor([[100.0, 180.0], [900.0, 1000.0]], device="cuda"), torch.tensor([[40.0, 60.0]], device="cuda")]
    labels = [torch.tensor([3, 7], device="cuda"), torch.tensor([1], device="cuda")]
    return feats, mask, segments, labels


def train_speed(model: ActionDetector, iters: int, g: torch.Generator) -> tuple[float, float]:
    feats, mask, segments, labels = thumos_train_batch(g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    criterion = SegmentLoss(model.cfg).cuda()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = criterion(model(feats, mask), {"segments": segments, "labels": labels})["final_loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    return iters / (time.perf_counter() - start), torch.cuda.max_memory_allocated() / 2 ** 30


@torch.no_grad()
def infer_speed(model: ActionDetector, videos: int, g: torch.Generator) -> float:
    model.eval()
    pp = model.cfg.postprocess
    lengths = torch.randint(300, 6000, (videos,), generator=torch.Generator().manual_seed(0)).tolist()
    inputs = [torch.randn(1, 2048, -(-n // 32) * 32, device="cuda", generator=g) for n in lengths[:4]]
    for x in inputs:  # warm-up
        decode_video(model(x, torch.ones(1, x.shape[-1], dtype=torch.bool, device="cuda")), 0, pp)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for n in lengths:
        padded = -(-n // model.length_multiple) * model.length_multiple
        x = torch.randn(1, 2048, padded, device="cuda", generator=g)
        mask = torch.arange(padded, device="cuda")[None] < n
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x, mask)
        segs, scores, labels = decode_video(out, 0, pp)
        segs.cpu()
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / videos


def dense_batch(length: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
    feats = torch.randn(1, 1024, length, device="cuda", generator=g)
    frames = (torch.rand(1, length, 51, device="cuda", generator=g) < 0.05).float()
    mask = torch.ones(1, length, dtype=torch.bool, device="cuda")
    return feats, mask, {"inputs": {"mask": mask}, "frames": frames}


def dense_step(model, criterion, opt, batch) -> None:
    feats, mask, targets = batch
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = criterion(model(feats, mask), targets)["final_loss"]
    loss.backward()
    opt.step()


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
    backends = args.backends.split(",")
    models, opts = {}, {}
    for backend in backends:
        torch.manual_seed(0)
        models[backend] = create_model("ms-temba", num_classes=51, backend=backend).cuda()
        opts[backend] = torch.optim.AdamW(models[backend].parameters(), lr=1e-4)
    criterion = DenseLoss(aux_weight=0.3)
    batch = dense_batch(2500, g)
    if len(backends) > 1:  # same weights: the backends must agree (fp32) before their speeds are compared
        for backend in backends[1:]:
            models[backend].load_state_dict(models[backends[0]].state_dict())
        with torch.no_grad():
            outs = {b: models[b].eval()(batch[0], batch[1]).logits for b in backends}
        ref = outs[backends[0]]
        for backend in backends[1:]:
            err = ((outs[backend] - ref).norm() / ref.norm()).item()
            print(f"fp32 logits, {backend} vs {backends[0]}: relative error {err:.2e}")
    for backend in backends:  # warm-up: compilation, autotuning, clocks
        models[backend].train()
        for _ in range(args.warmup):
            dense_step(models[backend], criterion, opts[backend], batch)
    stats = {b: {"train": [], "infer": []} for b in backends}
    for _ in range(args.reps):  # interleaved repetitions
        for backend in backends:
            model = models[backend]
            model.train()
            stats[backend]["train"].append(1 / timed(lambda: dense_step(model, criterion, opts[backend], batch),
                                                      args.iters))
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                stats[backend]["infer"].append(1000 * timed(lambda: model(batch[0], batch[1]).logits.float().cpu(),
                                                            args.iters))
    rows = []
    for backend in backends:
        model = models[backend]
        row = {"backend": backend, "params_m": sum(q.numel() for q in model.parameters()) / 1e6,
               "train_it_s": stats[backend]["train"], "infer_ms": stats[backend]["infer"]}
        model.train()
        row["train_peak_gib_2500"] = peak_gib(lambda: dense_step(model, criterion, opts[backend], batch))
        for length in (1000, 5000, 20000, 50000):
            long = dense_batch(length, g)
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                row[f"infer_gib_{length}"] = peak_gib(lambda: model(long[0], long[1]).logits.float().cpu())
            model.train()
            row[f"train_gib_{length}"] = peak_gib(lambda: dense_step(model, criterion, opts[backend], long))
            del long
        rows.append(row)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; ms-temba (I3D 1024-d, 51 classes), bf16 "
          f"autocast; median (min-max) of {args.reps} interleaved repetitions of {args.iters} steps")
    print(f"{'backend':<9}{'params M':>9}{'train it/s @2500':>26}{'vs cuda':>9}{'infer ms @2500':>24}"
          f"{'train GiB @2500':>16}")
    ref = statistics.median(rows[0]["train_it_s"])
    for r in rows:
        it, ms = r["train_it_s"], r["infer_ms"]
        print(f"{r['backend']:<9}{r['params_m']:>9.2f}{_spread(it):>26}{statistics.median(it) / ref:>9.2f}"
              f"{_spread(ms):>24}{r['train_peak_gib_2500']:>16.2f}")
    print(f"\npeak GiB by video length (batch 1)\n{'backend':<9}{'mode':<7}"
          + "".join(f"{n:>10}" for n in (1000, 5000, 20000, 50000)) + f"{'GiB per 10k steps':>19}")
    for r in rows:
        for mode in ("infer", "train"):
            gib = [r[f"{mode}_gib_{n}"] for n in (1000, 5000, 20000, 50000)]
            slope = (gib[-1] - gib[1]) / 4.5  # 5k -> 50k
            print(f"{r['backend']:<9}{mode:<7}" + "".join(f"{v:>10.3f}" for v in gib) + f"{slope:>19.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


def sg_inputs(g: torch.Generator, batch: int, valid: int, length: int):
    feats = torch.randn(batch, 2048, length, device="cuda", generator=g)
    heat = torch.rand(batch, length, 8, 56, 56, device="cuda", generator=g)
    mask = (torch.arange(length, device="cuda") < valid)[None].expand(batch, -1).contiguous()
    segments = [torch.tensor([[5.0, 15.0], [20.0, 30.0]], device="cuda")] * batch
    labels = [torch.tensor([1, 4], device="cuda")] * batch
    return {"mask": mask, "features": feats, "heatmaps": heat}, {"segments": segments, "labels": labels}


def sgmamba_main(args) -> None:
    from detect.tasks.segments import SegmentLoss

    g = torch.Generator(device="cuda").manual_seed(0)
    variants = {"down 512": {}, "full 2048": {"down_dim": None}}
    models, opts, losses = {}, {}, {}
    for name, extra in variants.items():
        torch.manual_seed(0)
        models[name] = create_model("sg-mamba", num_classes=7, **extra).cuda()
        opts[name] = torch.optim.AdamW(models[name].parameters(), lr=1e-4)
        losses[name] = SegmentLoss(models[name].cfg).cuda()
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
        print(f"{name:<11}{n:>10.1f}{ccm:>8.1f}{_spread(speed[name]):>24}{gib:>10.2f}")
    # the cascade, per video: stage 1 on the clip, stage 2 on two windows
    from detect.tasks.segments import decode_video

    stage1 = create_model("actionmamba-dbm", num_classes=1).cuda().eval()
    stage2 = models["down 512"].eval()
    clip = torch.randn(1, 2048, 640, device="cuda", generator=g)
    clip_mask = torch.arange(640, device="cuda")[None] < 637
    windows, _ = sg_inputs(g, 2, 38, 48)

    @torch.no_grad()
    def video():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out1 = stage1(clip, clip_mask)
            decode_video(out1, 0, stage1.cfg.postprocess)
            out2 = stage2(**windows)
            for i in range(2):
                segs = decode_video(out2, i, stage2.cfg.postprocess)[0]
        segs.cpu()

    for _ in range(5):
        video()
    per_video = [timed(video, args.iters) for _ in range(args.reps)]
    rates = [1 / t for t in per_video]
    print(f"\ncascade inference (stage 1 + 2 windows of stage 2, decoding included): {_spread(rates)} videos/s")
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
        print(f"{n:<24}{p:>9.2f}{_spread(train_rate[n]):>24}{_spread(infer_ms[n]):>24}{gib:>18.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("segments", "dense", "sgmamba", "msf"), default="segments")
    p.add_argument("--models", default="actionformer,actionmamba-vim,actionmamba-dbm", help="segments: detectors")
    p.add_argument("--backends", default="cuda,torch")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--reps", type=int, default=3, help="dense: interleaved repetitions")
    p.add_argument("--warmup", type=int, default=30, help="dense: warm-up training steps per backend")
    p.add_argument("--videos", type=int, default=212)
    p.add_argument("--json", help="write the rows here too")
    args = p.parse_args()
    if args.task != "segments":
        {"dense": dense_main, "sgmamba": sgmamba_main, "msf": msf_main}[args.task](args)
        return
    segments_main(args)


def segments_main(args) -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for backbone in args.models.split(","):
        for backend in (args.backends.split(",") if "mamba" in backbone else ["-"]):
            torch.manual_seed(0)
            model = make_model(backbone, backend if backend != "-" else "torch")
            its, mem = train_speed(model, args.iters, g)
            ms = infer_speed(model, args.videos, g)
            rows.append({"backbone": backbone, "backend": backend, "train_it_s": its, "peak_gib": mem,
                         "infer_ms_per_video": ms, "params_m": sum(q.numel() for q in model.parameters()) / 1e6})
            del model
            clear_graphs()
            torch.cuda.empty_cache()
    base = next((r for r in rows if r["backbone"] == "actionformer"), rows[0])
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; train: batch 2 x 2048 x 2304, bf16; "
          f"inference: {args.videos} videos, batch 1, with Soft-NMS")
    print(f"{'model':<17}{'backend':<9}{'params M':>9}{'train it/s':>12}{'vs AF':>11}{'peak GiB':>10}"
          f"{'infer ms/video':>16}")
    for r in rows:
        print(f"{r['backbone']:<17}{r['backend']:<9}{r['params_m']:>9.1f}{r['train_it_s']:>12.2f}"
              f"{r['train_it_s'] / base['train_it_s']:>11.2f}{r['peak_gib']:>10.2f}{r['infer_ms_per_video']:>16.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
