"""The fused Triton selective scan agrees with the float64 oracle, outputs and every gradient,
run on the CPU through Triton's interpreter (a subprocess: the interpreter is chosen when kernels
are defined). GPU parity with mamba-ssm and speed: benchmarks/scan_parity.py."""
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

SCRIPT = textwrap.dedent("""
    import torch
    from detect.ops.selective_scan import selective_scan_ref
    from detect.ops.selective_scan_triton import selective_scan_triton

    g = torch.Generator().manual_seed(0)

    def rel(a, b):
        return ((a.double() - b).norm() / b.norm().clamp(min=1e-30)).item()

    def case(batch, dim, n, length, groups, optional, softplus, dtype):
        bc = (batch, n, length) if groups is None else (batch, groups, n, length)
        x = dict(u=torch.randn(batch, dim, length, generator=g), delta=torch.randn(batch, dim, length, generator=g),
                 A=-torch.rand(dim, n, generator=g) * 3, B=torch.randn(*bc, generator=g),
                 C=torch.randn(*bc, generator=g))
        if optional:
            x.update(D=torch.randn(dim, generator=g), z=torch.randn(batch, dim, length, generator=g),
                     delta_bias=torch.randn(dim, generator=g) * 0.3)
        if not softplus:
            x["delta"] = x["delta"].abs() * 0.3
        # mamba-ssm's dtypes: u, delta, z, B, C in the input dtype; A, D and the bias fp32
        low = {k: (v.to(dtype) if k in ("u", "delta", "z", "B", "C") else v).requires_grad_() for k, v in x.items()}
        ref_in = {k: v.detach().double().requires_grad_() for k, v in low.items()}
        ref, ref_last = selective_scan_ref(**ref_in, delta_softplus=softplus, return_last_state=True)
        got, last = selective_scan_triton(**low, delta_softplus=softplus, return_last_state=True)
        assert got.dtype == dtype and last.dtype == torch.float32
        w = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        (ref * w).sum().backward()
        (got.float() * w.float()).sum().backward()
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        errors = {"out": rel(got, ref), "last": rel(last, ref_last)}
        errors.update({k: rel(low[k].grad, ref_in[k].grad) for k in low if ref_in[k].grad.norm() > 0})
        assert all(e < tol for e in errors.values()), (batch, dim, n, length, groups, dtype, errors)
        assert all(low[k].grad.dtype == low[k].dtype for k in low)

    #     batch dim n  length groups optional softplus dtype
    case(2, 16, 5, 70, None, True, True, torch.float32)     # several tiles, N not a power of two
    case(1, 12, 4, 33, 2, True, True, torch.float32)        # grouped: 6 channels per group -> blocks of 2
    case(2, 9, 3, 32, 3, False, False, torch.float32)       # no D, z, bias, softplus; 3 channels per group -> blocks of 1
    case(1, 8, 4, 1, None, True, True, torch.float32)       # one step
    case(2, 8, 4, 45, None, True, True, torch.bfloat16)

    # Recomputed around the scan (scan_tape): the same gradients, and the kernel runs once each way.
    from detect.ops.scan_tape import recompute_without_scans
    from detect.ops.selective_scan_triton import TritonScan

    runs = []
    for way in ("forward", "backward"):
        counted = (lambda *a, f=getattr(TritonScan, way), w=way, **k: runs.append(w) or f(*a, **k))
        setattr(TritonScan, way, staticmethod(counted))
    u, delta, z = (torch.randn(2, 8, 40, generator=g, requires_grad=True) for _ in range(3))
    scale = torch.rand(8, 1, generator=g).requires_grad_()
    A, D, bias = -torch.rand(8, 4, generator=g), torch.randn(8, generator=g), torch.randn(8, generator=g) * 0.3
    B, C = (torch.randn(2, 4, 40, generator=g, requires_grad=True) for _ in range(2))

    def region(u, z):
        return (selective_scan_triton(u * scale, delta, A, B, C, D, z, bias, True),)

    grads = []
    for recompute in (False, True):
        runs.clear()
        out = recompute_without_scans(region, (u, z), (scale, delta, B, C))[0] if recompute else region(u, z)[0]
        grads.append([out.detach()] + list(torch.autograd.grad(out.square().sum(), (u, z, scale, delta, B, C))))
        assert runs == ["forward", "backward"], runs
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-6) for a, b in zip(*grads))
    print("agree")
""")


def test_fused_scan_matches_the_float64_oracle_with_every_gradient():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 and "agree" in proc.stdout, proc.stderr[-3000:]
