"""Per-frame mAP for dense detection (Charades / MultiTHUMOS / TSU, MS-Temba's protocols).

Every valid step of every evaluated video is one sample; per class, samples are ranked by
score and AP is the mean precision at the positives (torchnet ``APMeter``, no interpolation;
ties keep video then step order). The mean runs over the classes with at least one positive
and says how many that is (MS-Temba divides by the classes whose AP is non-zero, which also
drops classes that have positives but score 0).

* ``full``: every step.
* ``sampled-25``: 25 steps per video at ``floor((i + 0.5) * T / 25)``, spread over the whole
  video (the Charades localisation protocol's intent; MS-Temba's ``int(T/25)`` stride from 1
  covers only the start of short videos). Videos shorter than 25 steps contribute every step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODES = ("full", "sampled-25")


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP of one class: mean precision at each positive, in score order."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def sample_steps(length: int, mode: str) -> np.ndarray:
    if mode == "full" or length <= 25:
        return np.arange(length)
    if mode == "sampled-25":
        return np.floor((np.arange(25) + 0.5) * length / 25).astype(np.int64)
    raise ValueError(f"unknown per-frame mAP mode {mode!r}; expected one of {MODES}")


@dataclass
class FrameMapResult:
    map: float                    # over classes with a positive
    per_class_ap: list[float]     # NaN for classes without positives
    mode: str
    evaluated_classes: int
    samples: int

    @property
    def protocol(self) -> str:
        return (f"per-frame mAP ({self.mode}; {self.samples} steps; mean over the {self.evaluated_classes} classes "
                f"with positives)")


def frame_map(scores: list[np.ndarray], targets: list[np.ndarray], mode: str = "full") -> FrameMapResult:
    """``scores`` and multi-hot ``targets``: per video ``(T, K)``, valid steps only."""
    if len(scores) != len(targets) or not scores:
        raise ValueError(f"need one target per score array, got {len(scores)} and {len(targets)}")
    picked = [sample_steps(len(s), mode) for s in scores]
    s = np.concatenate([x[i] for x, i in zip(scores, picked)])
    t = np.concatenate([y[i] for y, i in zip(targets, picked)]) > 0
    ap = np.array([average_precision(s[:, k], t[:, k]) for k in range(s.shape[1])])
    valid = ~np.isnan(ap)
    return FrameMapResult(float(ap[valid].mean()) if valid.any() else 0.0, ap.tolist(), mode, int(valid.sum()), len(s))
