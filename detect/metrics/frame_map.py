"""Per-frame mAP for dense detection (Charades / MultiTHUMOS / TSU, MS-Temba's protocols).

Per class, the evaluated samples of every video are ranked by score and AP is the mean
precision at the positives (torchnet ``APMeter`` and Charades' ``THUMOSeventclspr``, no
interpolation). Ties keep the input order: videos in the order given (the annotation file's,
as ``Charades_v1_localize.m`` ranks with MATLAB's stable ``sort``), then samples in time order.
The mean runs over the classes with at least one positive and says how many that is
(MS-Temba divides by the classes whose AP is non-zero, which also drops classes that have
positives but score 0).

Modes, i.e. which samples of a video are evaluated:

* ``full``: every valid step, labelled by the ground truth at its centre.
* ``sampled-25``: the official Charades localisation protocol (``Charades_v1_localize.m``):
  25 time points per video, ``t_j = j / 25 · duration`` for j = 0..24 (the first at 0 s, none at
  the end), each labelled by the ground truth at ``t_j`` (closed intervals) and scored by the
  step whose centre is nearest ``t_j`` (the earlier one on a tie). Every video counts 25 points,
  however short.
* ``ms-tct-25``: MS-TCT's and MS-Temba's ``sampled_25`` (what MS-Temba's TSU numbers use):
  steps ``1, 1 + s, ..., 1 + 24 s`` with ``s = int(T / 25)``, labelled like ``full``; videos of
  25 valid steps or fewer are skipped. The integer stride covers only the start of short videos
  (T = 49 samples steps 1-25), so its numbers differ from ``sampled-25``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

MODES = ("full", "sampled-25", "ms-tct-25")
POINTS = 25


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Non-interpolated AP of one class: mean precision at each positive, in score order."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def labels_at(times: np.ndarray, segments: list[tuple[float, float, int]], num_classes: int) -> np.ndarray:
    """Multi-hot ``(N, K)`` float32: class ``k`` is on at time ``t`` when a ``(start, end, k)``
    segment has ``start <= t <= end``."""
    target = np.zeros((len(times), num_classes), dtype=np.float32)
    for start, end, cls in segments:
        target[(times >= start) & (times <= end), cls] = 1.0
    return target


@dataclass
class VideoFrames:
    """One evaluated video: per-step ``scores (T, K)`` at step centres ``times (T,)`` (s), its
    ground truth as ``(start, end, class)`` rows and its duration (s; ``sampled-25`` needs it)."""

    video_id: str
    scores: np.ndarray
    times: np.ndarray
    segments: list[tuple[float, float, int]] = field(default_factory=list)
    duration: float | None = None

    @cached_property
    def step_targets(self) -> np.ndarray:
        """Multi-hot ``(T, K)`` at the step centres (every mode and metric shares them)."""
        return labels_at(self.times, self.segments, self.scores.shape[1])

    def samples(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """``(scores (N, K), targets (N, K))`` that ``mode`` evaluates of this video."""
        length = len(self.scores)
        if mode == "full":
            return self.scores, self.step_targets
        if mode == "ms-tct-25":
            if length <= POINTS:
                return self.scores[:0], self.step_targets[:0]
            steps = np.arange(1, length, length // POINTS)[:POINTS]
            return self.scores[steps], self.step_targets[steps]
        if mode == "sampled-25":
            if self.duration is None:
                raise ValueError(f"video {self.video_id!r} has no duration; per-frame mAP 'sampled-25' places its "
                                 f"25 points by the annotated duration")
            points = np.arange(POINTS) / POINTS * self.duration
            nearest = np.abs(self.times[None, :] - points[:, None]).argmin(axis=1)
            return self.scores[nearest], labels_at(points, self.segments, self.scores.shape[1])
        raise ValueError(f"unknown per-frame mAP mode {mode!r}; expected one of {', '.join(MODES)}")


@dataclass
class FrameMapResult:
    map: float                    # over classes with a positive
    per_class_ap: list[float]     # NaN for classes without positives
    mode: str
    evaluated_classes: int
    samples: int

    @property
    def protocol(self) -> str:
        return (f"per-frame mAP ({self.mode}; {self.samples} samples; mean over the {self.evaluated_classes} classes "
                f"with positives)")


def frame_map(videos: list[VideoFrames], mode: str = "full") -> FrameMapResult:
    """Per-frame mAP of ``videos`` (ties ranked in their order) in ``mode``."""
    if not videos:
        raise ValueError("per-frame mAP needs at least one video")
    picked = [video.samples(mode) for video in videos]
    if not sum(len(scores) for scores, _ in picked):
        raise ValueError(f"per-frame mAP {mode!r} has nothing to evaluate: it skips videos of {POINTS} valid steps or "
                         f"fewer, and every video is that short")
    s = np.concatenate([scores for scores, _ in picked])
    t = np.concatenate([targets for _, targets in picked]) > 0
    ap = np.array([average_precision(s[:, k], t[:, k]) for k in range(s.shape[1])])
    valid = ~np.isnan(ap)
    return FrameMapResult(float(ap[valid].mean()) if valid.any() else 0.0, ap.tolist(), mode, int(valid.sum()), len(s))
