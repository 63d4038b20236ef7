"""Regenerate this sample: planted-action snippet features in the THUMOS14 release layout.

24 videos (16 validation, 8 test) at 30 fps on an I3D-like grid (window 16, stride 4, tail
drop); each feature is 32-d noise plus a class prototype on the snippets whose centre lies
inside an action, so that a detector learns the two classes in seconds on a CPU.
Run: ``python make_sample.py`` (deterministic).
"""
import json
from pathlib import Path

import numpy as np

FPS, WINDOW, STRIDE, DIM = 30.0, 16, 4, 32
CLASSES = ["BaseballPitch", "HighJump"]


def videos(rng: np.random.Generator) -> dict:
    """id -> (subset, frames, [(class, start_s, end_s), ...]): 2-4 actions of 2-7 s per video."""
    out = {}
    for i in range(24):
        subset = "validation" if i < 16 else "test"
        frames = int(rng.integers(600, 1500))
        actions, t = [], float(rng.uniform(1.0, 4.0))
        while t < frames / FPS - 8:
            length = float(rng.uniform(2.0, 7.0))
            actions.append((int(rng.integers(2)), round(t, 2), round(t + length, 2)))
            t += length + float(rng.uniform(2.0, 8.0))
        out[f"video_{subset}_{i + 1:07d}"] = (subset, frames, actions)
    return out


def main() -> None:
    here = Path(__file__).parent
    rng = np.random.default_rng(2026)
    prototypes = 1.5 * rng.standard_normal((len(CLASSES), DIM))
    (here / "features").mkdir(exist_ok=True)
    for old in (here / "features").glob("*.npy"):
        old.unlink()
    database = {}
    for vid, (subset, frames, actions) in videos(rng).items():
        n = (frames - WINDOW) // STRIDE + 1
        centres = (np.arange(n) * STRIDE + WINDOW / 2) / FPS
        feats = 0.5 * rng.standard_normal((n, DIM))
        for cls, start, end in actions:
            feats[(centres >= start) & (centres <= end)] += prototypes[cls]
        np.save(here / "features" / f"{vid}.npy", feats.astype(np.float16))
        database[vid] = {
            "subset": subset, "fps": FPS, "duration": frames / FPS,
            "annotations": [{"label": CLASSES[c], "label_id": c, "segment": [s, e]} for c, s, e in actions],
        }
    (here / "annotations.json").write_text(json.dumps({"database": database}, indent=2) + "\n")


if __name__ == "__main__":
    main()
