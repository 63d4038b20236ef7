"""Exact padding on the GPU: every detector, ``cuda`` and ``torch`` backends, fp32.

The CPU test (tests/test_padding.py) checks batch independence in float64 to 1e-9; the CUDA
kernels have no float64, so here a video run alone and batched with a longer one must agree to
fp32 rounding. Prints the relative difference ``||batched - alone|| / ||alone||`` per model and
backend (a leak through the padding shows as ~1e-1, rounding as ~1e-7), and the README's sample
training on the GPU with the ``cuda`` backend.

    python benchmarks/padding_gpu.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from test_padding import DETECTORS, trained_like, valid_outputs  # noqa: E402

from detect.models import create_model  # noqa: E402


def relative_difference(name: str, backend: str, length: int) -> float:
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    backbone = {"input_dim": 64, "embd_dim": 128, "arch": [2, 2, 5]}
    if "mamba" in name:
        backbone["backend"] = backend
    model = trained_like(create_model(name, num_classes=8, head_dim=128, backbone=backbone), seed=1).cuda().eval()
    g = torch.Generator(device="cuda").manual_seed(2)
    video, other = torch.randn(64, length, generator=g, device="cuda"), torch.randn(64, 2000, generator=g, device="cuda")
    padded = -(-length // 32) * 32
    alone = torch.full((1, 64, padded), 7.5, device="cuda")
    alone[0, :, :length] = video
    batch = torch.full((2, 64, 2016), -3.0, device="cuda")
    batch[0, :, :2000], batch[1, :, :length] = other, video
    with torch.no_grad():
        a = valid_outputs(model(alone, torch.arange(padded, device="cuda")[None] < length), 0, length)
        b = valid_outputs(model(batch, torch.arange(2016, device="cuda")[None] < torch.tensor([[2000], [length]],
                                                                                            device="cuda")), 1, length)
    a, b = torch.cat([x.flatten() for x in a]).double(), torch.cat([x.flatten() for x in b]).double()
    return ((a - b).norm() / a.norm()).item()


def main() -> None:
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; fp32, tf32 off; video of 997 steps alone "
          f"(padded to 1024) vs batched with a 2000-step video (padded to 2016)")
    print(f"{'model':<20}{'backend':<9}{'rel. difference':>16}")
    for name in DETECTORS:
        for backend in (("cuda", "torch") if "mamba" in name else ("-",)):
            print(f"{name:<20}{backend:<9}{relative_difference(name, backend, 997):>16.2e}")


if __name__ == "__main__":
    main()
