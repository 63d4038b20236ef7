"""The snippet grid: which frames each feature vector covers, and feature index <-> seconds.

A snippet feature summarises ``window`` consecutive frames of a frame sequence sampled at
``fps``. Snippet ``k`` covers frames ``[start_k, start_k + window)`` with
``start_k = offset + k * stride`` (or an explicit list of starts). Each feature sits at the
centre of its snippet, so feature index ``g`` (fractional allowed) is at

    t(g) = (offset + g * stride + window / 2) / fps        seconds

and the inverse is ``g(t) = (t * fps - window / 2 - offset) / stride``. This is the
ActionFormer convention (``feat_stride``, ``num_frames``); every part of ``detect`` converts
through :meth:`SnippetGrid.index_to_seconds` / :meth:`SnippetGrid.seconds_to_index`.

Tail policies say what happens to frames after the last full window:

* ``drop``: no snippet starts unless a whole window fits: ``n = floor((N - window) / stride) + 1``.
* ``pad``: snippets start until every frame is covered, windows running past the end repeat
  the last frame: ``n = ceil((N - window) / stride) + 1``.
* ``truncate``: the same count as ``pad``, but the last windows are shorter (e.g. a mean over
  the leftover frames, MS-Temba's CLIP features).

Under every policy a video shorter than one window yields exactly one snippet (padded or
truncated); an empty feature array is never produced.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

TAIL_POLICIES = ("drop", "pad", "truncate")


def count_snippets(num_frames: int, window: int, stride: int, tail: str = "drop", offset: int = 0) -> int:
    """Number of snippets a grid yields over ``num_frames`` frames (see the module docstring)."""
    if tail not in TAIL_POLICIES:
        raise ValueError(f"unknown tail policy {tail!r}; expected one of {TAIL_POLICIES}")
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got num_frames={num_frames}")
    usable = num_frames - offset
    if usable <= window:
        return 1
    if tail == "drop":
        return (usable - window) // stride + 1
    return math.ceil((usable - window) / stride) + 1


@dataclass(frozen=True)
class SnippetGrid:
    """Where the ``num_snippets`` features of one video sit in time.

    ``fps`` is the rate of the frame sequence the grid indexes: the native rate, or the
    resampled one when frames were resampled before extraction.
    """

    window: float        # frames; fractional only for features resized to a fixed length
    stride: float
    fps: float
    num_snippets: int
    offset: int = 0
    tail: str = "drop"
    starts: tuple[int, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {self.window}/{self.stride}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if self.num_snippets < 1:
            raise ValueError(f"a grid needs at least one snippet, got {self.num_snippets}")
        if self.tail not in TAIL_POLICIES:
            raise ValueError(f"unknown tail policy {self.tail!r}; expected one of {TAIL_POLICIES}")
        if self.starts is not None:
            object.__setattr__(self, "starts", tuple(int(s) for s in self.starts))
            if len(self.starts) != self.num_snippets:
                raise ValueError(f"{len(self.starts)} explicit starts for {self.num_snippets} snippets")

    @classmethod
    def for_video(cls, num_frames: int, window: int, stride: int, fps: float,
                  tail: str = "drop", offset: int = 0) -> "SnippetGrid":
        """The grid a regular extractor produces over ``num_frames`` frames."""
        n = count_snippets(num_frames, window, stride, tail, offset)
        return cls(window=window, stride=stride, fps=float(fps), num_snippets=n, offset=offset, tail=tail)

    def start_frames(self) -> np.ndarray:
        """Frame index of each snippet's first frame, shape ``(num_snippets,)``."""
        if self.starts is not None:
            return np.asarray(self.starts, dtype=np.int64)
        return self.offset + self.stride * np.arange(self.num_snippets, dtype=np.int64)

    def _start_at(self, index: np.ndarray) -> np.ndarray:
        if self.starts is None:
            return self.offset + index * self.stride
        # Explicit starts: interpolate between them, extrapolate with the nominal stride.
        known = np.asarray(self.starts, dtype=np.float64)
        k = np.arange(len(known), dtype=np.float64)
        inside = np.interp(index, k, known)
        below = known[0] + (index - k[0]) * self.stride
        above = known[-1] + (index - k[-1]) * self.stride
        return np.where(index < 0, below, np.where(index > k[-1], above, inside))

    def index_to_seconds(self, index: Any) -> Any:
        """Time in seconds of (fractional) feature index ``index``: the snippet centre."""
        g = np.asarray(index, dtype=np.float64)
        t = (self._start_at(g) + self.window / 2.0) / self.fps
        return float(t) if t.ndim == 0 else t

    def seconds_to_index(self, seconds: Any) -> Any:
        """Fractional feature index of time ``seconds``; inverse of :meth:`index_to_seconds`."""
        t = np.asarray(seconds, dtype=np.float64)
        start = t * self.fps - self.window / 2.0
        if self.starts is None:
            g = (start - self.offset) / self.stride
        else:
            known = np.asarray(self.starts, dtype=np.float64)
            k = np.arange(len(known), dtype=np.float64)
            g = np.interp(start, known, k)
            g = np.where(start < known[0], (start - known[0]) / self.stride,
                         np.where(start > known[-1], k[-1] + (start - known[-1]) / self.stride, g))
        return float(g) if g.ndim == 0 else g

    def centre_seconds(self) -> np.ndarray:
        """Centre time of every snippet, shape ``(num_snippets,)``."""
        return np.asarray(self.index_to_seconds(np.arange(self.num_snippets)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["starts"] = list(self.starts) if self.starts is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SnippetGrid":
        known = {"window", "stride", "fps", "num_snippets", "offset", "tail", "starts"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown snippet grid fields {sorted(unknown)}")
        return cls(**d)
