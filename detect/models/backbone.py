"""Backbones: masked conv embedding, stem blocks (level 0), branch blocks (levels 1..n, x2 each).

Pick one by name: ``conv``, ``transformer``, ``mamba-vim``, ``mamba-dbm``. Module names follow
ActionFormer: ``embd.{i}.conv``, ``embd_norm.{i}``, ``stem.{i}``, ``branch.{i}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock, MambaBlock, TransformerBlock
from .layers import LayerNorm, MaskedConv1D, sinusoid_position_encoding

BACKBONES = ("conv", "transformer", "mamba-vim", "mamba-dbm")


@dataclass
class BackboneConfig:
    name: str = "mamba-dbm"
    input_dim: int = 2048
    embd_dim: int = 512
    embd_kernel: int = 3
    arch: tuple[int, int, int] = (2, 2, 5)      # embedding convs, stem blocks, branch blocks
    scale_factor: int = 2
    drop_path: float = 0.3
    n_head: int = 4                              # transformer only
    window: int | list[int] = 19                 # transformer only; per level as a list; -1 = global
    use_abs_pe: bool = False                     # transformer only
    max_seq_len: int = 2304
    mamba: dict = field(default_factory=dict)    # d_state, d_conv, expand, divide_out, backend

    def __post_init__(self) -> None:
        if self.name not in BACKBONES:
            raise ValueError(f"unknown backbone {self.name!r}; expected one of {BACKBONES}")
        self.arch = tuple(self.arch)
        if isinstance(self.window, list) and len(self.window) != self.num_levels:
            raise ValueError(f"window lists one size per pyramid level ({self.num_levels}), got {self.window}")
        if self.use_abs_pe and self.name != "transformer":  # ActionMamba silently ignored it (HACS sets it)
            raise ValueError(f"use_abs_pe applies to the transformer backbone only, not {self.name!r}")
        if self.mamba and not self.name.startswith("mamba"):
            raise ValueError(f"'mamba' options apply to mamba backbones only, not {self.name!r}")
        unknown = set(self.mamba) - {"d_state", "d_conv", "expand", "divide_out", "backend"}
        if unknown:
            raise ValueError(f"unknown mamba options {sorted(unknown)}")

    @property
    def num_levels(self) -> int:
        return self.arch[2] + 1


def _block(cfg: BackboneConfig, stride: int, level: int) -> nn.Module:
    if cfg.name == "conv":
        return ConvBlock(cfg.embd_dim, stride)
    if cfg.name == "transformer":
        window = cfg.window[level] if isinstance(cfg.window, list) else cfg.window
        return TransformerBlock(cfg.embd_dim, cfg.n_head, window, stride, cfg.drop_path)
    return MambaBlock(cfg.embd_dim, mixer=cfg.name.split("-")[1], stride=stride, drop_path=cfg.drop_path,
                      **cfg.mamba)


class Backbone(nn.Module):
    """``(B, C_in, T), mask (B, 1, T)`` -> per-level features ``(B, d, T / s_l)`` and masks."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_embd, n_stem, n_branch = cfg.arch
        self.embd = nn.ModuleList(MaskedConv1D(cfg.input_dim if i == 0 else cfg.embd_dim, cfg.embd_dim,
                                               cfg.embd_kernel, bias=False) for i in range(n_embd))
        self.embd_norm = nn.ModuleList(LayerNorm(cfg.embd_dim) for _ in range(n_embd))
        if cfg.use_abs_pe:
            self.register_buffer("pos_embd", sinusoid_position_encoding(cfg.max_seq_len, cfg.embd_dim), persistent=False)
        self.stem = nn.ModuleList(_block(cfg, 1, 0) for _ in range(n_stem))
        self.branch = nn.ModuleList(_block(cfg, cfg.scale_factor, level + 1) for level in range(n_branch))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        for conv, norm in zip(self.embd, self.embd_norm):
            x, mask = conv(x, mask)
            x = F.relu(norm(x))
        if self.cfg.use_abs_pe:
            length = x.shape[-1]
            pe = self.pos_embd if length <= self.pos_embd.shape[-1] else F.interpolate(
                self.pos_embd, size=length, mode="linear", align_corners=False)
            x = x + pe[..., :length] * mask.to(x.dtype)
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks
