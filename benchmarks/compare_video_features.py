"""Extraction side by side with video_features (v-iashin/video_features), the tool users run today.

Both tools extract the same synthetic videos (ffmpeg ``testsrc2``, 320x240 h264 at 30 fps, 1 to 3
minutes) from the command line, each at its own defaults except where the outputs would otherwise
differ in kind:

* I3D RGB: video_features ``feature_type=i3d streams=rgb`` (64-frame stacks every 64 frames, short
  side 256 then a 224 centre crop, one frame per ``cv2.read``, PIL resizing, one stack per
  forward); ours ``python -m extract i3d --window 64 --stride 64`` (the same snippets; short side
  224 then the crop, decoding workers, batched on the GPU).
* CLIP ViT-B/32 per frame: video_features ``feature_type=clip model_name=custom`` (its default
  model, batch 1, PIL bicubic resizing, fp16 weights on CUDA); ours ``python -m extract clip
  --model ViT-B-32 --pretrained FILE --quick-gelu yes --pool frame`` (fp32).

The weights are random (no download here), saved where each tool reads them: CLIP's one state
dict in the OpenAI layout for both tools; I3D in each tool's own layout (video_features ports the
DeepMind model with another layout, so its I3D gets its own random weights, and I3D features are
not compared: see below). The videos are cut into ``--rounds`` groups; each round runs both tools
on its group, the order alternating, whole processes timed (start-up included, as a user waits
for it). Videos/s per tool and the ratio within each round: median (min-max); for ours also the
seconds outside its extraction loop (start-up, model loading, closing the store), from its
``--json`` summary.

Features: CLIP per frame on the same frames, cosine similarity of the two tools' vectors, and
the two models on identical input tensors in float32 against ours in float64 (the weights and
the architecture alone).
I3D is not compared: video_features' port differs from the DeepMind definition ours follows
(BatchNorm eps 1e-5 instead of 1e-3, a 2x7x7 average pool before the time mean), and it crops
from a 256-pixel short side where ours resizes to 224.

    python benchmarks/compare_video_features.py --video-features-root VF --videos 20 --rounds 5
    python benchmarks/compare_video_features.py --video-features-root VF --tools clip --only-rounds 0,1,2
    python benchmarks/compare_video_features.py --video-features-root VF --tools i3d --profile PROFILES
    python benchmarks/compare_video_features.py --video-features-root VF --videos 2 --min-s 3 --max-s 4 \\
        --rounds 1 --device cpu                       # a smoke run

VF is a checkout of v-iashin/video_features (measured at a2f61b7); it is copied into a temporary
folder (its weights go there) and needs omegaconf and OpenCV importable. Fixes applied to it: none.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from extract_throughput import make_videos  # noqa: E402
from segment_bench import spread  # noqa: E402


def write_weights(vf: Path, root: Path) -> dict[str, Path]:
    """Random weights where each tool reads them; CLIP's are one file for both."""
    import open_clip

    sys.path.insert(0, str(vf))
    from models.i3d.i3d_src.i3d_net import I3D as TheirI3D

    from extract.models.i3d import InceptionI3d

    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    with torch.no_grad():  # open_clip leaves some projections at zero or identity; give every weight a value
        for p in clip.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    clip_file = root / "clip_vit_b32_random.pt"
    torch.save(clip.state_dict(), clip_file)
    for tool in ("clip", "i3d"):
        (vf / "models" / tool / "checkpoints").mkdir(exist_ok=True)
    shutil.copy(clip_file, vf / "models" / "clip" / "checkpoints" / "CLIP-custom.pth")
    ours_i3d = root / "i3d_random.pt"
    torch.save(InceptionI3d().state_dict(), ours_i3d)
    torch.save(TheirI3D(num_classes=400, modality="rgb").state_dict(), vf / "models" / "i3d" / "checkpoints" / "i3d_rgb.pt")
    return {"clip": clip_file, "i3d": ours_i3d}


THEIR_FOLDER = {"i3d": "i3d", "clip": "clip/custom"}   # where video_features writes, under output_path
THEIR_KEY = {"i3d": "rgb", "clip": "clip"}               # and its file suffix: VIDEO_KEY.npy


def theirs_command(tool: str, vf: Path, videos: list[Path], out: Path, device: str) -> list[str]:
    dev = "cuda:0" if device == "cuda" else "cpu"
    common = [f"device={dev}", "on_extraction=save_numpy", f"output_path={out}",
              "video_paths=[" + ",".join(str(v) for v in videos) + "]"]
    if tool == "i3d":
        return [sys.executable, "main.py", "feature_type=i3d", "streams=rgb", *common]
    return [sys.executable, "main.py", "feature_type=clip", "model_name=custom", *common]


def ours_command(tool: str, folder: Path, out: Path, weights: dict[str, Path], args) -> list[str]:
    common = ["--video-dir", str(folder), "--out", str(out), "--workers", str(args.workers),
              "--batch-size", str(args.batch_size), "--device", args.device, "--json"]
    if tool == "i3d":
        return [sys.executable, "-m", "extract", "i3d", *common, "--window", "64", "--stride", "64",
                "--weights", str(weights["i3d"])]
    return [sys.executable, "-m", "extract", "clip", *common, "--model", "ViT-B-32", "--pretrained",
            str(weights["clip"]), "--quick-gelu", "yes", "--pool", "frame"]


def log_tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-15:])


def timed_run(cmd: list[str], cwd: Path, env: dict, log: Path, stdout: Path | None = None) -> float:
    """Seconds of the whole process; its output into ``log`` (stdout alone into ``stdout`` if given)."""
    start = time.perf_counter()
    with open(log, "ab") as fh, open(stdout or log, "ab") as out:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=fh)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} failed (exit {proc.returncode}); its log ends:\n{log_tail(log)}")
    return seconds


def check_theirs(out: Path, videos: list[Path], key: str, log: Path) -> None:
    """video_features prints a traceback and goes on when a video fails: every video needs its file."""
    missing = [v.name for v in videos if not (out / f"{v.stem}_{key}.npy").is_file()]
    if missing:
        raise SystemExit(f"video_features wrote no {key} features for {missing}; its log ends:\n{log_tail(log)}")


def cast_to_fp16_by_openai_clip(name: str) -> bool:
    """Whether OpenAI CLIP's ``convert_weights`` casts this parameter to fp16: convolutions,
    linear layers, attention and the two projections; not norms, embeddings or the logit scale."""
    return not (name.startswith("ln_") or ".ln_" in name or "embedding" in name or name == "logit_scale")


def clip_agreement(weights: Path, ours_store: Path, theirs_out: Path, videos: list[Path]) -> dict:
    """Cosine similarity of the tools' per-frame CLIP vectors, and the relative difference of each
    model (video_features' OpenAI CLIP definition, ours through open_clip) from ours in float64."""
    from models.clip.clip_src.model import build_model

    from extract.models.clip import load_clip
    from extract.store import open_store

    cos, counts = [], []
    with open_store(ours_store) as store:
        for v in videos:
            ours = store.read(v.stem).astype(np.float64)
            theirs = np.load(theirs_out / f"{v.stem}_clip.npy").astype(np.float64)
            counts.append((len(ours), len(theirs)))
            n = min(len(ours), len(theirs))
            a, b = ours[:n], theirs[:n]
            cos.append((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    cos = np.concatenate(cos)
    # the models alone on the CPU in float32 (theirs cannot run in float64: its LayerNorm casts to
    # float32), against ours in float64; video_features' build_model rounds the weights to fp16,
    # so ours with weights rounded the same way must match it to float32 rounding
    theirs_model = build_model(torch.load(weights, map_location="cpu", weights_only=True)).float().eval()
    ours_model = load_clip("ViT-B-32", str(weights), torch.device("cpu"), quick_gelu=True).model
    x = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        ours32 = ours_model.encode_image(x.float()).double()
        theirs32 = theirs_model.encode_image(x.float()).double()
        oracle = ours_model.double().encode_image(x)
        for name, p in ours_model.named_parameters():
            if cast_to_fp16_by_openai_clip(name):
                p.copy_(p.half().double())
        ours_rounded = ours_model.float().encode_image(x.float()).double()
    rel = {"theirs_fp32": float((theirs32 - oracle).norm() / oracle.norm()),
           "ours_fp32": float((ours32 - oracle).norm() / oracle.norm()),
           "theirs_vs_ours_fp16_weights": float((theirs32 - ours_rounded).norm() / ours_rounded.norm())}
    return {"frames_ours_theirs": counts, "cos_median": float(np.median(cos)), "cos_min": float(cos.min()),
            "models": rel}


def profile_ours(tool: str, folder: Path, root: Path, weights: dict[str, Path], args, env: dict) -> None:
    """Where our whole process spends its time (start-up included): cProfile of the main process,
    its 25 costliest calls printed, the profile kept for ``pstats``."""
    import pstats

    args.profile.mkdir(parents=True, exist_ok=True)
    prof = args.profile / f"ours_{tool}.prof"
    cmd = ours_command(tool, folder, root / f"profiled_{tool}", weights, args)
    timed_run([cmd[0], "-m", "cProfile", "-o", str(prof), *cmd[1:]], Path.cwd(), env, root / f"profiled_{tool}.log")
    print(f"\n{tool}: our process under cProfile (main process only; decoding workers are separate)")
    pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(25)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video-features-root", type=Path, required=True, help="a checkout of v-iashin/video_features")
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--min-s", type=int, default=60, help="shortest video, seconds")
    p.add_argument("--max-s", type=int, default=180, help="longest video, seconds")
    p.add_argument("--rounds", type=int, default=5, help="groups of videos, each timed for both tools")
    p.add_argument("--only-rounds", type=lambda v: [int(r) for r in v.split(",")],
                   help="run only these rounds (0-based, comma-separated): a long run split over several calls")
    p.add_argument("--tools", default="i3d,clip")
    p.add_argument("--workers", type=int, default=12, help="our decoding processes")
    p.add_argument("--batch-size", type=int, default=32, help="our snippets per forward")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--profile", type=Path, help="then run ours once more per tool on the first round under "
                                                 "cProfile (untimed), into PROFILE/ours_TOOL.prof")
    args = p.parse_args()
    if args.only_rounds is not None and not set(args.only_rounds) <= set(range(args.rounds)):
        raise SystemExit(f"--only-rounds {args.only_rounds}: rounds are 0..{args.rounds - 1}")
    if not (args.video_features_root / "main.py").is_file():
        raise SystemExit(f"{args.video_features_root}: not a video_features checkout (no main.py)")
    root = Path(tempfile.mkdtemp(prefix="vs_video_features_"))
    try:
        vf = root / "video_features"
        shutil.copytree(args.video_features_root, vf, ignore=shutil.ignore_patterns(".git", "sample", "docs"))
        weights = write_weights(vf, root)
        step = (args.max_s - args.min_s) / max(args.videos - 1, 1)
        durations = [round(args.min_s + i * step) for i in range(args.videos)]
        order = durations[::2] + durations[1::2][::-1]     # every round gets short and long videos
        groups = [order[r::args.rounds] for r in range(args.rounds)]
        chosen = range(args.rounds) if args.only_rounds is None else args.only_rounds
        folders, first = {}, 0
        for r, group in enumerate(groups):
            if r in chosen:
                folders[r] = (root / f"round_{r}", make_videos(root / f"round_{r}", group, first))
            first += len(group)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
        results = {}
        for tool in args.tools.split(","):
            rounds = []
            for r, (folder, videos) in folders.items():
                out_ours, out_theirs = root / f"ours_{tool}_{r}", root / f"theirs_{tool}_{r}"
                runs = {"ours": (ours_command(tool, folder, out_ours, weights, args), Path.cwd()),
                        "theirs": (theirs_command(tool, vf, videos, out_theirs, args.device), vf)}
                seconds, summary = {}, root / f"ours_{tool}_{r}.json"
                for who in (("theirs", "ours") if r % 2 == 0 else ("ours", "theirs")):
                    cmd, cwd = runs[who]
                    seconds[who] = timed_run(cmd, cwd, env, root / f"{who}_{tool}.log",
                                             summary if who == "ours" else None)
                check_theirs(out_theirs / THEIR_FOLDER[tool], videos, THEIR_KEY[tool], root / f"theirs_{tool}.log")
                # our extraction loop alone (the rest: start-up, model loading, closing the store)
                loop = json.loads(summary.read_text())["seconds"]
                rounds.append({"videos": len(videos), "minutes": sum(groups[r]) / 60, **seconds, "ours_loop": loop,
                               "ratio": seconds["theirs"] / seconds["ours"]})
                print(f"{tool} round {r}: {len(videos)} videos, {sum(groups[r]) / 60:.1f} min; video_features "
                      f"{seconds['theirs']:.1f} s, ours {seconds['ours']:.1f} s ({loop:.1f} s extracting), "
                      f"x{rounds[-1]['ratio']:.2f}", flush=True)
            results[tool] = {"rounds": rounds}
            if args.profile:
                profile_ours(tool, folders[min(folders)][0], root, weights, args, env)
            if tool == "clip":
                r = min(folders)
                results[tool]["agreement"] = {"round": r, **clip_agreement(
                    weights["clip"], root / f"ours_clip_{r}", root / f"theirs_clip_{r}" / THEIR_FOLDER["clip"],
                    folders[r][1])}
        print(f"\n{torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}, torch {torch.__version__}; "
              f"{args.videos} videos of {args.min_s}-{args.max_s} s in {args.rounds} rounds (ran {sorted(folders)}), "
              f"whole processes timed; "
              f"median (min-max) over rounds")
        print(f"{'extractor':<10}{'video_features videos/s':>26}{'ours videos/s':>22}{'ours / video_features':>24}"
              f"{'ours outside extraction s':>28}")
        for tool, res in results.items():
            theirs = [r["videos"] / r["theirs"] for r in res["rounds"]]
            ours = [r["videos"] / r["ours"] for r in res["rounds"]]
            fixed = [r["ours"] - r["ours_loop"] for r in res["rounds"]]
            print(f"{tool:<10}{spread(theirs):>26}{spread(ours):>22}{spread([r['ratio'] for r in res['rounds']]):>24}"
                  f"{spread(fixed):>28}")
        if "clip" in results:
            agree = results["clip"]["agreement"]
            print(f"\nCLIP per frame, round {agree['round']}: frames (ours, theirs) {agree['frames_ours_theirs']}; "
                  f"cosine similarity median {agree['cos_median']:.5f}, min {agree['cos_min']:.5f}; "
                  f"the two models on the same input (float32, against ours in float64): "
                  f"video_features {agree['models']['theirs_fp32']:.2e}, "
                  f"ours {agree['models']['ours_fp32']:.2e}; video_features against ours with weights rounded "
                  f"to fp16 as its build_model does: {agree['models']['theirs_vs_ours_fp16_weights']:.2e}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
