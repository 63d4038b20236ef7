"""Our detectors side by side with the official ActionFormer, in one process on one GPU.

The official model is built by its own ``make_meta_arch`` from its THUMOS14 I3D config in a
checkout you provide (``git clone https://github.com/happyharrycn/actionformer_release``); its C++
Soft-NMS is compiled from that checkout into a temporary folder. Nothing of it is copied here.

    python benchmarks/compare_actionformer.py --actionformer-root ~/src/actionformer_release
    python benchmarks/compare_actionformer.py --actionformer-root AF --models actionmamba-dbm --precision fp32
    python benchmarks/compare_actionformer.py --actionformer-root AF --skip infer \
        --models actionmamba-dbm@cuda,actionmamba-dbm@triton      # one model on two backends
    python benchmarks/compare_actionformer.py --actionformer-root AF --skip infer \
        --models actionmamba-dbm,actionmamba-dbm:recompute=false   # a backbone option changed
    python benchmarks/compare_actionformer.py --actionformer-root AF --skip infer \
        --models actionmamba-dbm,actionmamba-dbm+graph             # the step replayed from a CUDA graph

Inference: the same random features of ``--videos`` THUMOS-like lengths (300..6000 steps, batch
1, as ActionFormer evaluates) through each contestant, from the features on the GPU to segments
in seconds on the host: forward, then decoding + Soft-NMS + conversion (ms per video, both, and
output segments per video). Our forward runs as ``predict`` runs it, replayed from CUDA graphs
per length bucket (:mod:`detect.ops.graphed_forward`), and plain ("eager"); the graphed
detections are first compared with the plain forward's on 8 videos. The first pass over the set
(graph captures included) is timed too. Training: batch 2 x 2048 x 2304 (one video of 1800 valid
steps), loss, backward, clipping, an AdamW step and the EMA update, each side as its own trainer does a
step: iterations/s, peak memory as if the contestant ran alone (its weights, gradients, optimizer
state and EMA copy plus the peak its steps allocate above what was resident), and how many times
one step makes the host wait for the GPU (CUDA's sync debug mode). Each contestant warms up for ``--warmup-s`` seconds first (GPU clocks settle); then
``--reps`` rounds run the contestants interleaved (A B C A B C ...). Medians (min-max) over
rounds; ratios are ours / official within each round. A model listed on several backends
(``name@backend``) also gets its training ratio to the first of them.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from segment_bench import (FPS, STRIDE, WINDOW, footprint, host_syncs, make_model, segment_step_fn,  # noqa: E402
                           spread, thumos_train_batch, timed_detections, timed_steps)

from detect.config import apply_overrides  # noqa: E402
from detect.errors import DetectError  # noqa: E402
from detect.ops.graphed_forward import GraphedForward  # noqa: E402


def build_official(root: Path, device: str = "cuda"):
    """The official model of ``configs/thumos_i3d.yaml``, its C++ NMS compiled on the fly."""
    build = Path(tempfile.mkdtemp(prefix="af_nms_"))
    shutil.copytree(root / "libs" / "utils" / "csrc", build / "csrc")
    shutil.copy(root / "libs" / "utils" / "setup.py", build / "setup.py")
    proc = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=build, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building ActionFormer's nms_1d_cpu failed:\n{proc.stderr[-2000:]}")
    sys.path[:0] = [str(build), str(root)]
    from libs.core import load_config
    from libs.modeling import make_meta_arch

    cfg = load_config(str(root / "configs" / "thumos_i3d.yaml"))
    return make_meta_arch(cfg["model_name"], **cfg["model"]).to(device)


def official_step_fn(model, feats, mask, segments, labels, amp):
    """A step as the official ``train_one_epoch`` takes it: loss, backward, clipping, AdamW, its EMA."""
    from libs.utils import ModelEma

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ema = ModelEma(model, 0.999)
    lengths = mask.sum(1).tolist()
    videos = [{"feats": feats[i, :, :n], "segments": segments[i], "labels": labels[i]} for i, n in enumerate(lengths)]

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model(videos)["final_loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
    step.footprint = lambda: footprint(model, opt) + sum(t.numel() * t.element_size()
                                                         for t in ema.module.state_dict().values())
    return step


@torch.no_grad()
def official_video(model, x: torch.Tensor, amp: bool) -> tuple[float, float, int]:
    """Forward, then the official post-processing (host Soft-NMS, seconds): (ms, ms, segments)."""
    n = x.shape[-1]
    video = {"video_id": "v", "feats": x, "fps": FPS, "duration": ((n - 1) * STRIDE + WINDOW) / FPS,
             "feat_stride": STRIDE, "feat_num_frames": WINDOW, "segments": None, "labels": None}
    t0 = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        inputs, masks = model.preprocessing([video])
        feats, masks = model.backbone(inputs, masks)
        fpn_feats, fpn_masks = model.neck(feats, masks)
        points = model.point_generator(fpn_feats)
        cls = [c.permute(0, 2, 1) for c in model.cls_head(fpn_feats, fpn_masks)]
        offsets = [o.permute(0, 2, 1) for o in model.reg_head(fpn_feats, fpn_masks)]
    torch.cuda.synchronize()
    t1 = time.perf_counter()
    fpn_masks = [m.squeeze(1) for m in fpn_masks]
    result = model.inference([video], points, fpn_masks, [c.float() for c in cls], [o.float() for o in offsets])
    t2 = time.perf_counter()
    return 1000 * (t1 - t0), 1000 * (t2 - t1), len(result[0]["scores"])


def graph_parity(model, forward, videos, amp) -> str:
    """Detections of the graph-replayed forward against the plain forward on the same videos: the
    share of segments the other side also has (same label, boundaries within 0.05 s, score within
    1e-3; the order of near-tied scores may differ), and the largest score difference."""
    matched, total, score_diff = 0, 0, 0.0
    for x in videos:
        (_, a), (_, b) = timed_detections(model, forward, x, amp), timed_detections(model, model, x, amp)
        close = ((a[0][:, None] - b[0][None]).abs().amax(-1) < 0.05) & (a[2][:, None] == b[2][None])
        close &= (a[1][:, None] - b[1][None]).abs() < 1e-3
        matched, total = matched + int(close.any(1).sum()), total + len(a[1])
        if len(a[1]) == len(b[1]):
            score_diff = max(score_diff, (a[1] - b[1]).abs().max().item())
    return f"{matched}/{total} segments matched, max |score diff| in order {score_diff:.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actionformer-root", type=Path, required=True, help="a checkout of actionformer_release")
    p.add_argument("--models", default="actionformer,actionmamba-dbm,actionmamba-vim",
                   help="ours, each name[@backend][:backbone_key=value...]")
    p.add_argument("--backend", default="cuda", help="our Mamba backend where a model names none: cuda, triton or torch")
    p.add_argument("--precision", default="bf16,fp32", help="bf16 (autocast) and/or fp32, each for both sides")
    p.add_argument("--videos", type=int, default=212)
    p.add_argument("--iters", type=int, default=20, help="training steps per round")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--warmup-s", type=float, default=20.0)
    p.add_argument("--skip", default="", help="train and/or infer")
    args = p.parse_args()
    if not (args.actionformer_root / "libs" / "modeling" / "meta_archs.py").exists():
        raise SystemExit(f"{args.actionformer_root}: not an actionformer_release checkout (no libs/modeling)")

    torch.manual_seed(0)
    ours = {}
    for entry in args.models.split(","):  # ours first: a typo fails before the official build
        name, *options = entry.removesuffix("+graph").split(":")
        name, _, backend = name.partition("@")
        try:
            ours[f"ours {entry}"] = make_model(name, backend or args.backend, "cpu", **apply_overrides({}, options))
        except (DetectError, KeyError, TypeError, ValueError) as err:  # an unknown model, option or value: one line
            raise SystemExit(f"--models {entry}: {err}") from None
    contestants = {"official ActionFormer": build_official(args.actionformer_root),
                   **{name: model.cuda() for name, model in ours.items()}}
    forwards = {name: GraphedForward(model) for name, model in contestants.items() if name.startswith("ours")}
    g = torch.Generator(device="cuda").manual_seed(0)
    lengths = torch.randint(300, 6000, (args.videos,), generator=torch.Generator().manual_seed(0)).tolist()
    videos = [torch.randn(2048, n, device="cuda", generator=g) for n in lengths]
    feats, mask, segments, labels = thumos_train_batch(g)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, backend {args.backend}; "
          f"{args.videos} videos, {args.reps} interleaved rounds after {args.warmup_s:.0f} s warm-up each")

    for precision in args.precision.split(","):
        amp = precision == "bf16"
        if "infer" not in args.skip:
            infer = {name: (model, official_video) for name, model in contestants.items()
                     if name.startswith("official")}
            for name, forward in forwards.items():
                model = contestants[name]
                model.eval()
                print(f"{name}, {precision}, graphed vs plain forward: "
                      f"{graph_parity(model, forward, videos[:8], amp)}")
                infer[name] = (model, lambda model, x, amp, f=forward: timed_detections(model, f, x, amp)[0])
                infer[f"{name} eager"] = (model, lambda model, x, amp: timed_detections(model, model, x, amp)[0])
            first = {}
            for name, (model, fn) in infer.items():
                model.eval()
                torch.cuda.synchronize()
                start = time.perf_counter()
                for x in videos:  # every length bucket once: our graphs are captured here, not in the rounds
                    fn(model, x, amp)
                first[name] = 1000 * (time.perf_counter() - start) / len(videos)
                end = time.perf_counter() + args.warmup_s
                while time.perf_counter() < end:
                    for x in videos[:8]:
                        fn(model, x, amp)
            rounds = {name: [] for name in infer}
            for _ in range(args.reps):
                for name, (model, fn) in infer.items():
                    rows = [fn(model, x, amp) for x in videos]
                    rounds[name].append([sum(r[i] for r in rows) / len(rows) for i in range(3)])
            base = rounds["official ActionFormer"]
            print(f"\ninference, {precision}: ms per video, median (min-max) of {args.reps} rounds; first pass: "
                  f"the set's first run, graph captures included, in the order listed")
            print(f"{'contestant':<32}{'forward':>20}{'post-processing':>20}{'total':>20}{'total vs official':>22}"
                  f"{'segments':>10}{'first pass':>12}{'vs official':>13}")
            for name, r in rounds.items():
                cols = [spread([x[i] for x in r]) for i in range(2)]
                total = [x[0] + x[1] for x in r]
                ratio = [t / (b[0] + b[1]) for t, b in zip(total, base)]
                print(f"{name:<32}{cols[0]:>20}{cols[1]:>20}{spread(total):>20}{spread(ratio):>22}"
                      f"{statistics.median(x[2] for x in r):>10.0f}{first[name]:>12.1f}"
                      f"{first[name] / first['official ActionFormer']:>13.2f}")
        if "train" not in args.skip:
            videos.clear()
            torch.cuda.empty_cache()
            steps = {name: official_step_fn(model.train(), feats, mask, segments, labels, amp)
                     if name.startswith("official") else segment_step_fn(model.train(), feats, mask, segments, labels,
                                                                         amp, graph=name.endswith("+graph"))
                     for name, model in contestants.items()}
            failed = {}
            for name, step in steps.items():
                try:
                    end = time.perf_counter() + args.warmup_s
                    while time.perf_counter() < end:
                        step()
                except Exception as err:  # the official code may not support this precision: say so, go on
                    failed[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"
            rounds = {name: [] for name in steps if name not in failed}
            syncs = {name: host_syncs(steps[name]) for name in rounds}
            for _ in range(args.reps):
                for name in rounds:
                    rounds[name].append(timed_steps(steps[name], args.iters))
            print(f"\ntraining, {precision}: batch 2 x 2048 x 2304, median (min-max) of {args.reps} rounds")
            print(f"{'contestant':<26}{'it/s':>20}{'vs official':>20}{'peak GiB':>20}{'vs official':>20}"
                  f"{'host syncs/step':>17}")
            base = rounds.get("official ActionFormer")
            for name, r in rounds.items():
                its, mem = [x[0] for x in r], [x[1] for x in r]
                vs = spread([a / b[0] for a, b in zip(its, base)]) if base else "-"
                vs_mem = spread([a / b[1] for a, b in zip(mem, base)]) if base else "-"
                print(f"{name:<26}{spread(its):>20}{vs:>20}{spread(mem):>20}{vs_mem:>20}{syncs[name]:>17}")
            firsts = {}  # a model on several backends or options: ratios to its first entry
            for name in rounds:
                firsts.setdefault(re.split("[@:+]", name)[0], name)
            for name, r in rounds.items():
                first = firsts[re.split("[@:+]", name)[0]]
                if first != name:
                    print(f"{name:<26} vs {first}: it/s {spread([a[0] / b[0] for a, b in zip(r, rounds[first])])}, "
                          f"memory {spread([a[1] / b[1] for a, b in zip(r, rounds[first])])}")
            for name, why in failed.items():
                print(f"{name:<26} did not run: {why}")


if __name__ == "__main__":
    main()
