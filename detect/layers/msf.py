"""MSF-Mamba's motion-aware state fusion (Li et al., TMM 2026), for states laid out as
``(B, d, T, *space)``: 3-D ``(B, d, T, H, W)`` in the recognition model, 1-D ``(B, d, T)`` as a
detection block. No public code exists; every choice the paper leaves open is an option here
(``docs/MODELS.md`` lists them with their defaults).

* CFD (Eq. 10): ``D_t = F_t - (F_{t-1} + F_{t+1}) / 2``; the frames past either end are
  replicated by default (``boundary``: replicate, zero or reflect); ``difference: first`` is the
  ablation's ``D_t = F_t - F_{t-1}``.
* MCFM (Eq. 11-12): per scale k (window 3, 5, 7), ``F^(k) = S_k(F) + theta_k S_k'(D)`` where
  ``S_k`` is a "same" convolution over time (and space) with a cubic window, ``theta_k =
  sigmoid(logit_k)`` starts at 0.5; ``S_k'`` is ``S_k`` itself (``share_kernel``) or a kernel of
  its own; kernels mix channels (``dense``, what the paper's parameter counts imply) or not
  (``depthwise``, what its equation says).
* Each fused scale goes through GELU (``activation``). Eq. 12 has none, but then the whole path
  from ``D`` to the logits is linear and global average pooling cancels it: the mean over time
  of central differences telescopes to the two end frames' terms, so CFD would change almost
  nothing. ``activation: none`` keeps the equations literal.
* ASWM (Alg. 1): concatenated scales -> conv, ReLU, conv -> one logit per scale and position ->
  softmax over scales -> weighted sum; ``weighting: average`` is the paper's plain-mean ablation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .masked import zero_padding

BOUNDARIES = ("replicate", "zero", "reflect")


@dataclass
class MSFConfig:
    windows: tuple[int, ...] = (3,)             # (3, 5, 7) in the "+" variants
    difference: str = "central"                 # central (Eq. 10) | first (ablation) | none (no CFD)
    boundary: str = "replicate"
    share_kernel: bool = False                  # S_k for D too (Eq. 12 as written)
    channel_mixing: str = "dense"               # dense d->d kernels | depthwise
    weighting: str = "aswm"                     # aswm | average (with several windows)
    aswm_kernel: int = 1
    theta_init: float = 0.5
    activation: str = "gelu"                    # on each fused scale; "none" is Eq. 12 literally (see below)

    def __post_init__(self) -> None:
        self.windows = tuple(self.windows)
        if not self.windows or any(k < 1 or k % 2 == 0 for k in self.windows):
            raise ValueError(f"windows must be odd sizes >= 1, got {self.windows}")
        for name, value, allowed in [("difference", self.difference, ("central", "first", "none")),
                                     ("boundary", self.boundary, BOUNDARIES),
                                     ("channel_mixing", self.channel_mixing, ("dense", "depthwise")),
                                     ("weighting", self.weighting, ("aswm", "average")),
                                     ("activation", self.activation, ("gelu", "none"))]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if not 0 < self.theta_init < 1:
            raise ValueError(f"theta_init must be in (0, 1), got {self.theta_init}")


def frame_difference(x: torch.Tensor, kind: str = "central", boundary: str = "replicate") -> torch.Tensor:
    """``x (B, d, T, ...)`` -> the same-shaped difference along T (see the module docstring)."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if boundary == "zero":
        before = after = torch.zeros_like(x[:, :, :1])
    elif boundary == "replicate" or x.shape[2] == 1:  # one frame has nothing to reflect
        before, after = x[:, :, :1], x[:, :, -1:]
    else:  # reflect: the neighbour inside stands in for the missing one
        before, after = x[:, :, 1:2], x[:, :, -2:-1]
    prev = torch.cat([before, x[:, :, :-1]], 2)
    nxt = torch.cat([x[:, :, 1:], after], 2)
    if kind == "first":
        return x - prev
    return x - (prev + nxt) / 2


def _conv(dim: int, window: int, spatial: int, dense: bool) -> nn.Module:
    conv = nn.Conv3d if spatial == 2 else nn.Conv1d
    return conv(dim, dim, window, padding=window // 2, groups=1 if dense else dim)


class MCFM(nn.Module):
    """``F (B, d, T, ...)`` -> one fused state volume per window, same shape."""

    def __init__(self, dim: int, cfg: MSFConfig, spatial: int = 2) -> None:
        super().__init__()
        self.cfg = cfg
        dense = cfg.channel_mixing == "dense"
        self.fuse = nn.ModuleList(_conv(dim, k, spatial, dense) for k in cfg.windows)
        uses_d = cfg.difference != "none"
        self.fuse_motion = nn.ModuleList(_conv(dim, k, spatial, dense) for k in cfg.windows) \
            if uses_d and not cfg.share_kernel else None
        logit = math.log(cfg.theta_init / (1 - cfg.theta_init))
        self.theta_logit = nn.Parameter(torch.full((len(cfg.windows),), float(logit))) if uses_d else None

    @property
    def theta(self) -> torch.Tensor:
        """The motion weights ``theta_k`` in (0, 1)."""
        return torch.sigmoid(self.theta_logit)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``mask (B, 1, T)`` (padded sequences): the differences are zeroed on padding too, so
        that the motion kernels read zeros there, as they do past a sequence's end."""
        act = F.gelu if self.cfg.activation == "gelu" else (lambda t: t)
        if self.theta_logit is None:
            return [act(fuse(x)) for fuse in self.fuse]
        d = frame_difference(x, self.cfg.difference, self.cfg.boundary)
        if mask is not None:
            d = zero_padding(d, mask)
        motion = self.fuse_motion or self.fuse
        return [act(fuse(x) + theta * fm(d)) for fuse, fm, theta in zip(self.fuse, motion, self.theta)]


class ASWM(nn.Module):
    """Scales ``[(B, d, T, ...)] * K`` -> their per-position softmax-weighted sum, and the weights
    ``(B, K, T, ...)``; ``average`` gives every scale ``1/K``."""

    def __init__(self, dim: int, scales: int, cfg: MSFConfig, spatial: int = 2) -> None:
        super().__init__()
        self.average = cfg.weighting == "average" or scales == 1
        if not self.average:
            conv = nn.Conv3d if spatial == 2 else nn.Conv1d
            k = cfg.aswm_kernel
            self.attn = nn.Sequential(conv(scales * dim, dim, k, padding=k // 2), nn.ReLU(),
                                      conv(dim, scales, k, padding=k // 2))

    def forward(self, scales: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        stacked = torch.stack(scales, 1)                                   # (B, K, d, T, ...)
        if self.average:
            weights = torch.full_like(stacked[:, :, 0], 1 / len(scales))
        else:
            weights = F.softmax(self.attn(torch.cat(scales, 1)), dim=1)    # (B, K, T, ...)
        return (weights[:, :, None] * stacked).sum(1), weights


class MSFFusion(nn.Module):
    """MCFM then ASWM: ``(B, d, T, ...)`` -> ``(B, d, T, ...)``."""

    def __init__(self, dim: int, cfg: MSFConfig, spatial: int = 2) -> None:
        super().__init__()
        self.mcfm = MCFM(dim, cfg, spatial)
        self.aswm = ASWM(dim, len(cfg.windows), cfg, spatial)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.aswm(self.mcfm(x, mask))[0]
