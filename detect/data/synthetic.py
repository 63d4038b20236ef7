"""Synthetic datasets written as stores and canonical annotations: what models are compared on
without a download.

:func:`write_context_dataset` (dense detection, labels that need temporal context): each action
announces its class only at its onset: for ``cue_steps`` steps the features carry the class's
prototype; for the rest of the action they carry one "in action" prototype shared by every
class. A model that sees only a few neighbouring steps can tell *that* an action is on but not
*which*; one that carries state from the onset can tell both. Actions may overlap (a new one
starts before the previous ends with probability ``overlap``).

:func:`write_two_modality_dataset` (segment detection from appearance features and skeleton
heatmaps): some classes show in one modality only, the others in the other only.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta


def write_context_dataset(root: str | Path, *, num_classes: int = 4, n_train: int = 32, n_test: int = 12,
                          dim: int = 16, steps: tuple[int, int] = (100, 180), action_steps: tuple[int, int] = (10, 30),
                          cue_steps: int = 2, overlap: float = 0.3, noise: float = 0.5, fps: float = 10.0,
                          stride: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """Writes ``root/store`` (``dim``-d features) and ``root/annotations.json`` (subsets
    ``training`` / ``testing``); returns both paths."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    classes = [f"action_{c}" for c in range(num_classes)]
    cues = rng.standard_normal((num_classes, dim)) * 2
    active = rng.standard_normal(dim) * 2
    database = {}
    with StoreWriter(root / "store", StoreInfo(feature="synthetic-context", dtype="float32", num_shards=1)) as writer:
        for i in range(n_train + n_test):
            vid = f"{'train' if i < n_train else 'test'}_{i:03d}"
            rows = int(rng.integers(*steps))
            grid = SnippetGrid(window=stride, stride=stride, fps=fps, num_snippets=rows)
            feats = rng.standard_normal((rows, dim)) * noise
            anns, k = [], int(rng.integers(2, 8))
            while k < rows - action_steps[0]:
                length, cls = int(rng.integers(*action_steps)), int(rng.integers(num_classes))
                stop = min(k + length, rows)
                feats[k:k + cue_steps] += cues[cls]
                feats[k + cue_steps:stop] += active
                centres = grid.centre_seconds()
                anns.append({"label": classes[cls], "label_id": cls,
                             "segment": [round(float(centres[k]), 4), round(float(centres[stop - 1]), 4)]})
                k = k + cue_steps + int(rng.integers(1, length)) if rng.random() < overlap else stop + int(rng.integers(3, 15))
            duration = rows * stride / fps
            writer.write(vid, feats.astype(np.float32), VideoMeta(grid=grid, fps=fps, duration=duration))
            database[vid] = {"subset": "training" if i < n_train else "testing", "duration": duration, "fps": fps,
                             "annotations": anns}
    (root / "annotations.json").write_text(json.dumps({"classes": classes, "database": database}))
    return root / "store", root / "annotations.json"


def write_two_modality_dataset(root: str | Path, *, n_train: int = 32, n_test: int = 12, dim: int = 12,
                               size: int = 14, window: int = 4, stride: int = 2, fps: float = 10.0,
                               steps: tuple[int, int] = (50, 90), seed: int = 0) -> tuple[Path, Path, Path]:
    """Appearance features and per-frame skeleton heatmaps of the same videos, where classes 0
    and 1 show only in the features (a class prototype) and classes 2 and 3 only in the heatmaps
    (a Gaussian blob at a class-specific place; elsewhere a blob wanders at random). Writes
    ``root/features``, ``root/heatmaps`` and ``root/annotations.json``; returns the three."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    classes = ["appearance_a", "appearance_b", "skeleton_a", "skeleton_b"]
    protos = rng.standard_normal((2, dim)) * 2
    places = [(size * 0.25, size * 0.25), (size * 0.75, size * 0.75)]
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    blob = lambda cx, cy: np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (size / 8) ** 2))  # noqa: E731
    database = {}
    feat_info = StoreInfo(feature="synthetic-appearance", dtype="float32", num_shards=1)
    heat_info = StoreInfo(feature="synthetic-heatmaps", dtype="float16", num_shards=1)
    with StoreWriter(root / "features", feat_info) as feats_out, StoreWriter(root / "heatmaps", heat_info) as heat_out:
        for i in range(n_train + n_test):
            vid = f"{'train' if i < n_train else 'test'}_{i:03d}"
            rows = int(rng.integers(*steps))
            frames = (rows - 1) * stride + window
            grid = SnippetGrid(window=window, stride=stride, fps=fps, num_snippets=rows)
            frame_grid = SnippetGrid(window=1, stride=1, fps=fps, num_snippets=frames)
            centres, frame_times = grid.centre_seconds(), frame_grid.centre_seconds()
            feats = rng.standard_normal((rows, dim)) * 0.5
            wander = rng.uniform(size * 0.2, size * 0.8, (frames, 2))
            heat = np.stack([0.6 * blob(*wander[f]) for f in range(frames)])
            anns, t = [], float(rng.uniform(0.3, 1.5))
            duration = frames / fps
            while t < duration - 2.5:
                length, cls = float(rng.uniform(0.8, 2.0)), int(rng.integers(len(classes)))
                if cls < 2:
                    feats[(centres >= t) & (centres <= t + length)] += protos[cls]
                else:
                    heat[(frame_times >= t) & (frame_times <= t + length)] = blob(*places[cls - 2])
                anns.append({"label": classes[cls], "label_id": cls, "segment": [round(t, 3), round(t + length, 3)]})
                t += length + float(rng.uniform(0.8, 5.0))  # irregular gaps: a gap does not imply an action
            feats_out.write(vid, feats.astype(np.float32), VideoMeta(grid=grid, fps=fps, num_frames=frames,
                                                                     duration=duration))
            heat_out.write(vid, heat.astype(np.float16), VideoMeta(grid=frame_grid, fps=fps, num_frames=frames,
                                                                   duration=duration))
            database[vid] = {"subset": "training" if i < n_train else "testing", "duration": duration, "fps": fps,
                             "annotations": anns}
    (root / "annotations.json").write_text(json.dumps({"classes": classes, "database": database}))
    return root / "features", root / "heatmaps", root / "annotations.json"


MOTIONS = ["crosses", "drifts", "stays"]


def motion_clip(rng: np.random.Generator, motion: int, frames: int = 16, size: int = 32,
                square: int = 8) -> np.ndarray:
    """uint8 ``(frames, size, size, 3)``: a square of random colour and place on a still dark
    backdrop that crosses the frame (``motion`` 0), drifts a quarter of the way (1) or stays (2),
    in a random direction; any single frame looks alike in every class."""
    clip = np.repeat((rng.random((1, size, size, 3)) * 40).astype(np.uint8), frames, axis=0)
    colour = rng.integers(120, 256, 3)
    span = size - square
    distance = [span, span // 4, 0][motion]
    start = int(rng.integers(0, span - distance + 1))
    path = np.round(np.linspace(start, start + distance, frames)).astype(int)
    path = path if rng.random() < 0.5 else path[::-1]
    other = int(rng.integers(0, span + 1))
    horizontal = rng.random() < 0.5
    for t, p in enumerate(path):
        y, x = (other, p) if horizontal else (p, other)
        clip[t, y:y + square, x:x + square] = colour
    return clip


def write_motion_clips(root: str | Path, *, per_class: int = 24, frames: int = 16, size: int = 32, square: int = 8,
                       seed: int = 0) -> tuple[Path, Path]:
    """Clips of :func:`motion_clip`, as a store: ``root/frames`` (uint8 ``(frames, size, size,
    3)`` per clip) and ``root/annotations.json`` (clip labels; 3 of 4 clips ``train``, the rest
    ``test``)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    database = {}
    info = StoreInfo(feature="synthetic-motion", dtype="uint8", num_shards=1, step_shape=[size, size, 3])
    with StoreWriter(root / "frames", info) as writer:
        for i in range(per_class * len(MOTIONS)):
            cls = i % len(MOTIONS)
            clip = motion_clip(rng, cls, frames, size, square)
            vid = f"clip_{i:03d}"
            grid = SnippetGrid(window=1, stride=1, fps=16.0, num_snippets=frames)
            writer.write(vid, clip, VideoMeta(grid=grid, fps=16.0, num_frames=frames, duration=1.0))
            database[vid] = {"subset": "test" if i % 4 == 3 else "train", "duration": 1.0, "fps": 16.0,
                             "annotations": [{"label": MOTIONS[cls], "label_id": cls, "segment": None}]}
    (root / "annotations.json").write_text(json.dumps({"classes": MOTIONS, "database": database}))
    return root / "frames", root / "annotations.json"
