"""``python -m detect demo``: the whole pipeline on built-in sample videos, with no download.

1. Sample videos are made at first use (deterministic, seed 0): 12 clips of 16 s, 10 fps, 128 px,
   a grey textured backdrop where two kinds of actions happen: a red square flashes in place
   (``flash``) or a blue square slides across (``slide``); their times go to canonical annotations
   (8 clips train, 4 test).
2. I3D RGB features (16-frame snippets, stride 4, 112 px) are extracted into a store with
   ``python -m extract i3d``. When the Kinetics weights are not cached, a deterministic random
   initialisation stands in, *in this demo only*, with a notice naming the command that fetches
   the real ones.
3. An ActionMamba (DBM) detector trains on them, model selection on a held-out part of the
   training clips; the test clips are scored (detection mAP) and one is drawn on a timeline.

Everything goes under ``--out``; the summary names each file. A few minutes on a 2-core CPU;
the GPU is used when there is one.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ["flash", "slide"]
FPS, SIZE, SECONDS = 10.0, 128, 16


def _frames(rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One clip's uint8 frames ``(T, SIZE, SIZE, 3)`` and its actions."""
    n = int(SECONDS * FPS)
    backdrop = (90 + 40 * rng.random((SIZE // 8, SIZE // 8, 3))).repeat(8, 0).repeat(8, 1)
    frames = np.repeat(backdrop[None], n, axis=0)
    frames += rng.normal(0, 4, frames.shape)  # sensor noise, so that no two frames are equal
    actions, t = [], float(rng.uniform(0.5, 2.5))
    while t < SECONDS - 3.5:
        length = float(rng.uniform(1.5, 3.0))
        cls = int(rng.integers(len(CLASSES)))
        first, last = int(round(t * FPS)), int(round((t + length) * FPS))
        side = 40
        if cls == 0:  # a red square flashes in place
            y, x = rng.integers(0, SIZE - side, 2)
            frames[first:last, y:y + side, x:x + side] = (230, 30, 30)
        else:  # a blue square slides left to right
            y = int(rng.integers(0, SIZE - side))
            for k, f in enumerate(range(first, last)):
                x = int((SIZE - side) * k / max(last - first - 1, 1))
                frames[f, y:y + side, x:x + side] = (30, 30, 230)
        actions.append({"label": CLASSES[cls], "label_id": cls,
                        "segment": [round(first / FPS, 3), round(last / FPS, 3)]})
        t += length + float(rng.uniform(1.0, 3.0))
    return np.clip(frames, 0, 255).astype(np.uint8), actions


def make_sample(root: Path, videos: int = 12) -> tuple[Path, Path]:
    """The sample clips (``root/videos``) and their annotations; reused when already there."""
    from extract.video.ffmpeg import ffmpeg_exe

    video_dir, ann_path = root / "videos", root / "annotations.json"
    if ann_path.exists():
        return video_dir, ann_path
    video_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    database = {}
    for i in range(videos):
        frames, actions = _frames(rng)
        vid = f"sample_{i:02d}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-crf", "18", "-preset", "veryfast", str(video_dir / f"{vid}.mp4")]
        subprocess.run(cmd, input=frames.tobytes(), check=True, timeout=300)
        database[vid] = {"subset": "train" if i < videos * 2 // 3 else "test", "duration": SECONDS, "fps": FPS,
                         "annotations": actions}
    ann_path.write_text(json.dumps({"classes": CLASSES, "database": database}, indent=1))
    return video_dir, ann_path


def i3d_weights(root: Path) -> tuple[str, bool]:
    """The cached Kinetics RGB weights, else a deterministic random initialisation (demo only)."""
    import torch

    from extract.models.i3d import InceptionI3d
    from extract.weights import MissingWeightsError, resolve

    try:
        return str(resolve("i3d-rgb-imagenet")), False
    except MissingWeightsError:
        path = root / "i3d_random_init.pt"
        if not path.exists():
            torch.manual_seed(0)
            torch.save(InceptionI3d().state_dict(), path)
        return str(path), True


def demo_config(store: Path, annotations: Path, output: Path) -> dict[str, Any]:
    return {"model": {"name": "actionmamba-dbm", "num_classes": len(CLASSES), "head_dim": 128,
                      "backbone": {"input_dim": 1024, "embd_dim": 128, "arch": [2, 1, 4], "drop_path": 0.1},
                      "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 10000]]},
            "data": {"streams": {"features": [str(store)]}, "annotations": str(annotations), "train_split": "train",
                     "val_split": "train", "val_holdout": 0.25, "test_split": "test", "max_seq_len": 64,
                     "num_workers": 0},
            "optim": {"lr": 1e-3, "epochs": 40, "warmup_epochs": 2, "batch_size": 2, "ema_decay": 0.9,
                      "weight_decay": 0.05},
            "task": {"tiou": [0.3, 0.5, 0.7], "clean_gt": False},
            "eval": {"every": 5},
            "output": str(output), "seed": 0, "log_every": 20}


def run_demo(out: str | Path = "runs/demo", device: str | None = None) -> dict[str, Any]:
    """Sample videos -> I3D store -> trained detector -> test mAP, detections and a plot."""
    from extract.cli import main as extract_main

    from .config import load_config
    from .engine import train
    from .plot import plot_timeline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    video_dir, annotations = make_sample(out / "sample")
    weights, random_init = i3d_weights(out)
    if random_init:
        print("NOTICE: the I3D Kinetics weights are not cached, so this demo extracts features with a deterministic "
              "random initialisation (demo only). Real features: python -m extract download i3d-rgb-imagenet")
    store = out / "features_i3d"
    code = extract_main(["i3d", "--video-dir", str(video_dir), "--out", str(store), "--weights", weights,
                         "--stream", "rgb", "--size", "112", "--window", "16", "--stride", "4", "--workers", "0",
                         "--batch-size", "16", *(["--device", device] if device else [])])
    if code != 0:
        raise RuntimeError(f"feature extraction failed (exit {code})")
    summary = train(load_config(None, base=demo_config(store, annotations, out / "run")), device=device,
                    progress=False)
    detections = out / "run" / "test_detections.json"
    results = json.loads(detections.read_text())["results"]
    video = sorted(results)[0]
    gt = json.loads(annotations.read_text())["database"][video]["annotations"]
    plot = plot_timeline(video, gt, results[video], out / f"{video}_timeline.png")
    return {"videos": str(video_dir), "annotations": str(annotations), "features": str(store),
            "random_init_features": random_init, "checkpoint": str(out / "run" / "best.pt"),
            "detections": str(detections), "timeline": str(plot), "test": summary["test"],
            "seconds": round(time.perf_counter() - started, 1)}
