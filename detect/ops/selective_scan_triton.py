"""Mamba-1 selective scan fused into one Triton kernel each way: the ``triton`` backend.

Same arguments and results as :func:`detect.ops.selective_scan.selective_scan_ref` (the float64
oracle) for input-dependent ``B, C: (Bt, N, L)`` or grouped ``(Bt, G, N, L)``; constant ``(D, N)``
B/C go to the torch scan. Everything of the scan happens in-kernel: ``delta_bias``, softplus,
``D``, the ``silu(z)`` gate, and their gradients.

One program owns ``BLOCK_D`` channels of one sequence and walks its time axis in tiles of
``BLOCK_T`` steps. A tile's recurrence ``h_t = a_t h_{t-1} + b_t`` is one ``associative_scan``
over ``(BLOCK_D, N, BLOCK_T)`` with the usual affine combine, started from the state carried
over from the tile before. The forward pass saves the state at every tile start (fp32,
``(Bt, D, N, L / BLOCK_T)``); the backward pass walks the tiles from the end, recomputes each
tile's states from its saved start, and runs the adjoint ``lambda_t = C_t dy_t + a_{t+1}
lambda_{t+1}`` as a reversed scan over ``a_{t+1}`` read one step ahead. The decay's gradient
uses ``a_t h_{t-1} = h_t - b_t``, so no state needs shifting in registers.

Gradients of B and C sum over the channels of their group; each program writes its partial sum
and :meth:`TritonScan.backward` adds the partials (deterministic, unlike atomics). All arithmetic is
fp32 whatever the input dtype, as in mamba-ssm.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .scan_tape import run_scan


@triton.jit
def _affine(a1, b1, a2, b2):
    """Compose ``h -> a1 h + b1`` then ``h -> a2 h + b2``."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _dt_tile(delta_ptr, bias, d_off, t, in_t, SOFTPLUS: tl.constexpr):
    """``(dt, d dt / d delta)`` for one tile; 0 (no decay, no input) past the end."""
    raw = tl.load(delta_ptr + d_off[:, None] + t[None, :], mask=in_t[None, :], other=0.0).to(tl.float32) + bias[:, None]
    if SOFTPLUS:
        # x past torch's threshold of 20; exp(x) where 1 + exp(x) would round to 1 in fp32
        dt = tl.where(raw <= 20.0, tl.where(raw < -15.0, tl.exp(raw), tl.log(1.0 + tl.exp(raw))), raw)
        slope = tl.where(raw <= 20.0, tl.sigmoid(raw), 1.0)
    else:
        dt = raw
        slope = tl.full(raw.shape, 1.0, tl.float32)
    return tl.where(in_t[None, :], dt, 0.0), slope


@triton.jit
def _scan_fwd(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, out_ptr, last_ptr, starts_ptr,
              dim, length, n_state, ch_per_group, s_bg, n_tiles,
              HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
              SAVE_STARTS: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_T: tl.constexpr):
    b, pid_d = tl.program_id(0), tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    in_n = n < n_state
    row = b.to(tl.int64) * dim + d                          # (Bt, D) row of u, delta, z, out
    d_off = row * length
    bc_off = (b.to(tl.int64) * s_bg + (pid_d * BLOCK_D) // ch_per_group) * n_state * length + n * length
    A = tl.load(A_ptr + d[:, None] * n_state + n[None, :], mask=in_n[None, :], other=0.0)
    bias = tl.load(bias_ptr + d) if HAS_BIAS else tl.zeros((BLOCK_D,), tl.float32)
    Dd = tl.load(D_ptr + d) if HAS_D else tl.zeros((BLOCK_D,), tl.float32)
    last = (tl.arange(0, BLOCK_T) == BLOCK_T - 1)[None, None, :]
    h = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    for tile in range(n_tiles):
        if SAVE_STARTS:
            tl.store(starts_ptr + ((row[:, None] * n_state + n[None, :]) * n_tiles + tile), h, mask=in_n[None, :])
        t = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        in_t = t < length
        dt, _ = _dt_tile(delta_ptr, bias, d_off, t, in_t, SOFTPLUS)
        u = tl.load(u_ptr + d_off[:, None] + t[None, :], mask=in_t[None, :], other=0.0).to(tl.float32)
        Bt = tl.load(B_ptr + bc_off[:, None] + t[None, :], mask=in_n[:, None] & in_t[None, :], other=0.0).to(tl.float32)
        Ct = tl.load(C_ptr + bc_off[:, None] + t[None, :], mask=in_n[:, None] & in_t[None, :], other=0.0).to(tl.float32)
        a = tl.exp(dt[:, None, :] * A[:, :, None])
        x = (dt * u)[:, None, :] * Bt[None, :, :]
        a_cum, x_cum = tl.associative_scan((a, x), 2, _affine)
        hs = a_cum * h[:, :, None] + x_cum
        y = tl.sum(hs * Ct[None, :, :], 1)
        if HAS_D:
            y += Dd[:, None] * u
        if HAS_Z:
            z = tl.load(z_ptr + d_off[:, None] + t[None, :], mask=in_t[None, :], other=0.0).to(tl.float32)
            y *= z * tl.sigmoid(z)
        tl.store(out_ptr + d_off[:, None] + t[None, :], y.to(out_ptr.dtype.element_ty), mask=in_t[None, :])
        h = tl.sum(tl.where(last, hs, 0.0), 2)             # past the end a = 1 and x = 0: h stays
    tl.store(last_ptr + row[:, None] * n_state + n[None, :], h, mask=in_n[None, :])


@triton.jit
def _scan_bwd(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, z_ptr, bias_ptr, dout_ptr, starts_ptr,
              du_ptr, ddelta_ptr, dz_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
              dim, length, n_state, ch_per_group, s_bg, n_tiles,
              HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
              BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_T: tl.constexpr):
    b, pid_d = tl.program_id(0), tl.program_id(1)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    n = tl.arange(0, BLOCK_N)
    in_n = n < n_state
    row = b.to(tl.int64) * dim + d
    d_off = row * length
    bc_off = (b.to(tl.int64) * s_bg + (pid_d * BLOCK_D) // ch_per_group) * n_state * length + n * length
    # B and C partial sums: one (N, L) slice per (sequence, channel block)
    part_off = (b.to(tl.int64) * tl.num_programs(1) + pid_d) * n_state * length + n * length
    A = tl.load(A_ptr + d[:, None] * n_state + n[None, :], mask=in_n[None, :], other=0.0)
    bias = tl.load(bias_ptr + d) if HAS_BIAS else tl.zeros((BLOCK_D,), tl.float32)
    Dd = tl.load(D_ptr + d) if HAS_D else tl.zeros((BLOCK_D,), tl.float32)
    first = (tl.arange(0, BLOCK_T) == 0)[None, None, :]
    lam = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)          # adjoint flowing in from later tiles
    dA = tl.zeros((BLOCK_D, BLOCK_N), tl.float32)
    dD = tl.zeros((BLOCK_D,), tl.float32)
    dbias = tl.zeros((BLOCK_D,), tl.float32)
    for k in range(n_tiles):
        tile = n_tiles - 1 - k
        t = tile * BLOCK_T + tl.arange(0, BLOCK_T)
        in_t = t < length
        io = d_off[:, None] + t[None, :]
        bc_mask = in_n[:, None] & in_t[None, :]
        dt, slope = _dt_tile(delta_ptr, bias, d_off, t, in_t, SOFTPLUS)
        dt_next, _ = _dt_tile(delta_ptr, bias, d_off, t + 1, (t + 1) < length, SOFTPLUS)
        u = tl.load(u_ptr + io, mask=in_t[None, :], other=0.0).to(tl.float32)
        Bt = tl.load(B_ptr + bc_off[:, None] + t[None, :], mask=bc_mask, other=0.0).to(tl.float32)
        Ct = tl.load(C_ptr + bc_off[:, None] + t[None, :], mask=bc_mask, other=0.0).to(tl.float32)
        dout = tl.load(dout_ptr + io, mask=in_t[None, :], other=0.0).to(tl.float32)
        # this tile's states again, from its saved start
        h0 = tl.load(starts_ptr + ((row[:, None] * n_state + n[None, :]) * n_tiles + tile), mask=in_n[None, :], other=0.0)
        a = tl.exp(dt[:, None, :] * A[:, :, None])
        x = (dt * u)[:, None, :] * Bt[None, :, :]
        a_cum, x_cum = tl.associative_scan((a, x), 2, _affine)
        hs = a_cum * h0[:, :, None] + x_cum
        if HAS_Z:
            y = tl.sum(hs * Ct[None, :, :], 1) + Dd[:, None] * u
            z = tl.load(z_ptr + io, mask=in_t[None, :], other=0.0).to(tl.float32)
            sz = tl.sigmoid(z)
            dz = dout * y * sz * (1.0 + z * (1.0 - sz))
            tl.store(dz_ptr + io, dz.to(dz_ptr.dtype.element_ty), mask=in_t[None, :])
            dy = dout * z * sz
        else:
            dy = dout
        dD += tl.sum(dy * u, 1)
        # adjoint, last step first: lambda_t = C_t dy_t + a_{t+1} lambda_{t+1}
        a_next = tl.exp(dt_next[:, None, :] * A[:, :, None])
        l_cum, l_sum = tl.associative_scan((a_next, Ct[None, :, :] * dy[:, None, :]), 2, _affine, reverse=True)
        lams = l_cum * lam[:, :, None] + l_sum
        lam = tl.sum(tl.where(first, lams, 0.0), 2)
        tl.store(dC_ptr + part_off[:, None] + t[None, :], tl.sum(hs * dy[:, None, :], 0), mask=bc_mask)
        tl.store(dB_ptr + part_off[:, None] + t[None, :], tl.sum(lams * (dt * u)[:, None, :], 0), mask=bc_mask)
        d_dtu = tl.sum(lams * Bt[None, :, :], 1)
        d_logdecay = lams * (hs - x)                        # lambda_t a_t h_{t-1}
        dA += tl.sum(d_logdecay * dt[:, None, :], 2)
        ddt = d_dtu * u + tl.sum(d_logdecay * A[:, :, None], 1)
        ddelta = tl.where(in_t[None, :], ddt * slope, 0.0)
        dbias += tl.sum(ddelta, 1)
        tl.store(ddelta_ptr + io, ddelta.to(ddelta_ptr.dtype.element_ty), mask=in_t[None, :])
        tl.store(du_ptr + io, (d_dtu * dt + Dd[:, None] * dy).to(du_ptr.dtype.element_ty), mask=in_t[None, :])
    tl.store(dA_ptr + row[:, None] * n_state + n[None, :], dA, mask=in_n[None, :])
    tl.store(dD_ptr + row, dD)
    tl.store(dbias_ptr + row, dbias)


# Tile sizes and warps per kernel (forward, backward), from a sweep on an H200 at Mamba's shapes
# (benchmarks/scan_parity.py --sweep). BLOCK_D is the most that divides a group: a block never
# spans two groups of B/C.
FWD = {"block_d": 4, "block_t": 32, "num_warps": 4}
BWD = {"block_d": 4, "num_warps": 2}


def _block_d(ch_per_group: int, most: int) -> int:
    block = most
    while ch_per_group % block:
        block //= 2
    return block


class TritonScan:
    """Scan kernel (:mod:`detect.ops.scan_tape`): ``(out, last_state)`` of the fused scan; inputs
    contiguous, B and C ``(Bt, G, N, L)``; its backward needs the tiles' start states besides the inputs."""

    non_differentiable = (1,)

    @staticmethod
    def forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, save):
        batch, dim, length = u.shape
        groups, n_state = B.shape[1], B.shape[2]
        cpg = dim // groups
        block_d, block_t = _block_d(cpg, FWD["block_d"]), FWD["block_t"]
        n_tiles = triton.cdiv(length, block_t)
        out = torch.empty_like(u)
        last = u.new_empty(batch, dim, n_state, dtype=torch.float32)
        starts = u.new_empty(batch, dim, n_state, n_tiles, dtype=torch.float32) if save else last
        dummy = A
        _scan_fwd[(batch, dim // block_d)](
            u, delta, A, B, C, D if D is not None else dummy, z if z is not None else u,
            delta_bias if delta_bias is not None else dummy, out, last, starts,
            dim, length, n_state, cpg, groups, n_tiles,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
            SAVE_STARTS=save, BLOCK_D=block_d, BLOCK_N=triton.next_power_of_2(n_state), BLOCK_T=block_t,
            num_warps=FWD["num_warps"])
        return (out, last), ((starts,) if save else ())

    @staticmethod
    def backward(inputs, extras, grads):
        u, delta, A, B, C, D, z, delta_bias, delta_softplus = inputs
        (starts,), dout = extras, grads[0]
        batch, dim, length = u.shape
        groups, n_state = B.shape[1], B.shape[2]
        cpg = dim // groups
        block_d, n_tiles = _block_d(cpg, BWD["block_d"]), starts.shape[-1]
        n_blocks = dim // block_d
        f32 = dict(device=u.device, dtype=torch.float32)
        du, ddelta = torch.empty_like(u), torch.empty_like(delta)
        dz = torch.empty_like(z) if z is not None else None
        dA, dD, dbias = (torch.empty(batch, *s, **f32) for s in ((dim, n_state), (dim,), (dim,)))
        dB_part, dC_part = (torch.empty(batch, n_blocks, n_state, length, **f32) for _ in range(2))
        dummy = A
        _scan_bwd[(batch, n_blocks)](
            u, delta, A, B, C, D if D is not None else dummy, z if z is not None else u,
            delta_bias if delta_bias is not None else dummy, dout.contiguous(), starts,
            du, ddelta, dz if dz is not None else du, dA, dB_part, dC_part, dD, dbias,
            dim, length, n_state, cpg, groups, n_tiles,
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=delta_bias is not None,
            SOFTPLUS=delta_softplus, BLOCK_D=block_d, BLOCK_N=triton.next_power_of_2(n_state),
            BLOCK_T=FWD["block_t"], num_warps=BWD["num_warps"])

        def by_group(part, like):
            return part.reshape(batch, groups, n_blocks // groups, n_state, length).sum(2).to(like.dtype)

        return (du, ddelta, dA.sum(0).to(A.dtype), by_group(dB_part, B), by_group(dC_part, C),
                None if D is None else dD.sum(0).to(D.dtype), dz,
                None if delta_bias is None else dbias.sum(0).to(delta_bias.dtype), None)


def selective_scan_triton(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                          return_last_state=False):
    """The fused scan; same arguments and results as mamba-ssm's ``selective_scan_fn`` for
    input-dependent (3-d) or grouped (4-d) B and C. ``A``, ``D`` and ``delta_bias`` are used in
    fp32; ``u, delta, z, B, C`` may be fp32, bf16 or fp16."""
    batch, dim, length = u.shape
    if B.dim() not in (3, 4) or C.dim() not in (3, 4):
        raise ValueError("the Triton scan takes input-dependent B and C, (Bt, N, L) or (Bt, G, N, L)")
    Bg, Cg = (X[:, None] if X.dim() == 3 else X for X in (B, C))
    if Bg.shape[1] != Cg.shape[1] or dim % Bg.shape[1]:
        raise ValueError(f"B and C need one number of groups dividing {dim} channels, got "
                         f"{tuple(B.shape)} and {tuple(C.shape)}")

    def f32(x):
        return None if x is None else x.float().contiguous()

    out, last = run_scan(TritonScan, u.contiguous(), delta.contiguous(), f32(A), Bg.contiguous(), Cg.contiguous(),
                         f32(D), None if z is None else z.contiguous(), f32(delta_bias), delta_softplus)
    return (out, last) if return_last_state else out
