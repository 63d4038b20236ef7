"""A synthetic dataset with planted actions: noise features carrying a class signal over known segments."""
from __future__ import annotations

import json

import numpy as np

from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta

CLASSES = ["jump", "throw", "spin"]


def make_planted(root, n_train=24, n_test=8, dim=16, fps=10.0, window=4, stride=2, seed=0):
    """Writes ``root/store`` and ``root/ann.json``; returns their paths."""
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((len(CLASSES), dim)) * 2
    database = {}
    info = StoreInfo(feature="planted", dtype="float32", num_shards=2)
    with StoreWriter(root / "store", info) as writer:
        for i in range(n_train + n_test):
            vid = f"{'train' if i < n_train else 'test'}_{i:03d}"
            rows = int(rng.integers(60, 120))
            grid = SnippetGrid(window=window, stride=stride, fps=fps, num_snippets=rows)
            centres = grid.centre_seconds()
            duration = float(grid.index_to_seconds(rows - 1) + window / 2 / fps)
            feats = rng.standard_normal((rows, dim)) * 0.5
            anns, t = [], float(rng.uniform(0.5, 3.0))
            while t < duration - 3:
                length = float(rng.uniform(1.0, 4.0))
                cls = int(rng.integers(len(CLASSES)))
                feats[(centres >= t) & (centres <= t + length)] += protos[cls]
                anns.append({"label": CLASSES[cls], "label_id": cls, "segment": [round(t, 3), round(t + length, 3)]})
                t += length + float(rng.uniform(1.0, 4.0))
            writer.write(vid, feats.astype(np.float32), VideoMeta(grid=grid, fps=fps, duration=duration))
            database[vid] = {"subset": "training" if i < n_train else "testing", "duration": duration, "fps": fps,
                             "annotations": anns}
    (root / "ann.json").write_text(json.dumps({"classes": CLASSES, "database": database}))
    return root / "store", root / "ann.json"


def tiny_config(store, ann, output, model="actionmamba-dbm", epochs=13, **extra):
    backbone = {"input_dim": 16, "embd_dim": 16, "arch": [2, 1, 3]}
    if model != "actionformer-conv":
        backbone["drop_path"] = 0.0
    if model == "actionformer":
        backbone["window"] = 9
    cfg = {
        "model": {"name": model, "num_classes": 3, "head_dim": 16, "backbone": backbone,
                  "regression_range": [[0, 4], [4, 8], [8, 16], [16, 10000]]},
        "data": {"streams": {"features": [str(store)]}, "annotations": str(ann), "train_split": "training",
                 "val_split": "training", "val_holdout": 0.2, "test_split": "testing", "max_seq_len": 128,
                 "num_workers": 0},
        "optim": {"lr": 3e-3, "epochs": epochs, "warmup_epochs": 1, "batch_size": 4, "amp": "none",
                  "weight_decay": 0.01},
        "task": {"tiou": [0.3, 0.5, 0.7]},
        "eval": {"every": 4},
        "output": str(output), "seed": 0, "log_every": 5,
    }
    for key, value in extra.items():
        section, _, name = key.partition("__")
        cfg[section][name] = value
    return cfg


def make_planted_clips(root, n_per_class=8, dim=12, seed=0):
    """Clips of one class each (class signal on every step, varying length); ``root/store``,
    ``root/ann.json`` with clip-level labels (``segment: null``)."""
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((len(CLASSES), dim)) * 1.5
    database = {}
    with StoreWriter(root / "store", StoreInfo(feature="clips", dtype="float32", num_shards=1)) as writer:
        for i in range(n_per_class * len(CLASSES)):
            cls, rows = i % len(CLASSES), int(rng.integers(6, 16))
            vid = f"clip_{i:03d}"
            feats = rng.standard_normal((rows, dim)) + protos[cls]
            grid = SnippetGrid(window=4, stride=4, fps=10.0, num_snippets=rows)
            writer.write(vid, feats.astype(np.float32), VideoMeta(grid=grid, fps=10.0, duration=rows * 0.4))
            database[vid] = {"subset": "test" if i % 4 == 3 else "train", "duration": rows * 0.4, "fps": 10.0,
                             "annotations": [{"label": CLASSES[cls], "label_id": cls, "segment": None}]}
    (root / "ann.json").write_text(json.dumps({"classes": CLASSES, "database": database}))
    return root / "store", root / "ann.json"


def task_config(store, ann, output, model, **model_fields):
    """A tiny run of ``model`` (``frame-conv`` or ``clip-pool``) on a planted store."""
    return {"model": {"name": model, "num_classes": 3, "input_dim": 16, **model_fields},
            "data": {"streams": {"features": [str(store)]}, "annotations": str(ann), "train_split": "training",
                     "val_split": "training", "val_holdout": 0.2, "test_split": "testing", "max_seq_len": 64,
                     "num_workers": 0},
            "optim": {"lr": 3e-3, "epochs": 11, "warmup_epochs": 1, "batch_size": 4, "amp": "none",
                      "weight_decay": 0.01, "ema_decay": 0.9},
            "eval": {"every": 2}, "output": str(output), "seed": 0, "log_every": 5}
