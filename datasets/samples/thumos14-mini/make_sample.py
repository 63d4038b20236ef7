"""Regenerate this sample: planted-action snippet features in the THUMOS14 release layout.

Four videos at 30 fps with I3D-like grid (window 16, stride 4, tail drop); each feature is
64-d noise, plus a class prototype on the snippets whose centre lies inside an action, so
that a detector can learn the two classes. Run: ``python make_sample.py`` (deterministic).
"""
import json
from pathlib import Path

import numpy as np

FPS, WINDOW, STRIDE, DIM = 30.0, 16, 4, 64
CLASSES = ["BaseballPitch", "HighJump"]
VIDEOS = {  # id: (subset, frames, [(class, start_s, end_s), ...])
    "video_validation_0000051": ("validation", 900, [(0, 3.0, 7.5), (1, 15.2, 21.0)]),
    "video_validation_0000052": ("validation", 1200, [(1, 5.0, 12.0), (0, 25.0, 29.4)]),
    "video_test_0000004": ("test", 750, [(0, 2.5, 6.0), (0, 14.0, 18.5)]),
    "video_test_0000006": ("test", 1050, [(1, 8.0, 16.0)]),
}


def main() -> None:
    here = Path(__file__).parent
    rng = np.random.default_rng(2026)
    prototypes = rng.standard_normal((len(CLASSES), DIM))
    (here / "features").mkdir(exist_ok=True)
    database = {}
    for vid, (subset, frames, actions) in VIDEOS.items():
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
