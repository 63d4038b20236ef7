"""Ground-truth characteristics of the DETAD diagnosis (Alwassel et al., ECCV 2018) and their bins.

A characteristic is read from the annotation file when every evaluated instance carries it
(DETAD's augmented files do: ``coverage``, ``length``, ``num-instances``, ``context-size``,
``context-distance``, ``agreement``), else computed here:

* ``length``: ``end - start`` in seconds;
* ``coverage``: length / the video's duration;
* ``num-instances``: ground-truth instances in the video, of any label;
* ``context-size`` and ``context-distance`` (our definition; DETAD's code ships the values, not
  how they were made): the three windows of the instance's own length right before it and the
  three right after it, inside the video; ``context-size`` counts those (0-6) that overlap another
  instance of any label, ``context-distance`` is the farthest such window (1 near, 2 medium,
  3 far; 0 when none, DETAD's ``Inf``).
``agreement`` needs several annotators, so it only comes from the file.

Bins are DETAD's, applied as its ``pandas.cut(..., include_lowest=True)``: right-closed
intervals, the first one closed on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bins:
    edges: tuple[float, ...]
    labels: tuple[str, ...]

    def to_json(self) -> dict[str, list]:
        """Edges (``"inf"`` for infinity: JSON has no number for it) and labels."""
        return {"edges": [e if np.isfinite(e) else "inf" for e in self.edges], "labels": list(self.labels)}

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value, -1 outside every bin (or NaN)."""
        edges = np.asarray(self.edges, dtype=np.float64)
        idx = np.searchsorted(edges, values, side="left") - 1   # edges[i] < v <= edges[i+1]
        idx[values == edges[0]] = 0
        idx[(values < edges[0]) | (values > edges[-1]) | np.isnan(values)] = -1
        return idx


_SIZE = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
ACTIVITYNET = {
    "coverage": Bins((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), ("XS", "S", "M", "L", "XL")),
    "length": Bins((0.0, 30.0, 60.0, 120.0, 180.0, np.inf), ("XS", "S", "M", "L", "XL")),
    "num-instances": Bins((-1.0, 1.0, 4.0, 8.0, np.inf), ("XS", "S", "M", "L")),
    "context-size": Bins((-1.0, 0.0) + _SIZE, ("0", "1", "2", "3", "4", "5", "6")),
    "context-distance": Bins((-1.0, 0.0, 1.0, 2.0, 3.0), ("Inf", "N", "M", "F")),
    "agreement": Bins((0.0, 0.2, 0.4, 0.6, 0.8, 1.0), ("XW", "W", "M", "H", "XH")),
}
THUMOS14 = dict(ACTIVITYNET, **{
    "coverage": Bins((0.0, 0.02, 0.04, 0.06, 0.08, 1.0), ("XS", "S", "M", "L", "XL")),
    "length": Bins((0.0, 3.0, 6.0, 12.0, 18.0, np.inf), ("XS", "S", "M", "L", "XL")),
    "num-instances": Bins((-1.0, 1.0, 40.0, 80.0, np.inf), ("XS", "S", "M", "L")),
})


@dataclass(frozen=True)
class Preset:
    """DETAD's settings for a dataset: tIoU thresholds and characteristic bins."""

    tiou: tuple[float, ...]
    bins: dict[str, Bins]


PRESETS = {
    "activitynet": Preset(tuple(float(t) for t in np.linspace(0.5, 0.95, 10)), ACTIVITYNET),
    "thumos14": Preset((0.5,), THUMOS14),   # DETAD's --is_thumos14
}
COMPUTED = ("coverage", "length", "num-instances", "context-size", "context-distance")
CONTEXT_WINDOWS = 3


def context(start: np.ndarray, end: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """``(context-size, context-distance)`` of each instance of one video (see the module doc)."""
    length = end - start
    size = np.zeros(len(start))
    distance = np.zeros(len(start))
    for i in range(len(start)):
        others = np.arange(len(start)) != i
        for k in range(1, CONTEXT_WINDOWS + 1):
            for lo, hi in ((start[i] - k * length[i], start[i] - (k - 1) * length[i]),
                           (end[i] + (k - 1) * length[i], end[i] + k * length[i])):
                lo, hi = max(lo, 0.0), min(hi, duration)
                if hi <= lo:
                    continue
                if np.any(others & (np.minimum(hi, end) - np.maximum(lo, start) > 0)):
                    size[i] += 1
                    distance[i] = max(distance[i], k)
    return size, distance
