"""argparse types for numeric options: the value is checked where it is parsed, so a value out
of range is argparse's one-line error naming the option, before any file is read or written."""
from __future__ import annotations

import argparse
import math


class Number:
    """A number of ``kind`` (int or float) within ``[low, high]`` (``open_low``/``open_high``
    exclude the bound); infinities and NaN are refused."""

    def __init__(self, kind: type = int, low: float | None = None, high: float | None = None, *,
                 open_low: bool = False, open_high: bool = False) -> None:
        self.kind, self.low, self.high, self.open_low, self.open_high = kind, low, high, open_low, open_high
        self.__name__ = kind.__name__  # what argparse calls the type in its own messages

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}")
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return f"{'<' if self.open_high else '<='} {self.high:g}" if self.high is not None else "a number"

    def __call__(self, text: str):
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if self.kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        above = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        if below or above or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value


COUNT = Number(int, 1)                             # sizes, shards, windows, strides: at least 1
NON_NEGATIVE = Number(int, 0)                      # workers (0: in the main process), offsets, gaps
POSITIVE = Number(float, 0, open_low=True)         # seconds, frame rates
FRACTION = Number(float, 0, 1, open_low=True, open_high=True)  # score thresholds
