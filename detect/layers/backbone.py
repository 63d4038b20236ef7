"""Backbones: masked conv embedding, stem blocks (level 0), branch blocks (levels 1..n, x2 each).

One config class per block type; each builds its own blocks, so a backbone option that a block
does not use is an unknown key, never silently ignored. Module names follow ActionFormer:
``embd.{i}.conv``, ``embd_norm.{i}``, ``stem.{i}``, ``branch.{i}``.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvBlock, MambaBlock, MSFMambaBlock, TransformerBlock
from .masked import LayerNorm, MaskedConv1D, sinusoid_position_encoding, zero_padding


@dataclass
class BackboneConfig:
    input_dim: int = 2048
    embd_dim: int = 512
    embd_kernel: int = 3
    arch: tuple[int, int, int] = (2, 2, 5)      # embedding convs, stem blocks, branch blocks
    scale_factor: int = 2
    max_seq_len: int = 2304

    def __post_init__(self) -> None:
        self.arch = tuple(self.arch)
        if len(self.arch) != 3:
            raise ValueError(f"arch is (embedding convs, stem blocks, branch blocks), got {self.arch}")

    @property
    def num_levels(self) -> int:
        return self.arch[2] + 1

    def block(self, stride: int, level: int) -> nn.Module:
        """The block of pyramid ``level`` (``stride`` 1 in the stem, ``scale_factor`` in the branch)."""
        raise NotImplementedError


@dataclass
class ConvBackboneConfig(BackboneConfig):
    def block(self, stride: int, level: int) -> nn.Module:
        return ConvBlock(self.embd_dim, stride)


@dataclass
class TransformerBackboneConfig(BackboneConfig):
    drop_path: float = 0.1
    n_head: int = 4
    window: int | list[int] = 19                 # per level as a list; -1 = global
    use_abs_pe: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.window, list) and len(self.window) != self.num_levels:
            raise ValueError(f"window lists one size per pyramid level ({self.num_levels}), got {self.window}")

    def block(self, stride: int, level: int) -> nn.Module:
        window = self.window[level] if isinstance(self.window, list) else self.window
        return TransformerBlock(self.embd_dim, self.n_head, window, stride, self.drop_path)


@dataclass
class MambaBackboneConfig(BackboneConfig):
    mixer: ClassVar[str]
    drop_path: float = 0.3                       # ActionMamba hard-codes 0.3
    d_state: int = 16
    d_conv: int = 4
    backend: str | None = None                   # auto / cuda / triton / torch (None: $MAMBA_TAD_BACKEND or auto)
    recompute: bool = True                       # rerun conv and projections (not the scan) in backward: less memory

    def mixer_options(self) -> dict:
        return {"d_state": self.d_state, "d_conv": self.d_conv, "backend": self.backend, "recompute": self.recompute}

    def block(self, stride: int, level: int) -> nn.Module:
        return MambaBlock(self.embd_dim, mixer=self.mixer, stride=stride, drop_path=self.drop_path,
                          **self.mixer_options())


@dataclass
class DBMBackboneConfig(MambaBackboneConfig):
    mixer: ClassVar[str] = "dbm"
    expand: int = 1

    def mixer_options(self) -> dict:
        return {**super().mixer_options(), "expand": self.expand}


@dataclass
class ViMBackboneConfig(MambaBackboneConfig):
    mixer: ClassVar[str] = "vim"
    expand: int = 2
    divide_out: bool = False                     # True averages the directions (Vim); ActionMamba sums

    def mixer_options(self) -> dict:
        return {**super().mixer_options(), "expand": self.expand, "divide_out": self.divide_out}


def _block_msf():
    from .msf import MSFConfig

    return MSFConfig(boundary="zero")


@dataclass
class MSFBackboneConfig(DBMBackboneConfig):
    """DBM blocks with MSF-Mamba's state fusion over time (``mamba-msf``)."""

    msf: typing.Any = field(default_factory=_block_msf)

    def __post_init__(self) -> None:
        from .msf import MSFConfig

        super().__post_init__()
        if isinstance(self.msf, dict):
            self.msf = MSFConfig(**{"boundary": "zero", **self.msf})
        if self.msf.boundary != "zero":
            raise ValueError("msf.boundary must be 'zero' in the detection block (padding reads as zeros)")

    def block(self, stride: int, level: int) -> nn.Module:
        return MSFMambaBlock(self.embd_dim, self.msf, mixer=self.mixer, stride=stride, drop_path=self.drop_path,
                             **self.mixer_options())


class Backbone(nn.Module):
    """``(B, C_in, T), mask (B, 1, T)`` -> per-level features ``(B, d, T / s_l)`` and masks."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_embd, n_stem, n_branch = cfg.arch
        self.embd = nn.ModuleList(MaskedConv1D(cfg.input_dim if i == 0 else cfg.embd_dim, cfg.embd_dim,
                                               cfg.embd_kernel, bias=False) for i in range(n_embd))
        self.embd_norm = nn.ModuleList(LayerNorm(cfg.embd_dim) for _ in range(n_embd))
        self.use_abs_pe = getattr(cfg, "use_abs_pe", False)
        if self.use_abs_pe:
            self.register_buffer("pos_embd", sinusoid_position_encoding(cfg.max_seq_len, cfg.embd_dim), persistent=False)
        self.stem = nn.ModuleList(cfg.block(1, 0) for _ in range(n_stem))
        self.branch = nn.ModuleList(cfg.block(cfg.scale_factor, level + 1) for level in range(n_branch))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        for i, (conv, norm) in enumerate(zip(self.embd, self.embd_norm)):
            x, mask = conv(x, mask, zeroed=i > 0, zero_output=False)  # zeroed after the norm
            x = F.relu(zero_padding(norm(x), mask))  # zero on padding: the next conv needs no input product
        if self.use_abs_pe:
            length = x.shape[-1]
            pe = self.pos_embd if length <= self.pos_embd.shape[-1] else F.interpolate(
                self.pos_embd, size=length, mode="linear", align_corners=False)
            x = x + zero_padding(pe[..., :length], mask)
        for block in self.stem:
            x, mask = block(x, mask)
        feats, masks = [x], [mask]
        for block in self.branch:
            x, mask = block(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks
