"""The CUDA scan kernel object (``detect.ops.selective_scan.CudaScan``) against mamba-ssm's own
``selective_scan_fn``, and recomputing around it against saving everything, on a GPU. Skipped
without CUDA and mamba-ssm's kernels (CI has neither); the GPU machine runs it."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from detect.ops.backend import cuda_kernels

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() and cuda_kernels()[0]),
                                reason="needs a CUDA GPU with mamba-ssm's compiled kernels")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp(min=1e-30)).item()


@pytest.mark.parametrize("grouped,gated", [(False, True), (True, True), (False, False)])
def test_cuda_scan_object_equals_mamba_ssm(grouped, gated):
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    from detect.ops.selective_scan import selective_scan

    g = torch.Generator(device="cuda").manual_seed(0)
    batch, dim, n, length = 2, 64, 16, 3000          # two of the kernel's 2048-step chunks
    bc = (batch, 2, n, length) if grouped else (batch, n, length)
    x = dict(u=torch.randn(batch, dim, length, device="cuda", generator=g),
             delta=torch.randn(batch, dim, length, device="cuda", generator=g),
             A=-torch.rand(dim, n, device="cuda", generator=g), B=torch.randn(*bc, device="cuda", generator=g),
             C=torch.randn(*bc, device="cuda", generator=g), D=torch.randn(dim, device="cuda", generator=g),
             z=torch.randn(batch, dim, length, device="cuda", generator=g) if gated else None,
             delta_bias=torch.randn(dim, device="cuda", generator=g) * 0.3)
    results = []
    for fn in (selective_scan_fn, lambda *a, **k: selective_scan(*a, **k, backend="cuda")):
        inputs = {k: None if v is None else v.clone().requires_grad_() for k, v in x.items()}
        out, last = fn(**inputs, delta_softplus=True, return_last_state=True)
        w = torch.randn(out.shape, device="cuda", generator=torch.Generator(device="cuda").manual_seed(1))
        (out * w).sum().backward()
        results.append([out, last] + [v.grad for v in inputs.values() if v is not None])
    for a, b in zip(*results):
        assert _rel(a, b) < 1e-5


@pytest.mark.parametrize("mixer", ["dbm", "vim"])
def test_recompute_on_the_cuda_scan_equals_saving_everything(mixer):
    from detect.layers.mamba import MIXERS, MambaConfig

    torch.manual_seed(0)
    model = MIXERS[mixer](MambaConfig(64, expand=1 if mixer == "dbm" else 2, backend="cuda")).cuda()
    x = torch.randn(2, 300, 64, device="cuda")
    mask = torch.arange(300, device="cuda")[None] < torch.tensor([300, 170], device="cuda")[:, None]
    results = []
    for recompute in (False, True):
        model.cfg = dataclasses.replace(model.cfg, recompute=recompute)
        model.zero_grad()
        inp = x.clone().requires_grad_()
        out = model(inp, mask)
        out.square().sum().backward()
        results.append([out, inp.grad] + [p.grad for p in model.parameters()])
    for a, b in zip(*results):
        assert _rel(a, b) < 1e-4      # the same arithmetic, but the backward kernels add dB, dC with atomics
