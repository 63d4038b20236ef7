"""Scans under autograd, and recomputing a region around scans without running the scans again.

A scan kernel here is an object with ``forward(*inputs, save) -> (outputs, extras)`` and
``backward(inputs, extras, grads) -> input grads``: ``extras`` are what its backward needs
besides its inputs (the chunk states; for mamba-ssm's kernel also its output before the gate).
:func:`run_scan` calls it through autograd, or, while a :class:`ScanTape` is active, records or
replays it.

:func:`recompute_without_scans` is activation checkpointing that skips the scans: its forward
runs a region (conv, projections, scans) without autograd and records each scan's outputs and
extras; its backward runs the region again with autograd, where each scan hands back its
recorded outputs instead of scanning and, going backward, runs its backward kernel on the
recomputed inputs and its extras. So only the region's inputs, the scans' outputs and their chunk
states are kept, as in mamba-ssm's fused ``mamba_inner_fn``, and the cheap parts (conv, small
projections) run twice but the scans once. ``torch.utils.checkpoint`` would scan again in backward.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Sequence

import torch

_state = threading.local()   # the backward pass runs on autograd's own thread: replaying happens there


class ScanTape:
    """Each scan's ``(outputs, extras)`` in call order: recorded once, replayed once."""

    def __init__(self) -> None:
        self.entries: list[tuple[tuple, tuple]] = []
        self.replaying = False
        self.position = 0

    @contextlib.contextmanager
    def active(self, replaying: bool):
        previous = getattr(_state, "tape", None)
        _state.tape, self.replaying, self.position = self, replaying, 0
        try:
            yield self
        finally:
            _state.tape = previous
        if replaying and self.position != len(self.entries):
            raise RuntimeError(f"the recomputed region ran {self.position} scans where {len(self.entries)} "
                               f"were recorded: it must run the same scans both times")


class _Scan(torch.autograd.Function):
    """A scan kernel under autograd."""

    @staticmethod
    def forward(ctx, kernel, *inputs):
        outputs, extras = kernel.forward(*inputs, save=any(ctx.needs_input_grad))
        _keep(ctx, kernel, inputs, extras)
        ctx.mark_non_differentiable(*(outputs[i] for i in kernel.non_differentiable))
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        return None, *_kernel_backward(ctx, grads)


class _Replayed(torch.autograd.Function):
    """A recorded scan: its outputs as recorded, its backward on the inputs recomputed now."""

    @staticmethod
    def forward(ctx, kernel, recorded, *inputs):
        outputs, extras = recorded
        _keep(ctx, kernel, inputs, extras)
        outputs = tuple(o.detach() for o in outputs)
        ctx.mark_non_differentiable(*(outputs[i] for i in kernel.non_differentiable))
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        return None, None, *_kernel_backward(ctx, grads)


def _keep(ctx, kernel, inputs: Sequence[Any], extras: Sequence[torch.Tensor]) -> None:
    tensors = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    ctx.kernel, ctx.tensor_slots, ctx.n_extras = kernel, tensors, len(extras)
    ctx.constants = [None if isinstance(x, torch.Tensor) else x for x in inputs]
    ctx.save_for_backward(*(inputs[i] for i in tensors), *extras)


def _kernel_backward(ctx, grads) -> tuple:
    saved = ctx.saved_tensors
    n_in = len(saved) - ctx.n_extras
    inputs = list(ctx.constants)
    for slot, t in zip(ctx.tensor_slots, saved[:n_in]):
        inputs[slot] = t
    return ctx.kernel.backward(inputs, saved[n_in:], grads)


def run_scan(kernel, *inputs) -> tuple[torch.Tensor, ...]:
    """``kernel``'s outputs on ``inputs``: through autograd, or recorded / replayed by the active tape."""
    tape: ScanTape | None = getattr(_state, "tape", None)
    if tape is None:
        return _Scan.apply(kernel, *inputs)
    if not tape.replaying:
        outputs, extras = kernel.forward(*inputs, save=True)
        tape.entries.append((outputs, extras))
        return outputs
    if tape.position >= len(tape.entries):
        raise RuntimeError("the recomputed region ran more scans than were recorded")
    recorded = tape.entries[tape.position]
    tape.position += 1
    return _Replayed.apply(kernel, recorded, *inputs)


class _Region(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, autocast, n_inputs, *tensors):
        tape = ScanTape()
        with torch.no_grad(), tape.active(replaying=False):
            outputs = fn(*tensors[:n_inputs])
        ctx.fn, ctx.autocast, ctx.n_inputs, ctx.tape = fn, autocast, n_inputs, tape
        ctx.save_for_backward(*tensors)
        return outputs

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        inputs = [t.detach().requires_grad_(t.requires_grad) for t in tensors[:ctx.n_inputs]]
        device_type, dtype, enabled = ctx.autocast
        with torch.enable_grad(), torch.autocast(device_type, dtype=dtype, enabled=enabled), \
                ctx.tape.active(replaying=True):
            outputs = ctx.fn(*inputs)
        wanted = [t for t in (*inputs, *tensors[ctx.n_inputs:]) if t.requires_grad]
        found = iter(torch.autograd.grad([o for o in outputs if o.requires_grad],
                                         wanted, [g for o, g in zip(outputs, grads) if o.requires_grad],
                                         allow_unused=True))
        ctx.tape = None  # the recorded scans are spent
        return None, None, None, *(next(found) if t.requires_grad else None
                                   for t in (*inputs, *tensors[ctx.n_inputs:]))


def recompute_without_scans(fn: Callable[..., tuple[torch.Tensor, ...]], inputs: Sequence[torch.Tensor],
                            params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``fn(*inputs)`` (a tuple of tensors whose scans go through :func:`run_scan`), keeping for
    backward only ``inputs`` and the scans' outputs and extras. ``params``: every tensor ``fn``
    reads that needs a gradient besides ``inputs`` (its module's parameters)."""
    device_type = inputs[0].device.type
    autocast = (device_type, torch.get_autocast_dtype(device_type), torch.is_autocast_enabled(device_type))
    return _Region.apply(fn, autocast, len(inputs), *inputs, *params)
