"""``ms-temba``: Multi-Scale Temporal Mamba for dense per-frame action detection, with exact masking.

    x (B, C_in, T) -> Linear(C_in, d1)
    block k (width d_k, dilation k): a local module d_{k-1} -> d_k, then the sequence is split
        into k groups, run through bidirectional SSM layers and put back in place; an auxiliary
        per-step head Linear(d_k, K) (deep supervision)
    fuser: sum_k LN(Linear(d_k, d_3) block_k) (one LayerNorm), one more bidirectional SSM layer,
        Linear(d_3, K)

``variant`` picks the paper version:

* ``v3`` (the public HEAD code): the local module is Linear, LayerNorm, GELU; the groups are
  strided, ``x[:, j::k]``, each with its own SSM layer.
* ``v1`` (paper v1/v2, the Jan 2025 code's "Temporal Local Module"): the local module is a
  kernel-3 conv with dilation k, LayerNorm, GELU; the groups are k contiguous chunks of
  ``ceil(T/k)`` steps, folded into the batch through one shared SSM layer.

Every SSM layer is Vim's v2 layer as the public code builds it, ``RMSNorm_f(x + DropPath(ViM(RMSNorm
x)))`` with ``divide_out``; parameter names follow Vim (``mixer.*``, ``norm``, ``norm_f``). Unlike the
public code, padding never reaches a valid step: each group holds its valid steps first (chunks
are cut from each video's own length), and each mixer reads zeros on padding and reverses within
the valid length. The unused 1000-way heads of the public code are not built.

The C-state term (off unless ``cstate_weight > 0``): per block with several groups, the mean
over group pairs of the batch-mean cosine between the groups' C states (``(B, d_state, L_g)``,
the two directions' C projections averaged, on the steps valid in both groups). ``align``
minimises ``1 - cos`` (what the public code does with weight 100, although it calls the term
"diversity"); ``diverse`` minimises ``cos`` (the form left commented out there). See
``docs/MODELS.md`` for the ablation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.masked import MaskedConv1D
from ..layers.mamba import ResidualViM
from ..outputs import FrameOutput
from .registry import register_model

VARIANTS = ("v3", "v1")
CSTATE_OBJECTIVES = ("align", "diverse")


@dataclass
class MSTembaConfig:
    num_classes: int
    input_dim: int = 1024                       # I3D; 768 for CLIP ViT-L/14
    embed_dims: tuple[int, int, int] = (256, 384, 576)
    dilations: tuple[int, int, int] = (1, 2, 3)
    variant: str = "v3"                         # v3: strided groups, own SSMs; v1: local conv, chunks, shared SSM
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    drop_path: float = 0.1
    cstate_weight: float = 0.0                  # the public code trains with 100 (align)
    cstate_objective: str = "align"             # align: minimise 1 - cos; diverse: minimise cos
    backend: str | None = None                  # auto / cuda / triton / torch

    def __post_init__(self) -> None:
        self.embed_dims, self.dilations = tuple(self.embed_dims), tuple(self.dilations)
        if len(self.embed_dims) != len(self.dilations) or min(self.dilations) < 1:
            raise ValueError(f"one width per dilation (each >= 1), got {self.embed_dims} and {self.dilations}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.cstate_objective not in CSTATE_OBJECTIVES:
            raise ValueError(f"cstate_objective must be one of {CSTATE_OBJECTIVES}, got {self.cstate_objective!r}")
        if self.cstate_weight < 0:
            raise ValueError(f"cstate_weight must be >= 0 (cstate_objective picks the sign), got {self.cstate_weight}")


def split_strided(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """``x (B, T, ...)`` -> the k groups ``x[:, j::k]``; a video's valid steps come first in each."""
    return [x[:, j::k] for j in range(k)]


def merge_strided(parts: list[torch.Tensor], length: int) -> torch.Tensor:
    """Inverse of :func:`split_strided` for a sequence of ``length`` steps."""
    out = parts[0].new_empty(parts[0].shape[0], length, *parts[0].shape[2:])
    for j, part in enumerate(parts):
        out[:, j::len(parts)] = part
    return out


def contiguous_chunks(lengths: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(B, k, c)`` of k contiguous chunks of ``ceil(length/k)`` steps cut from each
    video's own length, and which of them are valid (positions of invalid slots are 0)."""
    chunk = torch.div(lengths + k - 1, k, rounding_mode="floor")
    c = max(int(chunk.max()), 1)
    i = torch.arange(c, device=lengths.device)
    pos = torch.arange(k, device=lengths.device)[None, :, None] * chunk[:, None, None] + i
    valid = (i < chunk[:, None, None]) & (pos < lengths[:, None, None])
    return torch.where(valid, pos, 0), valid


def fold_chunks(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """``x (B, T, C)`` -> ``(B*k, c, C)``, chunk j of video b at row ``b*k + j``."""
    b, k, c = pos.shape
    return x.gather(1, pos.reshape(b, k * c, 1).expand(-1, -1, x.shape[-1])).reshape(b * k, c, x.shape[-1])


def unfold_chunks(y: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`fold_chunks` on the valid positions; zeros elsewhere."""
    b, k, c = pos.shape
    target = torch.where(valid, pos, length).reshape(b, k * c, 1).expand(-1, -1, y.shape[-1])
    out = y.new_zeros(b, length + 1, y.shape[-1])  # invalid slots all land in the extra last step
    return out.scatter(1, target, y.reshape(b, k * c, -1))[:, :length]


class BiSSMLayer(ResidualViM):
    """``(B, L, d), mask (B, L) -> (B, L, d)``: ``RMSNorm_f(x + DropPath(ViM(RMSNorm(x))))`` (Vim v2,
    directions averaged); with ``return_c`` also the mixer's C state ``(B, d_state, L)``."""

    def __init__(self, dim: int, cfg: MSTembaConfig) -> None:
        super().__init__(dim, cfg.d_state, cfg.expand, divide_out=True, drop_path=cfg.drop_path, backend=cfg.backend,
                         d_conv=cfg.d_conv)
        self.norm_f = nn.RMSNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, return_c: bool = False):
        out = super().forward(x, mask, return_c)
        return (self.norm_f(out[0]), out[1]) if return_c else self.norm_f(out)


GroupStates = list[tuple[torch.Tensor, torch.Tensor]]  # per group: C state (B, N, L_g), mask (B, L_g)


class StridedSSM(nn.Module):
    """v3: groups ``x[:, j::k]``, each through its own :class:`BiSSMLayer`, re-interleaved."""

    def __init__(self, dim: int, dilation: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.groups = nn.ModuleList(BiSSMLayer(dim, cfg) for _ in range(dilation))
        self.return_c = cfg.cstate_weight > 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, GroupStates]:
        """Also each group's C state and mask when the C-state term is on (else an empty list)."""
        k = len(self.groups)
        outs, states = [], []
        for layer, xg, mg in zip(self.groups, split_strided(x, k), split_strided(mask, k)):
            if self.return_c:
                y, c_state = layer(xg, mg, return_c=True)
                states.append((c_state, mg))
            else:
                y = layer(xg, mg)
            outs.append(y)
        return merge_strided(outs, x.shape[1]), states


class ChunkedSSM(nn.Module):
    """v1: k contiguous chunks of each video, folded into the batch through one shared layer."""

    def __init__(self, dim: int, dilation: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.dilation = dilation
        self.layer = BiSSMLayer(dim, cfg)
        self.return_c = cfg.cstate_weight > 0

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, GroupStates]:
        pos, valid = contiguous_chunks(mask.sum(-1), self.dilation)
        b, k, c = pos.shape
        folded, folded_mask = fold_chunks(x, pos), valid.reshape(b * k, c)
        if not self.return_c:
            return unfold_chunks(self.layer(folded, folded_mask), pos, valid, x.shape[1]), []
        y, c_state = self.layer(folded, folded_mask, return_c=True)
        c_state = c_state.reshape(b, k, -1, c)
        return unfold_chunks(y, pos, valid, x.shape[1]), [(c_state[:, j], valid[:, j]) for j in range(k)]


class LinearProjection(nn.Sequential):
    """v3's local module: Linear, LayerNorm, GELU (per step) on ``(B, T, C)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Linear(c_in, c_out), nn.LayerNorm(c_out), nn.GELU())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


class TemporalLocalModule(nn.Module):
    """v1's local module: masked kernel-3 conv with dilation k, LayerNorm, GELU on ``(B, T, C)``."""

    def __init__(self, c_in: int, c_out: int, dilation: int) -> None:
        super().__init__()
        self.conv = MaskedConv1D(c_in, c_out, 3, dilation=dilation)
        self.norm = nn.LayerNorm(c_out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(self.conv(x.transpose(1, 2), mask[:, None])[0].transpose(1, 2)))


class TembaBlock(nn.Module):
    def __init__(self, c_in: int, dim: int, dilation: int, cfg: MSTembaConfig) -> None:
        super().__init__()
        if cfg.variant == "v3":
            self.proj, self.ssm = LinearProjection(c_in, dim), StridedSSM(dim, dilation, cfg)
        else:
            self.proj, self.ssm = TemporalLocalModule(c_in, dim, dilation), ChunkedSSM(dim, dilation, cfg)
        self.aux_head = nn.Linear(dim, cfg.num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, GroupStates]:
        return self.ssm(self.proj(x, mask), mask)


def cstate_similarity(states: GroupStates) -> torch.Tensor:
    """Mean over group pairs of the batch-mean cosine between two groups' C states, each
    flattened over ``(d_state, steps)`` on the steps valid in both; needs two groups or more."""
    sims = []
    for a in range(len(states)):
        for b in range(a + 1, len(states)):
            (ca, ma), (cb, mb) = states[a], states[b]
            n = min(ca.shape[-1], cb.shape[-1])
            both = (ma[:, :n] & mb[:, :n])[:, None].to(ca.dtype)
            sims.append(F.cosine_similarity((ca[..., :n] * both).flatten(1), (cb[..., :n] * both).flatten(1),
                                            dim=1, eps=1e-8).mean())
    return torch.stack(sims).mean()


@register_model("ms-temba", config=MSTembaConfig, output=FrameOutput, streams=("features",),
                description="MS-Temba: dilated multi-scale bidirectional SSM blocks, Mamba fuser, deep supervision",
                example={"num_classes": 157},
                input_shapes=lambda cfg: {"features": ("model.input_dim", (cfg.input_dim,))},
                tiny={"input_dim": 6, "embed_dims": [8, 12, 16], "backend": "torch"})
class MSTemba(nn.Module):
    def __init__(self, cfg: MSTembaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = cfg.embed_dims
        self.embed = nn.Linear(cfg.input_dim, dims[0])
        self.blocks = nn.ModuleList(TembaBlock(dims[max(i - 1, 0)], d, k, cfg)
                                    for i, (d, k) in enumerate(zip(dims, cfg.dilations)))
        self.fuse_proj = nn.ModuleList(nn.Linear(d, dims[-1]) for d in dims)
        self.fuse_norm = nn.LayerNorm(dims[-1])
        self.fuser = BiSSMLayer(dims[-1], cfg)
        self.head = nn.Linear(dims[-1], cfg.num_classes)

    @property
    def capturable(self) -> bool:
        """Whether a forward never waits for the GPU (a CUDA graph can hold it): v1 sizes its
        chunks by the longest video, a number the host reads."""
        return self.cfg.variant == "v3"

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> FrameOutput:
        """``features (B, C, T)``, ``mask (B, T)`` -> logits ``(B, T, K)``, one auxiliary logit
        tensor per block and, with ``cstate_weight > 0``, the weighted C-state term."""
        x = self.embed(features.transpose(1, 2))
        outs, block_states = [], []
        for block in self.blocks:
            x, states = block(x, mask)
            outs.append(x)
            block_states.append(states)
        fused = sum(self.fuse_norm(proj(o)) for proj, o in zip(self.fuse_proj, outs))
        logits = self.head(self.fuser(fused, mask))
        out = FrameOutput(logits, [block.aux_head(o) for block, o in zip(self.blocks, outs)])
        grouped = [s for s in block_states if len(s) > 1]
        if self.cfg.cstate_weight > 0 and grouped:
            sims = torch.stack([cstate_similarity(s) for s in grouped])
            term = (1 - sims).sum() if self.cfg.cstate_objective == "align" else sims.sum()
            out.extra_losses["cstate_loss"] = self.cfg.cstate_weight * term
        return out
