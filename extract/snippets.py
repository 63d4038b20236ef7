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


def snippet_batches(chunks: Iterable[np.ndarray], window: int, stride: int, tail: str = "drop",
                    batch: int = 32) -> Iterator[np.ndarray]:
    """Yield ``(n <= batch, window, H, W, C)`` arrays of consecutive snippets, in order."""
    if tail not in ("drop", "pad"):
        raise ValueError(f"snippet models need whole windows: tail must be 'drop' or 'pad', got {tail!r}")
    buf: np.ndarray | None = None
    base = 0            # frame index of buf[0]
    k = 0               # next snippet
    total = 0
    pending: list[np.ndarray] = []
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        buf = chunk if buf is None else np.concatenate([buf, chunk])
        total += len(chunk)
        while k * stride + window <= total:
            start = k * stride - base
            pending.append(buf[start:start + window])
            k += 1
            if len(pending) == batch:
                yield np.stack(pending)
                pending = []
        keep_from = k * stride - base
        if keep_from > 0:
            buf = buf[keep_from:]
            base += keep_from
    if total == 0:
        return
    for k in range(k, count_snippets(total, window, stride, tail)):
        start = k * stride - base
        piece = buf[start:]
        pad = np.repeat(buf[-1:], window - len(piece), axis=0)
        pending.append(np.concatenate([piece, pad]))
        if len(pending) == batch:
            yield np.stack(pending)
            pending = []
    if pending:
        yield np.stack(pending)
