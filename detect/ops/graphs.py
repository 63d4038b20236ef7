"""Replaying the pure-PyTorch scan's loops as CUDA graphs.

The chunked scan issues a few thousand small kernels per call; on a GPU its time is Python and
launch overhead, not arithmetic. For a shape seen repeatedly (training pads every batch to the
same length), :func:`run_loops` captures the loop function once into a CUDA graph and replays it:
inputs are copied into the graph's static buffers and outputs are cloned out, so one graph can
serve every call site of that shape. One-off shapes (inference on videos of varying length) run
eagerly.

:func:`capture` is shared with :mod:`detect.ops.graphed_forward` (detector forwards at inference).

On by default; ``MAMBA_TAD_CUDA_GRAPHS=0`` turns capture off. Each captured shape keeps its own
memory pool (at most 64 graphs, least recently used dropped), trading some memory for speed:
THUMOS-shaped DBM training on an H200 ran at 9.5 instead of 8.1 it/s with a 2.2 instead of
1.9 GiB peak (docs/BENCHMARKS.md). :func:`clear_graphs` frees them.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable

import torch

_CAPTURE_AFTER = 2        # eager calls of a shape before it is captured
_MAX_GRAPHS = 64          # each graph keeps its own memory pool
_graphs: OrderedDict[tuple, tuple] = OrderedDict()
_seen: dict[tuple, int] = {}


def capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being captured on ``device``'s current stream: state made now lives
    in the graph's memory, and the host must not wait for the GPU. Never asks CUDA for a CPU
    device (asking would initialise CUDA, or fail without a driver)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _key(fn: Callable, tensors: tuple[torch.Tensor, ...]) -> tuple:
    return (fn.__name__, tensors[0].device, *((t.shape, t.dtype, t.stride()) for t in tensors))


def run_loops(fn: Callable[..., tuple[torch.Tensor, ...]], *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``fn(*tensors)``, replayed from a CUDA graph when the tensors are on a GPU and the shape recurs."""
    if (not tensors[0].is_cuda or os.environ.get("MAMBA_TAD_CUDA_GRAPHS", "1") == "0"
            or capturing(tensors[0].device)):
        return fn(*tensors)
    key = _key(fn, tensors)
    entry = _graphs.get(key)
    if entry is None:
        if len(_seen) > 10_000:  # many one-off shapes (inference): forget them
            _seen.clear()
        _seen[key] = _seen.get(key, 0) + 1
        if _seen[key] <= _CAPTURE_AFTER:
            return fn(*tensors)
        with torch.autocast("cuda", enabled=False):
            entry = capture(fn, tensors)
        _graphs[key] = entry
        if len(_graphs) > _MAX_GRAPHS:
            _graphs.popitem(last=False)
    else:
        _graphs.move_to_end(key)
    graph, static_in, static_out = entry
    for buffer, t in zip(static_in, tensors):
        buffer.copy_(t)
    graph.replay()
    return tuple(o.clone() for o in static_out)


def clear_graphs() -> None:
    """Drop every captured graph and its memory pool."""
    _graphs.clear()
    _seen.clear()


def capture(fn: Callable[..., tuple[torch.Tensor, ...]], tensors: tuple[torch.Tensor, ...]):
    """``(graph, static inputs, static outputs)`` of ``fn`` on copies of ``tensors``, under the
    caller's autocast state. Replay: copy into the static inputs, ``graph.replay()``, read the outputs."""
    static_in = tuple(t.detach().clone() for t in tensors)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(*static_in)  # warm-up on a side stream, as CUDA graph capture requires
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    # thread_local: the autograd engine runs backward on its own thread
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        static_out = fn(*static_in)
    return graph, static_in, static_out
