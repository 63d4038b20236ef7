"""GPU parity and speed of the ``cuda`` (mamba-ssm, causal-conv1d), ``triton`` and ``torch`` backends.

For the selective scan, the causal conv and whole DBM / ViM mixers, in fp32 and bf16, prints the
relative error ``||x - ref|| / ||ref||`` of the output and of every input gradient (the mixers:
every parameter gradient, through the backward that recomputes conv -> scan) against a float64
reference (our sequential oracle on the GPU), and the fwd+bwd time of each backend
(median of ``--repeat`` calls) with its ratio to ``cuda``. The checked results come from the
fourth call of each shape, when the torch backend replays its captured CUDA graph
(``MAMBA_TAD_CUDA_GRAPHS=0``: the eager loops). The ``triton`` backend's causal conv is PyTorch's.

``--sweep`` first times the Triton kernels' tile sizes and warps (forward alone, then forward +
backward) at 2 x 1024 x 2304, N 16, in fp32 and bf16, beside the mamba-ssm kernel.

    python benchmarks/scan_parity.py                 # needs a CUDA GPU and the kernels
    python benchmarks/scan_parity.py --sweep --json out.json
"""
from __future__ import annotations

import argparse
import json

import torch

from detect.layers.mamba import DBM, MambaConfig, ViM
from detect.ops import causal_conv1d, selective_scan, selective_scan_ref
from detect.ops import selective_scan_triton as triton_scan
from detect.ops.backend import cuda_kernels

BACKENDS = ("cuda", "triton", "torch")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("nan")
    return ((a - b).norm() / b.norm().clamp(min=1e-30)).item()


def timed(fn, repeat: int = 20) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeat):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def scan_case(batch, dim, length, n, dtype, g):
    shapes = {"u": (batch, dim, length), "delta": (batch, dim, length), "B": (batch, n, length),
              "C": (batch, n, length), "z": (batch, dim, length)}
    x = {k: torch.randn(*s, generator=g, device="cuda") for k, s in shapes.items()}
    x["delta"] = x["delta"] * 0.5
    x["A"] = -torch.rand(dim, n, generator=g, device="cuda") * 4
    x["D"] = torch.randn(dim, generator=g, device="cuda")
    x["delta_bias"] = torch.randn(dim, generator=g, device="cuda") * 0.1
    # mamba-ssm wants input-dependent B and C in the input's dtype; A, D and the bias stay fp32.
    low = {k: v.to(dtype) if k in ("u", "delta", "z", "B", "C") else v for k, v in x.items()}
    return x, low


def check_scan(batch, dim, length, n, dtype, g, repeat):
    x, low = scan_case(batch, dim, length, n, dtype, g)
    ref_in = {k: v.detach().to(low[k].dtype).double().requires_grad_() for k, v in x.items()}
    ref = selective_scan_ref(**ref_in, delta_softplus=True)
    grad = torch.randn(ref.shape, generator=g, device="cuda").double()
    ref.backward(grad)
    row = {"op": "selective_scan", "shape": f"{batch}x{dim}x{length}", "dtype": str(dtype).split(".")[-1]}
    for backend in BACKENDS:
        for _ in range(4):  # the torch backend replays a CUDA graph from the third call of a shape on
            inp = {k: v.detach().clone().requires_grad_() for k, v in low.items()}
            out = selective_scan(**inp, delta_softplus=True, backend=backend)
            out.backward(grad.to(out.dtype))
        row[f"{backend}_out"] = rel(out, ref)
        row[f"{backend}_grad_max"] = max(rel(inp[k].grad, ref_in[k].grad) for k in inp)

        def step(inp=inp, backend=backend):
            y = selective_scan(**inp, delta_softplus=True, backend=backend)
            y.backward(grad.to(y.dtype))
        row[f"{backend}_ms"] = timed(step, repeat)
    return row


def check_conv(batch, dim, length, dtype, g, repeat):
    x = torch.randn(batch, dim, length, generator=g, device="cuda").to(dtype)
    w = torch.randn(dim, 4, generator=g, device="cuda")
    b = torch.randn(dim, generator=g, device="cuda")
    ref = causal_conv1d(x.double(), w.double(), b.double(), "silu", backend="torch")
    row = {"op": "causal_conv1d", "shape": f"{batch}x{dim}x{length}", "dtype": str(dtype).split(".")[-1]}
    for backend in BACKENDS:
        row[f"{backend}_out"] = rel(causal_conv1d(x, w.to(dtype), b.to(dtype), "silu", backend=backend), ref)
        row[f"{backend}_grad_max"] = float("nan")
        row[f"{backend}_ms"] = timed(lambda backend=backend: causal_conv1d(x, w.to(dtype), b.to(dtype), "silu",
                                                                            backend=backend), repeat)
    return row


def check_mixer(name, batch, length, d, dtype, g, repeat):
    torch.manual_seed(0)
    cls, expand = (DBM, 1) if name == "dbm" else (ViM, 2)
    layers = {b: cls(MambaConfig(d, expand=expand, backend=b)).cuda() for b in BACKENDS}
    for b in BACKENDS[1:]:
        layers[b].load_state_dict(layers["cuda"].state_dict())
    ref_layer = cls(MambaConfig(d, expand=expand, backend="torch")).cuda().double()
    ref_layer.load_state_dict(layers["cuda"].state_dict())
    x = torch.randn(batch, length, d, generator=g, device="cuda")
    mask = torch.arange(length, device="cuda")[None] < torch.tensor([length, length * 3 // 4], device="cuda")[:, None]
    ref = ref_layer(x.double(), mask)
    ref.square().mean().backward()
    row = {"op": f"{name} mixer", "shape": f"{batch}x{length}x{d}", "dtype": str(dtype).split(".")[-1]}
    for backend, layer in layers.items():
        for _ in range(4):  # past the eager calls, into graph replay
            layer.zero_grad()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                out = layer(x, mask)
            out.float().square().mean().backward()
        row[f"{backend}_out"] = rel(out.float()[mask], ref[mask])
        row[f"{backend}_grad_max"] = max(rel(p.grad.double(), q.grad) for p, q in
                                         zip(layer.parameters(), ref_layer.parameters()))

        def step(layer=layer):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                layer(x, mask).float().square().mean().backward()
        row[f"{backend}_ms"] = timed(step, repeat)
    return row


def sweep(g, repeat):
    """Forward and forward + backward ms of each tile configuration, beside mamba-ssm's kernel."""
    rows = []
    fwd_configs = [{"block_d": bd, "block_t": bt, "num_warps": w} for bd in (4, 8, 16) for bt in (16, 32, 64)
                   for w in (4, 8)]
    bwd_configs = [{"block_d": bd, "num_warps": w} for bd in (2, 4, 8) for w in (2, 4, 8)]
    default_fwd, default_bwd = dict(triton_scan.FWD), dict(triton_scan.BWD)
    for dtype in (torch.float32, torch.bfloat16):
        _, low = scan_case(2, 1024, 2304, 16, dtype, g)
        grad = torch.randn(2, 1024, 2304, generator=g, device="cuda").to(dtype)
        inp = {k: v.detach().clone().requires_grad_() for k, v in low.items()}

        def fwd(backend):
            with torch.no_grad():
                selective_scan(**low, delta_softplus=True, backend=backend)

        def both(backend):
            selective_scan(**inp, delta_softplus=True, backend=backend).backward(grad)
        name = str(dtype).split(".")[-1]
        cuda_fwd, cuda_both = timed(lambda: fwd("cuda"), repeat), timed(lambda: both("cuda"), repeat)
        print(f"\nsweep {name}: mamba-ssm fwd {cuda_fwd:.3f} ms, fwd+bwd {cuda_both:.3f} ms")
        for cfg in fwd_configs:
            triton_scan.FWD.update(cfg)
            ms = timed(lambda: fwd("triton"), repeat)
            rows.append({"sweep": "fwd", "dtype": name, **cfg, "ms": ms, "vs_cuda": ms / cuda_fwd})
            print(f"  fwd {cfg}: {ms:.3f} ms ({ms / cuda_fwd:.2f}x)", flush=True)
        best = min((r for r in rows if r["sweep"] == "fwd" and r["dtype"] == name), key=lambda r: r["ms"])
        triton_scan.FWD.update({k: best[k] for k in default_fwd})
        for cfg in bwd_configs:
            triton_scan.BWD.update(cfg)
            ms = timed(lambda: both("triton"), repeat)
            rows.append({"sweep": "fwd+bwd", "dtype": name, **triton_scan.FWD, **cfg, "ms": ms,
                         "vs_cuda": ms / cuda_both})
            print(f"  fwd+bwd {triton_scan.FWD} {cfg}: {ms:.3f} ms ({ms / cuda_both:.2f}x)", flush=True)
        triton_scan.FWD.update(default_fwd)
        triton_scan.BWD.update(default_bwd)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--sweep", action="store_true", help="first time the Triton kernels' tile configurations")
    p.add_argument("--json", help="write the rows here too")
    args = p.parse_args()
    ok, reason = cuda_kernels()
    if not torch.cuda.is_available() or not ok:
        raise SystemExit(f"needs a CUDA GPU and the kernels ({reason})")
    g = torch.Generator(device="cuda").manual_seed(0)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton_scan.triton.__version__}")
    rows = sweep(g, args.repeat) if args.sweep else []
    print("\nrel. error vs float64 (out, max over input gradients); time fwd+bwd, median ms, and / cuda")
    print(f"{'op':<16}{'shape':<14}{'dtype':<6}" + "".join(f"{b + ' out':>12}{b + ' grad':>12}" for b in BACKENDS)
          + "".join(f"{b + ' ms':>11}" for b in BACKENDS) + "".join(f"{b + '/cuda':>12}" for b in BACKENDS[1:]))
    for dtype in (torch.float32, torch.bfloat16):
        for case in (lambda: check_scan(2, 1024, 2304, 16, dtype, g, args.repeat),
                     lambda: check_scan(8, 1024, 2304, 16, dtype, g, args.repeat),
                     lambda: check_conv(8, 1024, 2304, dtype, g, args.repeat),
                     lambda: check_mixer("dbm", 2, 2304, 512, dtype, g, args.repeat),
                     lambda: check_mixer("vim", 2, 2304, 512, dtype, g, args.repeat)):
            rows.append(case())
            r = rows[-1]
            print(f"{r['op']:<16}{r['shape']:<14}{r['dtype']:<6}"
                  + "".join(f"{r[b + '_out']:>12.1e}{r[b + '_grad_max']:>12.1e}" for b in BACKENDS)
                  + "".join(f"{r[b + '_ms']:>11.3f}" for b in BACKENDS)
                  + "".join(f"{r[b + '_ms'] / r['cuda_ms']:>12.2f}" for b in BACKENDS[1:]), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
