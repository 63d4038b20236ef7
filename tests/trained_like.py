"""Parameters drawn as training leaves them, for tests that must see a leak through padding.

LayerNorm biases and gains far from 0 and 1, residual scales near 1, non-zero conv biases: with
the initial ones (zero biases, 1e-4 scales) a leak through the padding is too small to see.
"""
import torch


def trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            if name.endswith(("A_log", "A_b_log")):
                p.copy_(torch.log(torch.rand(p.shape, generator=g, dtype=p.dtype) * 8 + 0.5))
            elif name.endswith("scale"):
                p.copy_(1 + 0.3 * noise)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.5 * noise)
            elif name.endswith("bias") or "norm" in name:
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / max(p[0].numel(), 1) ** 0.5)
    return model
