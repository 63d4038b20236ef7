"""Cutting a stream of frames into snippets on the store's grid, with bounded memory.

Snippet ``k`` covers frames ``[k * stride, k * stride + window)``. Frames arrive in chunks; only
the frames still needed by upcoming snippets are kept, so an hour-long video never sits in
memory. Snippets that run past the last frame (a video shorter than one window, or the ``pad``
tail policy) repeat the last frame. The number of snippets is always
:func:`extract.store.count_snippets` of the number of frames decoded.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from .store.grid import count_snippets


def _cat(parts):
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(parts)


def _repeat_last(frames, n: int):
    """``n`` copies of the last frame, same kind (numpy or torch) as ``frames``."""
    if isinstance(frames, np.ndarray):
        return np.repeat(frames[-1:], n, axis=0)
    return frames[-1:].expand(n, *frames.shape[1:])


class SnippetCutter:
    """Push frame chunks in, get whole snippets ``(window, H, W, C)`` out, in order.

    Chunks may be numpy arrays or torch tensors (on any device: the runner keeps frames on the
    GPU, where snippets that overlap share their frames instead of being copied per snippet).
    """

    def __init__(self, window: int, stride: int, tail: str = "drop") -> None:
        if tail not in ("drop", "pad"):
            raise ValueError(f"snippet models need whole windows: tail must be 'drop' or 'pad', got {tail!r}")
        self.window, self.stride, self.tail = window, stride, tail
        self.buf = None
        self.base = 0       # frame index of buf[0]
        self.next = 0       # next snippet
        self.total = 0

    def push(self, chunk: np.ndarray) -> list[np.ndarray]:
        if len(chunk) == 0:
            return []
        self.buf = chunk if self.buf is None else _cat([self.buf, chunk])
        self.total += len(chunk)
        out = []
        while self.next * self.stride + self.window <= self.total:
            start = self.next * self.stride - self.base
            out.append(self.buf[start:start + self.window])
            self.next += 1
        keep_from = self.next * self.stride - self.base
        if keep_from > 0:  # frames no upcoming snippet needs
            self.buf = self.buf[keep_from:]
            self.base += keep_from
        return out

    def finish(self) -> list[np.ndarray]:
        """The snippets that run past the last frame (padded by repeating it)."""
        if self.total == 0:
            return []
        out = []
        for k in range(self.next, count_snippets(self.total, self.window, self.stride, self.tail)):
            piece = self.buf[k * self.stride - self.base:]
            out.append(_cat([piece, _repeat_last(self.buf, self.window - len(piece))]))
        self.next = k + 1 if out else self.next
        return out


def snippet_batches(chunks: Iterable[np.ndarray], window: int, stride: int, tail: str = "drop",
                    batch: int = 32) -> Iterator[np.ndarray]:
    """Yield ``(n <= batch, window, H, W, C)`` arrays of consecutive snippets, in order."""
    cutter = SnippetCutter(window, stride, tail)
    pending: list[np.ndarray] = []
    for chunk in chunks:
        pending.extend(cutter.push(chunk))
        while len(pending) >= batch:
            yield np.stack(pending[:batch])
            pending = pending[batch:]
    pending.extend(cutter.finish())
    for i in range(0, len(pending), batch):
        yield np.stack(pending[i:i + batch])
