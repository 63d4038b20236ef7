"""Selective scan and causal conv: float64 oracle, gradcheck, fp32 agreement, backend choice."""
import pytest
import torch

from detect.ops import causal_conv1d, causal_conv1d_torch, resolve, selective_scan, selective_scan_ref
from detect.ops.selective_scan import selective_scan_torch


def _inputs(batch=2, dim=6, length=13, n=4, kind="input", dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(dtype)

    bc = {"input": (batch, n, length), "constant": (dim, n), "grouped": (batch, 2, n, length)}[kind]
    return dict(u=r(batch, dim, length), delta=r(batch, dim, length, scale=0.5), A=-r(dim, n).abs() * 2,
                B=r(*bc), C=r(*bc), D=r(dim), z=r(batch, dim, length), delta_bias=r(dim, scale=0.1))


def _naive(u, delta, A, B, C, D, z, delta_bias):
    """An independent float64 statement of the recurrence, one scalar channel at a time."""
    dt = torch.nn.functional.softplus(delta + delta_bias[:, None])
    batch, dim, length = u.shape
    out = torch.zeros_like(u)
    for b in range(batch):
        for d in range(dim):
            h = torch.zeros(A.shape[1], dtype=u.dtype)
            for t in range(length):
                bt = B[b, :, t] if B.dim() == 3 else B[b, d * B.shape[1] // dim, :, t]
                ct = C[b, :, t] if C.dim() == 3 else C[b, d * C.shape[1] // dim, :, t]
                h = torch.exp(dt[b, d, t] * A[d]) * h + dt[b, d, t] * bt * u[b, d, t]
                y = (h * ct).sum() + D[d] * u[b, d, t]
                out[b, d, t] = y * z[b, d, t] * torch.sigmoid(z[b, d, t])
    return out


@pytest.mark.parametrize("kind", ["input", "grouped"])
def test_oracle_matches_the_recurrence_in_float64(kind):
    x = _inputs(length=7, kind=kind)
    expected = _naive(**x)
    got = selective_scan_ref(**x, delta_softplus=True)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.fixture(params=["chunks", "one chunk"])
def chunking(request, monkeypatch):
    """Both ways the torch scan runs: in chunks (GPU, small CPU states) and as one chunk (large
    CPU states)."""
    import importlib

    scan = importlib.import_module("detect.ops.selective_scan")
    monkeypatch.setattr(scan, "CPU_ONE_CHUNK_STATE", 0 if request.param == "one chunk" else 1 << 62)
    return request.param


@pytest.mark.parametrize("kind", ["input", "constant", "grouped"])
@pytest.mark.parametrize("length", [1, 2, 7, 16, 50])
def test_chunked_scan_matches_the_oracle_in_float64(kind, length, chunking):
    x = _inputs(length=length, kind=kind)
    ref, ref_state = selective_scan_ref(**x, delta_softplus=True, return_last_state=True)
    got, state = selective_scan_torch(**x, delta_softplus=True, return_last_state=True)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state, ref_state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,length", [("input", 11), ("grouped", 9), ("constant", 5)])
def test_chunked_scan_gradcheck(kind, length, chunking):
    x = {k: v.requires_grad_() for k, v in _inputs(dim=4, length=length, kind=kind).items()}
    names = list(x)

    def f(*args):
        return selective_scan_torch(**dict(zip(names, args)), delta_softplus=True)

    assert torch.autograd.gradcheck(f, tuple(x.values()))


def test_gradcheck_without_z_and_bias():
    x = _inputs(dim=3, length=8)
    args = (x["u"], x["delta"], x["A"], x["B"], x["C"])
    for a in args:
        a.requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: selective_scan_torch(*a), args)


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("length", [7, 197])
def test_float32_scan_and_all_gradients_agree_with_float64(length):
    x64 = {k: v.requires_grad_() for k, v in _inputs(batch=2, dim=16, length=length, n=8, seed=1).items()}
    x32 = {k: v.detach().float().requires_grad_() for k, v in x64.items()}
    y64 = selective_scan_ref(**x64, delta_softplus=True)
    y32 = selective_scan_torch(**x32, delta_softplus=True)
    grad = torch.randn(y64.shape, dtype=torch.float64)
    y64.backward(grad)
    y32.backward(grad.float())
    assert _rel(y32.double(), y64) < 1e-5
    for name in x64:
        assert _rel(x32[name].grad.double(), x64[name].grad) < 1e-5, name


def test_causal_conv_matches_an_explicit_loop_and_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 9, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, generator=g, dtype=torch.float64)
    bias = torch.randn(5, generator=g, dtype=torch.float64)
    expected = torch.zeros_like(x)
    for t in range(9):
        for k in range(4):
            src = t - 3 + k
            if src >= 0:
                expected[:, :, t] += w[:, k] * x[:, :, src]
    expected += bias[:, None]
    torch.testing.assert_close(causal_conv1d_torch(x, w, bias), expected)
    torch.testing.assert_close(causal_conv1d(x, w, bias, activation="silu"), torch.nn.functional.silu(expected))
    args = tuple(t.clone().requires_grad_() for t in (x, w, bias))
    assert torch.autograd.gradcheck(lambda a, b, c: causal_conv1d_torch(a, b, c, "silu"), args)


def test_backend_resolution_on_cpu(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve("auto", cpu) == "torch" and resolve("torch", cpu) == "torch"
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        resolve("cuda", cpu)
    with pytest.raises(RuntimeError, match="'triton' needs CUDA tensors"):
        resolve("triton", cpu)
    with pytest.raises(ValueError, match="unknown backend"):
        resolve("jax", cpu)
    monkeypatch.setenv("MAMBA_TAD_BACKEND", "torch")
    assert resolve(None, cpu) == "torch"
    x = _inputs(dim=3, length=5, dtype=torch.float32)
    torch.testing.assert_close(selective_scan(**x, delta_softplus=True),
                               selective_scan_torch(**x, delta_softplus=True))


def test_missing_kernels_give_the_install_command(monkeypatch):
    from detect.ops import backend

    monkeypatch.setattr(backend, "cuda_kernels", lambda: (False, "ModuleNotFoundError: selective_scan_cuda"))
    with pytest.raises(RuntimeError, match="selective_scan_cuda.*--no-build-isolation"):
        backend.resolve("cuda", torch.device("cuda"))
    # auto falls back to the Triton scan, then to the torch scan
    monkeypatch.setattr(backend, "triton_available", lambda: (True, "triton imports"))
    assert backend.resolve("auto", torch.device("cuda")) == "triton"
    monkeypatch.setattr(backend, "triton_available", lambda: (False, "ModuleNotFoundError: triton"))
    assert backend.resolve("auto", torch.device("cuda")) == "torch"
    with pytest.raises(RuntimeError, match="'triton' is unavailable"):
        backend.resolve("triton", torch.device("cuda"))
