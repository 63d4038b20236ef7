"""``ms-temba``: Multi-Scale Temporal Mamba for dense per-frame action detection (MS-Temba, paper v3
= the public HEAD code), with exact masking.

    x (B, C_in, T) -> Linear(C_in, d1)
    block k (k = 1..3, width d_k, dilation k): LinearProjection(d_{k-1} -> d_k), then the sequence
        is split into k strided groups x[:, j::k], each run through its own bidirectional SSM
        layer, and re-interleaved; an auxiliary per-step head Linear(d_k, K) (deep supervision)
    fuser: sum_k LN(Linear(d_k, d_3) block_k) (one LayerNorm), one more bidirectional SSM layer,
        Linear(d_3, K)

Every SSM layer is Vim's v2 layer as the public code builds it, ``RMSNorm_f(x + DropPath(ViM(RMSNorm
x)))`` with ``divide_out``; parameter names follow Vim (``mixer.*``, ``norm``, ``norm_f``). Unlike the
public code, padding never reaches a valid step: every group's valid steps come first in it, and
each mixer reads zeros on padding and reverses within the valid length. The unused 1000-way heads
of the public code are not built.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import drop_path
from .mamba import MambaConfig, ViM
from .outputs import FrameOutput
from .registry import register_model


@dataclass
class MSTembaConfig:
    num_classes: int
    name: str = "ms-temba"
    input_dim: int = 1024                       # I3D; 768 for CLIP ViT-L/14
    embed_dims: tuple[int, int, int] = (256, 384, 576)
    dilations: tuple[int, int, int] = (1, 2, 3)
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    drop_path: float = 0.1
    backend: str | None = None                  # auto / cuda / torch

    def __post_init__(self) -> None:
        self.embed_dims, self.dilations = tuple(self.embed_dims), tuple(self.dilations)
        if len(self.embed_dims) != len(self.dilations) or min(self.dilations) < 1:
            raise ValueError(f"one width per dilation (each >= 1), got {self.embed_dims} and {self.dilations}")


class BiSSMLayer(nn.Module):
    """``(B, L, d), mask (B, L) -> (B, L, d)``: ``RMSNorm_f(x + DropPath(ViM(RMSNorm(x))))``."""

    def __init__(self, dim: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.mixer = ViM(MambaConfig(dim, d_state=cfg.d_state, d_conv=cfg.d_conv, expand=cfg.expand,
                                     backend=cfg.backend), divide_out=True)
        self.drop_rate = cfg.drop_path
        self.norm_f = nn.RMSNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.norm_f(x + drop_path(self.mixer(self.norm(x), mask), self.drop_rate, self.training))


class DilatedSSM(nn.Module):
    """Groups ``x[:, j::k]``, each through its own :class:`BiSSMLayer`, re-interleaved."""

    def __init__(self, dim: int, dilation: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.groups = nn.ModuleList(BiSSMLayer(dim, cfg) for _ in range(dilation))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k = len(self.groups)
        out = torch.empty_like(x)
        for j, layer in enumerate(self.groups):  # a group's valid steps come first: j + i*k < length
            out[:, j::k] = layer(x[:, j::k], mask[:, j::k])
        return out


class LinearProjection(nn.Sequential):
    """Linear, LayerNorm, GELU (per step)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Linear(c_in, c_out), nn.LayerNorm(c_out), nn.GELU())


class TembaBlock(nn.Module):
    def __init__(self, c_in: int, dim: int, dilation: int, num_classes: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.proj = LinearProjection(c_in, dim)
        self.ssm = DilatedSSM(dim, dilation, cfg)
        self.aux_head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.ssm(self.proj(x), mask)


@register_model("ms-temba", config=MSTembaConfig, task="dense", streams=("features",),
                description="MS-Temba: dilated multi-scale bidirectional SSM blocks, Mamba fuser, deep supervision",
                example={"num_classes": 157},
                input_channels=lambda cfg: {"features": ("model.input_dim", cfg.input_dim)})
class MSTemba(nn.Module):
    def __init__(self, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = cfg.embed_dims
        self.embed = nn.Linear(cfg.input_dim, dims[0])
        self.blocks = nn.ModuleList(TembaBlock(dims[max(i - 1, 0)], d, k, cfg.num_classes, cfg)
                                    for i, (d, k) in enumerate(zip(dims, cfg.dilations)))
        self.fuse_proj = nn.ModuleList(nn.Linear(d, dims[-1]) for d in dims)
        self.fuse_norm = nn.LayerNorm(dims[-1])
        self.fuser = BiSSMLayer(dims[-1], cfg)
        self.head = nn.Linear(dims[-1], cfg.num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> FrameOutput:
        """``features (B, C, T)``, ``mask (B, T)`` -> logits ``(B, T, K)`` and one auxiliary logit
        tensor per block."""
        x = self.embed(features.transpose(1, 2))
        outs = []
        for block in self.blocks:
            x = block(x, mask)
            outs.append(x)
        fused = sum(self.fuse_norm(proj(o)) for proj, o in zip(self.fuse_proj, outs))
        logits = self.head(self.fuser(fused, mask))
        return FrameOutput(logits, [block.aux_head(o) for block, o in zip(self.blocks, outs)])
