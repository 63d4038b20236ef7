"""Inference forwards replayed from CUDA graphs, one graph per length bucket.

At batch 1 a detector's forward on a GPU is bound by launching its few hundred small kernels, not
by their arithmetic: DBM inference on THUMOS-like videos (forward and decoding) kept an H200 busy
~6 ms per video (``benchmarks/profile_detector.py``), while the forward alone took 22-24 ms. A
CUDA graph launches them all at once. A graph is fixed to its input shape, and every video has
its own length, so videos are padded up to one of four lengths per octave (:func:`bucket_length`,
at most 25% more steps) and each bucket gets one graph.
Padding does not change the result: every model here is exact under padding (padded steps never
reach valid ones; ``tests/test_padding.py``), and outputs on padded steps are masked out.

Used by the tasks' ``predict`` on CUDA; ``MAMBA_TAD_CUDA_GRAPHS=0`` runs the plain forward.
"""
from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .graphs import capture


def bucket_length(length: int, multiple: int) -> int:
    """The bucket of ``length`` steps: rounded up to a quarter of its octave (at least to
    ``multiple``), so there are four buckets per doubling and at most 25% padding."""
    step = max(multiple, 2 ** max(0, length.bit_length() - 3))
    step = -(-step // multiple) * multiple
    return -(-length // step) * step


@dataclasses.dataclass(frozen=True)
class _Slot:
    index: int


def _map_leaves(obj: Any, leaf: type, fn) -> Any:
    """``obj`` (nested dataclasses, lists, tuples, dicts) with every ``leaf`` instance replaced by ``fn(it)``."""
    if isinstance(obj, leaf):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _map_leaves(getattr(obj, f.name), leaf, fn)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_leaves(x, leaf, fn) for x in obj)
    if isinstance(obj, dict):
        return {k: _map_leaves(v, leaf, fn) for k, v in obj.items()}
    return obj


def flatten(obj: Any, leaves: list[torch.Tensor]) -> Any:
    """``obj`` with each tensor moved to ``leaves`` and replaced by its slot; :func:`unflatten`
    puts tensors back."""
    def to_slot(t: torch.Tensor) -> _Slot:
        leaves.append(t)
        return _Slot(len(leaves) - 1)
    return _map_leaves(obj, torch.Tensor, to_slot)


def unflatten(spec: Any, leaves: list[torch.Tensor]) -> Any:
    return _map_leaves(spec, _Slot, lambda slot: leaves[slot.index])


class GraphedForward:
    """``model(**inputs)`` without gradients. For a model that declares ``graph_capturable = True``
    (no host syncs or host-to-device copies in its forward), inputs of exactly ``features (B, C,
    T)`` and ``mask (B, T)`` on CUDA are padded to the bucket of T and replayed from that bucket's
    graph (outputs then cover the bucket's steps, the extra ones masked); anything else runs the
    plain forward. Keeps at most ``max_graphs`` graphs, least recently used dropped."""

    def __init__(self, model: nn.Module, max_graphs: int = 32) -> None:
        self.model, self.max_graphs = model, max_graphs
        self.multiple = getattr(model, "length_multiple", 1)
        self.graphs: OrderedDict[tuple, tuple] = OrderedDict()

    @torch.no_grad()
    def __call__(self, **inputs: torch.Tensor) -> Any:
        if (not getattr(self.model, "graph_capturable", False) or inputs.keys() != {"features", "mask"}
                or not inputs["features"].is_cuda
                or os.environ.get("MAMBA_TAD_CUDA_GRAPHS", "1") == "0"):
            return self.model(**inputs)
        features, mask = inputs["features"], inputs["mask"]
        pad = bucket_length(features.shape[-1], self.multiple) - features.shape[-1]
        features, mask = F.pad(features, (0, pad)), F.pad(mask, (0, pad))
        key = (features.shape, features.dtype, features.device, torch.is_autocast_enabled("cuda"),
               torch.get_autocast_dtype("cuda"))
        entry = self.graphs.get(key)
        if entry is None:
            spec = []
            amp, amp_dtype = key[-2:]

            def run(x, m):
                leaves: list[torch.Tensor] = []
                # autocast's cache of cast weights would be freed after capture while the graph
                # still reads it: capture without it (the PyTorch CUDA-graph notes say the same)
                with torch.autocast("cuda", dtype=amp_dtype, enabled=amp, cache_enabled=False):
                    spec[:] = [flatten(self.model(x, m), leaves)]
                return tuple(leaves)

            graph, static_in, static_out = capture(run, (features, mask))
            entry = self.graphs[key] = (graph, static_in, static_out, spec[0])
            if len(self.graphs) > self.max_graphs:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        graph, static_in, static_out, spec = entry
        for buffer, t in zip(static_in, (features, mask)):
            buffer.copy_(t)
        graph.replay()
        return unflatten(spec, [o.clone() for o in static_out])
