"""``python -m detect demo [--task segments|dense|clips]``: the whole pipeline of a task on
built-in sample videos, with no download.

* ``segments`` (default): 12 clips of 16 s, 10 fps, 128 px are made at first use (deterministic,
  seed 0): a grey textured backdrop where two kinds of actions happen, a red square flashes in
  place (``flash``) or a blue square slides across (``slide``); their times go to canonical
  annotations (8 clips train, 4 test). I3D RGB features (16-frame snippets, stride 4, 112 px) are
  extracted into a store with ``python -m extract i3d``; when the Kinetics weights are not cached,
  a deterministic random initialisation stands in, *in this demo only*, with a notice naming the
  command that fetches the real ones. An ActionMamba (DBM) detector trains on them (model
  selection on a held-out part of the training clips); the test clips are scored (detection mAP)
  and one is drawn on a timeline.
* ``dense``: the same clips and features; MS-Temba learns which action is on at each step, scored
  by per-frame mAP, one test clip's per-step probabilities drawn over its ground truth.
* ``clips``: 60 one-second clips (64 px, 16 fps) of three motions of a coloured square (it
  crosses the frame, drifts a little, or stays: any single frame looks alike in every class);
  ``python -m extract clip-frames`` keeps 8 frames per clip; MSF-Mamba learns them, scored by
  top-1 accuracy, with the test clips' confusion matrix drawn.

Everything goes under ``--out`` (one folder serves every task: the sample videos and features
are made once); the summary names each file. Each task takes one to two minutes on a 2-core
CPU; the GPU is used when there is one.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data.synthetic import MOTIONS  # the clips demo's classes

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


Clip = Callable[[int, np.random.Generator], tuple[np.ndarray, float, dict[str, Any]]]


def _write_sample(root: Path, classes: list[str], count: int, clip: Clip) -> tuple[Path, Path]:
    """``count`` videos ``clip(i, rng) -> (frames, fps, annotation fields)`` as mp4 files in
    ``root/videos`` and their annotations; made once (seed 0), reused when already there."""
    from extract.video.ffmpeg import ffmpeg_exe

    video_dir, ann_path = root / "videos", root / "annotations.json"
    if ann_path.exists():
        return video_dir, ann_path
    video_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    database = {}
    for i in range(count):
        frames, fps, fields = clip(i, rng)
        height, width = frames.shape[1:3]
        vid = f"{root.name}_{i:02d}"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-crf", "18", "-preset", "veryfast", str(video_dir / f"{vid}.mp4")]
        subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True, timeout=300)
        database[vid] = {"duration": len(frames) / fps, "fps": fps, **fields}
    ann_path.write_text(json.dumps({"classes": classes, "database": database}, indent=1))
    return video_dir, ann_path


def make_sample(root: Path, videos: int = 12) -> tuple[Path, Path]:
    """The detection clips (:func:`_frames`), the first two thirds for training."""
    def clip(i, rng):
        frames, actions = _frames(rng)
        return frames, FPS, {"subset": "train" if i < videos * 2 // 3 else "test", "annotations": actions}

    return _write_sample(root, CLASSES, videos, clip)


def make_clip_sample(root: Path, per_class: int = 20) -> tuple[Path, Path]:
    """One-second clips of the three motions (:func:`detect.data.synthetic.motion_clip`, 64 px,
    16 fps, 3 of 4 for training) with their clip labels."""
    from .data.synthetic import motion_clip

    def clip(i, rng):
        motion = i % len(MOTIONS)
        return motion_clip(rng, motion, frames=16, size=64, square=16), 16.0, {
            "subset": "test" if i % 4 == 3 else "train",
            "annotations": [{"label": MOTIONS[motion], "label_id": motion, "segment": None}]}

    return _write_sample(root, MOTIONS, per_class * len(MOTIONS), clip)


def i3d_weights(root: Path) -> tuple[str, bool]:
    """The cached Kinetics RGB weights, else a deterministic random initialisation (demo only)."""
    import torch

    from extract.models.i3d import InceptionI3d
    from extract.weights import MissingWeightsError, resolve

    try:
        return str(resolve("i3d-rgb-imagenet")), False
    except MissingWeightsError:
        path = root / "i3d_random_init_kaiming.pt"
        if not path.exists():
            torch.manual_seed(0)
            model = InceptionI3d()
            for module in model.modules():  # He init keeps activations O(1) through the 60 ReLU layers, like
                if isinstance(module, torch.nn.Conv3d):  # trained weights; the default init shrinks them to ~1e-6
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.save(model.state_dict(), path)
        return str(path), True


def _i3d_features(out: Path, device: str | None) -> tuple[Path, Path, Path, bool]:
    """The sample clips, their annotations and their I3D store (made once per ``out``)."""
    from extract.cli import main as extract_main

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
    return video_dir, annotations, store, random_init


def _data(streams: dict[str, list[str]], annotations: Path, max_seq_len: int) -> dict[str, Any]:
    return {"streams": streams, "annotations": str(annotations), "train_split": "train", "val_split": "train",
            "val_holdout": 0.25, "test_split": "test", "max_seq_len": max_seq_len, "num_workers": 0}


def demo_config(store: Path, annotations: Path, output: Path) -> dict[str, Any]:
    """The ``segments`` demo's run: a small ActionMamba (DBM) on the I3D store."""
    return {"model": {"name": "actionmamba-dbm", "num_classes": len(CLASSES), "head_dim": 128,
                      "backbone": {"input_dim": 1024, "embd_dim": 128, "arch": [2, 1, 4], "drop_path": 0.1},
                      "regression_range": [[0, 4], [4, 8], [8, 16], [16, 32], [32, 10000]]},
            "data": _data({"features": [str(store)]}, annotations, 64),
            "optim": {"lr": 3e-4, "epochs": 40, "warmup_epochs": 2, "batch_size": 2, "ema_decay": 0.9,
                      "weight_decay": 0.05},
            "task": {"tiou": [0.3, 0.5, 0.7], "clean_gt": False},
            "eval": {"every": 5},
            "output": str(output), "seed": 0, "log_every": 20}


def dense_config(store: Path, annotations: Path, output: Path) -> dict[str, Any]:
    """The ``dense`` demo's run: a small MS-Temba on the same I3D store."""
    return {"model": {"name": "ms-temba", "num_classes": len(CLASSES), "input_dim": 1024,
                      "embed_dims": [64, 96, 128], "drop_path": 0.0},
            "data": _data({"features": [str(store)]}, annotations, 64),
            "optim": {"lr": 1e-3, "epochs": 30, "warmup_epochs": 2, "batch_size": 2, "ema_decay": 0.9,
                      "weight_decay": 0.05},
            "task": {"frame_map": "full"},
            "eval": {"every": 5},
            "output": str(output), "seed": 0, "log_every": 20}


def clips_config(store: Path, annotations: Path, output: Path) -> dict[str, Any]:
    """The ``clips`` demo's run: a small MSF-Mamba on 8 frames of 32 px per clip."""
    return {"model": {"name": "msf-mamba-t", "num_classes": len(MOTIONS), "dim": 48, "depth": 4, "img_size": 32,
                      "patch": 8, "num_frames": 8, "drop_path": 0.0, "crop_scale": [0.8, 1.0]},
            "data": _data({"frames": [str(store)]}, annotations, 64),
            "optim": {"lr": 1e-3, "epochs": 40, "warmup_epochs": 2, "batch_size": 4, "ema_decay": 0.9,
                      "weight_decay": 0.05},
            "task": {"topk": [1]},  # three classes: top-5 would say nothing
            "eval": {"every": 5},
            "output": str(output), "seed": 0, "log_every": 20}


def _segments(out: Path, device: str | None) -> dict[str, Any]:
    from .config import load_config
    from .engine import train
    from .plot import plot_timeline

    video_dir, annotations, store, random_init = _i3d_features(out, device)
    summary = train(load_config(None, base=demo_config(store, annotations, out / "run")), device=device,
                    progress=False)
    detections = out / "run" / "test_detections.json"
    results = json.loads(detections.read_text())["results"]
    video = sorted(results)[0]
    gt = json.loads(annotations.read_text())["database"][video]["annotations"]
    plot = plot_timeline(video, gt, results[video], out / f"{video}_timeline.png")
    return {"videos": str(video_dir), "annotations": str(annotations), "features": str(store),
            "random_init_features": random_init, "checkpoint": str(out / "run" / "best.pt"),
            "predictions": str(detections), "picture": str(plot), "test": summary["test"]}


def _dense(out: Path, device: str | None) -> dict[str, Any]:
    import numpy as np

    from .config import load_config
    from .engine import train
    from .plot import plot_frame_scores

    video_dir, annotations, store, random_init = _i3d_features(out, device)
    summary = train(load_config(None, base=dense_config(store, annotations, out / "dense_run")), device=device,
                    progress=False)
    predictions = out / "dense_run" / "test_frames.npz"
    with np.load(predictions) as saved:
        video = sorted(k.rpartition("/")[0] for k in saved.files if k.endswith("/scores"))[0]
        scores, times = saved[f"{video}/scores"], saved[f"{video}/times"]
    gt = json.loads(annotations.read_text())["database"][video]["annotations"]
    plot = plot_frame_scores(video, gt, scores, times, CLASSES, out / f"{video}_frame_scores.png")
    return {"videos": str(video_dir), "annotations": str(annotations), "features": str(store),
            "random_init_features": random_init, "checkpoint": str(out / "dense_run" / "best.pt"),
            "predictions": str(predictions), "picture": str(plot), "test": summary["test"]}


def _clips(out: Path, device: str | None) -> dict[str, Any]:
    from extract.cli import main as extract_main

    from .config import load_config
    from .engine import train
    from .plot import plot_confusion

    video_dir, annotations = make_clip_sample(out / "clip_sample")
    store = out / "clip_frames"
    code = extract_main(["clip-frames", "--video-dir", str(video_dir), "--out", str(store), "--frames", "8",
                         "--size", "32", "--workers", "0"])
    if code != 0:
        raise RuntimeError(f"frame sampling failed (exit {code})")
    summary = train(load_config(None, base=clips_config(store, annotations, out / "clips_run")), device=device,
                    progress=False)
    plot = plot_confusion(summary["test"]["confusion"], MOTIONS, out / "clips_confusion.png")
    return {"videos": str(video_dir), "annotations": str(annotations), "features": str(store),
            "random_init_features": False, "checkpoint": str(out / "clips_run" / "best.pt"),
            "predictions": str(out / "clips_run" / "test_clips.json"), "picture": str(plot), "test": summary["test"]}


DEMOS = {"segments": _segments, "dense": _dense, "clips": _clips}


def run_demo(out: str | Path = "runs/demo", device: str | None = None, task: str = "segments") -> dict[str, Any]:
    """Sample videos -> features -> a trained model of ``task`` -> its test metric and a picture."""
    if task not in DEMOS:
        raise ValueError(f"the demo runs one of {', '.join(DEMOS)}, not {task!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = DEMOS[task](out, device)
    return {"task": task, **summary, "seconds": round(time.perf_counter() - started, 1)}
