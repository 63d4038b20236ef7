"""Synthetic dense-detection data whose labels need temporal context, written as a store and
canonical annotations: what the ``dense`` models are compared on without a download.

Each action announces its class only at its onset: for ``cue_steps`` steps the features carry
the class's prototype; for the rest of the action they carry one "in action" prototype shared
by every class. A model that sees only a few neighbouring steps can tell *that* an action is on
but not *which*; one that carries state from the onset can tell both. Actions may overlap (a
new one starts before the previous ends with probability ``overlap``).
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
