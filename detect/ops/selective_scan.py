"""Mamba-1 selective scan: a sequential oracle, a chunked pure-PyTorch scan, and the CUDA kernel.

Semantics (mamba-ssm's ``selective_scan_fn``), for ``u, delta: (Bt, D, L)``, ``A: (D, N)``,
``B, C``: ``(D, N)`` constant, ``(Bt, N, L)`` input-dependent, or ``(Bt, G, N, L)`` grouped::

    dt  = softplus(delta + delta_bias) if delta_softplus else delta + delta_bias
    h_l = exp(dt_l * A) * h_{l-1} + dt_l * B_l * u_l           state (Bt, D, N), h_{-1} = 0
    y_l = sum_n C_l[n] * h_l[n];   out = (y + D * u) * silu(z)

The torch scan splits L into ~sqrt(L) chunks of ~sqrt(L) steps (one chunk on a CPU when the state
is large: :func:`_chunk_size`). Forward: one pass over the steps
of every chunk at once gives each chunk's local end state, a pass over the chunks carries the
state across, and a last pass over the steps gives the outputs. Only the chunk-start states are
saved; the backward pass recomputes the states and runs the adjoint recurrence
``lambda_l = C_l dy_l + a_{l+1} lambda_{l+1}`` the same way. So Python loops run ~3 sqrt(L)
times (not L), and memory stays at one state tensor during backward instead of one per step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .backend import resolve
from .graphs import run_loops
from .scan_tape import run_scan


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def _grouped(X: torch.Tensor, batch: int, dim: int, length: int) -> torch.Tensor:
    """B or C as ``(Bt, G, N, L)``: constant ``(D, N)`` becomes G = D (a broadcast view)."""
    if X.dim() == 2:
        return X[None, :, :, None].expand(batch, dim, X.shape[1], length)
    if X.dim() == 3:
        return X[:, None]
    if X.dim() == 4:
        return X
    raise ValueError(f"B/C must be (D, N), (Bt, N, L) or (Bt, G, N, L), got shape {tuple(X.shape)}")


def _prepare_delta(delta, delta_bias, delta_softplus, dtype):
    dt = delta.to(dtype)
    if delta_bias is not None:
        dt = dt + delta_bias.to(dtype)[:, None]
    return F.softplus(dt) if delta_softplus else dt


def _finish(y, u, D, z, dtype):
    if D is not None:
        y = y + D.to(dtype)[:, None] * u.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y.to(u.dtype)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """The oracle: a plain loop over time, in float64 when any input is float64."""
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    dt = _prepare_delta(delta, delta_bias, delta_softplus, dtype)
    A = A.to(dtype)
    Bg, Cg = (_grouped(X.to(dtype), batch, dim, length) for X in (B, C))
    h = u.new_zeros(batch, dim, A.shape[1], dtype=dtype)
    ys = []
    for t in range(length):
        b_t = Bg[..., t].repeat_interleave(dim // Bg.shape[1], dim=1)
        c_t = Cg[..., t].repeat_interleave(dim // Cg.shape[1], dim=1)
        h = torch.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t].to(dtype))[..., None] * b_t
        ys.append((h * c_t).sum(-1))
    out = _finish(torch.stack(ys, dim=-1), u, D, z, dtype)
    return (out, h) if return_last_state else out


def _per_channel(X: torch.Tensor, dim: int) -> torch.Tensor:
    """``(Bt, G, N, nC)`` -> broadcastable against ``(Bt, D, N, nC)``."""
    groups = X.shape[1]
    return X if groups in (1, dim) else X.repeat_interleave(dim // groups, dim=1)


def _group_sum(grad: torch.Tensor, groups: int) -> torch.Tensor:
    """Reverse of :func:`_per_channel` for gradients ``(Bt, D, N, nC)`` -> ``(Bt, G, N, nC)``."""
    batch, dim = grad.shape[:2]
    if groups == dim:
        return grad
    return grad.reshape(batch, groups, dim // groups, *grad.shape[2:]).sum(2)


# The loops below take time-major tensors: ``u_, dt_ (T, Bt, D, nC)`` and ``B_, C_ (T, Bt, G, N,
# nC)``, T the steps of a chunk, so that step t of every chunk is one contiguous slice ``x[t]``
# (reading and writing strided slices of the last axis dominated the scan on a CPU).
def _scan_forward(u_, dt_, A, B_, C_):
    """Forward loops -> outputs ``(T, Bt, D, nC)``, chunk starts ``(Bt, D, N, nC)``, last state."""
    chunk, batch, dim, n_chunks = u_.shape
    A_ = A[None, :, :, None]

    def step(h, t):
        return torch.exp(dt_[t][:, :, None] * A_) * h + (dt_[t] * u_[t])[:, :, None] * _per_channel(B_[t], dim)

    starts = u_.new_zeros(batch, dim, A.shape[1], n_chunks)
    if n_chunks > 1:  # each chunk's end state from zero, then carried across the chunks
        local = starts
        for t in range(chunk):
            local = step(local, t)
        chunk_decay = torch.exp(dt_.sum(0)[:, :, None] * A_)
        starts = torch.empty_like(local)
        carry = u_.new_zeros(batch, dim, A.shape[1])
        for c in range(n_chunks):
            starts[..., c] = carry
            carry = chunk_decay[..., c] * carry + local[..., c]
    y = u_.new_empty(chunk, batch, dim, n_chunks)
    h = starts
    for t in range(chunk):
        h = step(h, t)
        y[t] = (h * _per_channel(C_[t], dim)).sum(2)
    return y, starts, h[..., -1]


def _scan_backward(u_, dt_, A, B_, C_, starts, dy_):
    """Backward loops: gradients of the time-major inputs given the output gradient ``dy_``."""
    chunk, batch, dim, n_chunks = u_.shape
    A_ = A[None, :, :, None]

    def a(t):
        return torch.exp(dt_[t][:, :, None] * A_)

    def b(t):
        return (dt_[t] * u_[t])[:, :, None] * _per_channel(B_[t], dim)

    def gy(t):  # dL/dh_t through y_t
        return _per_channel(C_[t], dim) * dy_[t][:, :, None]

    states = u_.new_empty(chunk, batch, dim, A.shape[1], n_chunks)
    h = starts
    for t in range(chunk):
        h = a(t) * h + b(t)
        states[t] = h
    incoming = torch.zeros_like(starts)
    if n_chunks > 1:
        # Adjoint within each chunk alone, to learn what flows into each chunk's first step.
        mu, a_next = gy(chunk - 1), a(chunk - 1)
        for t in range(chunk - 2, -1, -1):
            mu = gy(t) + a_next * mu
            a_next = a(t)
        rest_decay = torch.exp((dt_.sum(0) - dt_[0])[:, :, None] * A_)
        a0 = a(0)
        running = torch.zeros_like(mu[..., 0])
        for c in range(n_chunks - 1, -1, -1):
            incoming[..., c] = running
            running = a0[..., c] * (mu[..., c] + rest_decay[..., c] * running)

    du, ddt = torch.empty_like(u_), torch.empty_like(dt_)
    dA = torch.zeros_like(A)
    dB, dC = torch.empty_like(B_), torch.empty_like(C_)
    lam, a_next = incoming, None
    for t in range(chunk - 1, -1, -1):
        lam = gy(t) + (lam if a_next is None else a_next * lam)
        a_t = a_next = a(t)
        h_prev = states[t - 1] if t > 0 else starts
        dC[t] = _group_sum(states[t] * dy_[t][:, :, None], C_.shape[2])
        d_dtu = (lam * _per_channel(B_[t], dim)).sum(2)
        dB[t] = _group_sum(lam * (dt_[t] * u_[t])[:, :, None], B_.shape[2])
        d_logdecay = lam * a_t * h_prev
        du[t] = d_dtu * dt_[t]
        ddt[t] = d_dtu * u_[t] + (d_logdecay * A_).sum(2)
        dA += (d_logdecay * dt_[t][:, :, None]).sum((0, 3))
    return du, ddt, dA, dB, dC


def _time_major(x: torch.Tensor, pad: int, chunk: int) -> torch.Tensor:
    """``(..., L)`` -> ``(T, ..., nC)``: padded to whole chunks, the step within a chunk first."""
    x = F.pad(x, (0, pad))
    return x.reshape(*x.shape[:-1], -1, chunk).movedim(-1, 0).contiguous()


def _length_major(x: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`_time_major`: ``(T, ..., nC)`` -> ``(..., L)``."""
    return x.movedim(0, -1).reshape(*x.shape[1:-1], -1)[..., :length]


class ChunkedScan:
    """Scan kernel (:mod:`detect.ops.scan_tape`): ``(y, last state) = scan(u, dt, A, B, C)`` without
    D and z, in the compute dtype; its backward needs the chunk-start states besides the inputs.
    See the module docstring."""

    non_differentiable = (1,)

    @staticmethod
    def forward(u, dt, A, B, C, chunk, save):
        length = u.shape[-1]
        pad = -(-length // chunk) * chunk - length
        # Padded steps have dt = 0: decay 1 and no input, so they change nothing before them.
        u_, dt_, B_, C_ = (_time_major(x, pad, chunk) for x in (u, dt, B, C))
        y, starts, last = run_loops(_scan_forward, u_, dt_, A, B_, C_)
        return (_length_major(y, length), last), (starts,)

    @staticmethod
    def backward(inputs, extras, grads):
        u, dt, A, B, C, chunk = inputs
        length = u.shape[-1]
        pad = -(-length // chunk) * chunk - length
        u_, dt_, B_, C_, dy_ = (_time_major(x, pad, chunk) for x in (u, dt, B, C, grads[0]))
        du, ddt, dA, dB, dC = run_loops(_scan_backward, u_, dt_, A, B_, C_, extras[0], dy_)
        return (_length_major(du, length), _length_major(ddt, length), dA, _length_major(dB, length),
                _length_major(dC, length), None)


CPU_ONE_CHUNK_STATE = 1 << 16   # state elements per step above which a CPU scan runs as one chunk


def _chunk_size(length: int, state: int = 0, on_cpu: bool = False) -> int:
    """Steps per chunk for a scan of ``length`` steps whose state has ``state`` elements.

    On a GPU each step of the in-chunk passes launches ~2x the kernels of a step of the carry
    pass, and those launches are the cost: ~0.6 sqrt(L) steps per chunk minimises them. On a CPU
    a large state makes the arithmetic the cost, and one chunk needs three passes over it where
    chunks need five (SG-Mamba's heatmap stem, 600 windows x 64 x 16 states of 33 steps: 4x
    faster); a small one keeps the chunks, whose loops are shorter."""
    if on_cpu and state >= CPU_ONE_CHUNK_STATE:
        return length
    return max(1, math.ceil(0.6 * math.sqrt(length)))


def selective_scan_torch(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                         return_last_state=False):
    """Chunked pure-PyTorch scan; same arguments and results as mamba-ssm's ``selective_scan_fn``."""
    dtype = _compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    batch, dim, length = u.shape
    dt = _prepare_delta(delta, delta_bias, delta_softplus, dtype)
    Bg, Cg = (_grouped(X.to(dtype), batch, dim, length) for X in (B, C))
    for name, X in (("B", Bg), ("C", Cg)):
        if dim % X.shape[1]:
            raise ValueError(f"{name} has {X.shape[1]} groups, which do not divide {dim} channels")
    chunk = _chunk_size(length, batch * dim * A.shape[1], u.device.type == "cpu")
    y, last = run_scan(ChunkedScan, u.to(dtype), dt, A.to(dtype), Bg, Cg, chunk)
    out = _finish(y, u, D, z, dtype)
    return (out, last) if return_last_state else out


class CudaScan:
    """Scan kernel (:mod:`detect.ops.scan_tape`) on mamba-ssm's compiled ``selective_scan_cuda``,
    called as its ``selective_scan_fn`` calls it. The kernel saves its state at every chunk of
    2048 steps (``(Bt, D, chunks, 2 N)`` fp32); its backward needs those and, with a gate ``z``,
    the output before the gate."""

    non_differentiable = (1,)

    @staticmethod
    def prepare(u, delta, A, B, C, D, z, delta_bias) -> tuple:
        """The layout the kernel reads: time contiguous, B and C ``(Bt, G, N, L)``."""
        def last_contiguous(x):
            return None if x is None else (x if x.stride(-1) == 1 else x.contiguous())

        B, C = (X[:, None] if X.dim() == 3 else X for X in (B, C))
        return (last_contiguous(u), last_contiguous(delta), A, last_contiguous(B), last_contiguous(C),
                None if D is None else D.contiguous(), last_contiguous(z), delta_bias)

    @staticmethod
    def forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, save):
        import selective_scan_cuda

        out, states, *gated = selective_scan_cuda.fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
        last = states[:, :, -1, 1::2]
        return (gated[0] if z is not None else out, last), ((states, out) if z is not None else (states,))

    @staticmethod
    def backward(inputs, extras, grads):
        import selective_scan_cuda

        u, delta, A, B, C, D, z, delta_bias, delta_softplus = inputs
        dout = grads[0] if grads[0].stride(-1) == 1 else grads[0].contiguous()
        du, ddelta, dA, dB, dC, dD, ddelta_bias, *rest = selective_scan_cuda.bwd(
            u, delta, A, B, C, D, z, delta_bias, dout, extras[0], extras[1] if z is not None else None, None,
            delta_softplus, False)
        return (du, ddelta, dA, dB, dC, dD if D is not None else None, rest[0] if z is not None else None,
                ddelta_bias if delta_bias is not None else None, None)


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend: str | None = None):
    """Selective scan on the chosen backend (see :mod:`detect.ops.backend`). The Triton scan
    takes input-dependent B and C below float64; other calls on that backend run the torch scan."""
    chosen = resolve(backend, u.device)
    if chosen == "cuda":
        out, last = run_scan(CudaScan, *CudaScan.prepare(u, delta, A, B, C, D, z, delta_bias), delta_softplus)
        return (out, last) if return_last_state else out
    if chosen == "triton" and B.dim() > 2 and C.dim() > 2 and u.dtype != torch.float64:
        from .selective_scan_triton import selective_scan_triton

        return selective_scan_triton(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
