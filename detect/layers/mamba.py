"""Mamba mixers on stock primitives: unidirectional Mamba, ViM (Vim "bimamba v2") and DBM.

All mixers map ``(B, L, d) -> (B, L, d)`` and take an optional ``mask (B, L)`` (True on valid
steps, valid steps first). Padding never reaches a valid step: inputs are zeroed on padding
and the backward direction reverses each sequence *within its valid length*, so both
directions meet valid steps first and causality keeps the padded tail out. (The public
ActionMamba code flips the whole padded tensor, which runs the backward scan through the
padding before the valid steps.)

Parameter names follow mamba-ssm / Vim checkpoints: ``in_proj``, ``conv1d``, ``x_proj``,
``dt_proj``, ``A_log``, ``D``, ``out_proj`` and, for ViM, ``conv1d_b``, ``x_proj_b``,
``dt_proj_b``, ``A_b_log``, ``D_b``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..ops import causal_conv1d, selective_scan
from ..ops.scan_tape import recompute_without_scans
from .masked import drop_path, zero_padding


@dataclass(frozen=True)
class MambaConfig:
    d_model: int
    d_state: int = 16
    d_conv: int = 4
    expand: int = 1
    dt_rank: int | None = None          # None: ceil(d_model / 16)
    dt_min: float = 1e-3
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    backend: str | None = None          # auto / cuda / triton / torch (None: $MAMBA_TAD_BACKEND or auto)
    # Keep only the conv's input, the scan's output and its chunk states for backward, and run the
    # conv and the projections again there but not the scan, as mamba-ssm's fused path does
    # (detect/ops/scan_tape.py): the conv output and delta are not kept (benchmarks/saved_tensors.py
    # counts what is).
    recompute: bool = True

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


# Layout. The conv and the scan read (Bt, C, L) with time contiguous. As in mamba-ssm, such tensors
# are stored here as (C, Bt, L), "rows" of Bt * L steps per channel: then the projections on
# either side are single GEMMs that read and write that storage directly, and joining channels,
# batches or directions copies whole rows. A (Bt, L, C) tensor viewed as (Bt, C, L) instead makes
# every join and projection a transposing copy: the largest non-scan cost of the SG-Mamba heatmap
# stem (docs/BENCHMARKS.md).


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """``(Bt, C, L) -> (C, Bt * L)``: a view when ``x`` is stored as rows, else one copy."""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def from_rows(rows: torch.Tensor, batch: int) -> torch.Tensor:
    """``(C, Bt * L) -> (Bt, C, L)``, a view."""
    return rows.view(rows.shape[0], batch, -1).transpose(0, 1)


def cat_rows(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.cat`` of ``(Bt, C, L)`` tensors along channels (``dim=1``) or batch (``dim=0``),
    stored as rows; a lone tensor comes back as it is."""
    if len(tensors) == 1:
        return tensors[0]
    rows = torch.cat([to_rows(t) for t in tensors], 1 - dim)
    return from_rows(rows, rows.shape[1] // tensors[0].shape[-1])


def project_in(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear`` on ``x (B, L, d)`` -> ``(B, C, L)`` stored as rows: one GEMM ``W @ x^T``."""
    rows = linear.weight @ x.reshape(-1, x.shape[-1]).mT
    if linear.bias is not None:
        rows = rows + linear.bias[:, None]
    return from_rows(rows, x.shape[0])


def reversal(lengths: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """For :func:`reverse_within`: the time index ``(B, L)`` that reverses each sequence within its
    valid length, padding in place; None without lengths (a plain flip). A mixer builds it once and
    uses it for each of its reversals (four kernels fewer per reuse)."""
    if lengths is None:
        return None
    steps = torch.arange(length, device=lengths.device)
    return torch.where(steps[None] < lengths[:, None], lengths[:, None] - 1 - steps[None], steps[None])


def reverse_within(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """Reverse ``x (B, C, L)`` in time by :func:`reversal`'s ``index``. A flip keeps ``x``'s
    storage; a reversal within lengths returns rows."""
    if index is None:
        return x.flip(-1)
    channels_first = x.transpose(0, 1)
    return channels_first.gather(-1, index[None].expand_as(channels_first)).transpose(0, 1)


def add_branch_params(owner: nn.Module, cfg: MambaConfig, suffix: str = "") -> None:
    """Register one direction's parameters on ``owner`` under their checkpoint names, with
    mamba-ssm's initialisation (``suffix="_b"`` names ViM's backward direction)."""
    di, n, rank = cfg.d_inner, cfg.d_state, cfg.rank
    owner.add_module(f"conv1d{suffix}", nn.Conv1d(di, di, cfg.d_conv, groups=di, padding=cfg.d_conv - 1))
    owner.add_module(f"x_proj{suffix}", nn.Linear(di, rank + 2 * n, bias=False))
    dt_proj = nn.Linear(rank, di, bias=True)
    nn.init.uniform_(dt_proj.weight, -rank ** -0.5, rank ** -0.5)
    dt = torch.exp(torch.rand(di) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
    dt = dt.clamp(min=cfg.dt_init_floor)
    with torch.no_grad():
        dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
    owner.add_module(f"dt_proj{suffix}", dt_proj)
    A_log = nn.Parameter(torch.log(torch.arange(1, n + 1, dtype=torch.float32)).repeat(di, 1))
    D = nn.Parameter(torch.ones(di))
    A_log._no_weight_decay = D._no_weight_decay = True  # read by the optimiser's parameter groups
    owner.register_parameter("A_b_log" if suffix else "A_log", A_log)
    owner.register_parameter(f"D{suffix}", D)


def _join(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.cat`` that hands a lone tensor back as it is (a cat of one copies it)."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim)


def recomputes(cfg: MambaConfig, x: torch.Tensor) -> bool:
    """Whether backward recomputes the conv and the projections around the scan (not the scan)."""
    return cfg.recompute and torch.is_grad_enabled() and x.requires_grad


def ssm_branches(owner: nn.Module, directions: list[tuple[str, torch.Tensor]],
                 cfg: MambaConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Mamba's inner function without ``out_proj`` (conv, SiLU, x/dt projections, selective scan,
    gate), ``xz (Bt, 2 di, L) -> (Bt, di, L)``, for one or more parameter sets at once; also each
    direction's C projection ``(Bt, d_state, L)`` (MS-Temba's C-state term reads it).

    ``directions`` pairs a parameter suffix (``""`` or ``"_b"``) with its input. Their channels
    are stacked, so one depthwise conv and one scan do all the work: the conv and the scan are
    per channel, and B and C become one group per direction.
    """
    suffixes = [s for s, _ in directions]
    xs, zs = zip(*(xz.chunk(2, dim=1) for _, xz in directions))
    x, z = cat_rows(list(xs), 1), cat_rows(list(zs), 1)
    parts = [(getattr(owner, f"conv1d{s}"), getattr(owner, f"x_proj{s}"), getattr(owner, f"dt_proj{s}"),
              getattr(owner, "A_b_log" if s else "A_log"), getattr(owner, f"D{s}")) for s in suffixes]
    if recomputes(cfg, x):
        params = [p for part in parts for m in part for p in (m.parameters() if isinstance(m, nn.Module) else [m])]
        y, *Cs = recompute_without_scans(partial(_conv_and_scan, parts, cfg), (x, z), params)
    else:
        y, *Cs = _conv_and_scan(parts, cfg, x, z)
    return list(y.chunk(len(suffixes), dim=1)), Cs


def _conv_and_scan(parts: list[tuple], cfg: MambaConfig, x: torch.Tensor,
                   z: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(y, C of each direction)`` from the stacked conv inputs ``x`` and gates ``z (Bt, n di, L)``;
    ``parts``: each direction's ``(conv1d, x_proj, dt_proj, A_log, D)``."""
    x = causal_conv1d(x, _join([p[0].weight[:, 0] for p in parts], 0), _join([p[0].bias for p in parts], 0),
                      activation="silu", backend=cfg.backend)
    dts, Bs, Cs = [], [], []
    for (_, x_proj, dt_proj, _, _), x_d in zip(parts, x.chunk(len(parts), dim=1)):
        dt, B, C = torch.split(x_proj(x_d.transpose(1, 2)), [cfg.rank, cfg.d_state, cfg.d_state], dim=-1)
        dts.append(dt_proj.weight @ dt.reshape(-1, cfg.rank).mT)  # (di, Bt L); the bias goes in as delta_bias
        Bs.append(B.transpose(1, 2))
        Cs.append(C.transpose(1, 2))
    B, C = (torch.stack(v, 1) if len(v) > 1 else v[0].contiguous() for v in (Bs, Cs))
    y = selective_scan(x, from_rows(_join(dts, 0), x.shape[0]), -torch.exp(_join([p[3] for p in parts], 0).float()), B, C,
                       _join([p[4] for p in parts], 0).float(), z=z,
                       delta_bias=_join([p[2].bias for p in parts], 0).float(), delta_softplus=True,
                       backend=cfg.backend)
    return (y, *Cs)


def _lengths(mask: torch.Tensor | None) -> torch.Tensor | None:
    return None if mask is None else mask.sum(-1)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else zero_padding(x, mask[..., None])


class Mamba(nn.Module):
    """Unidirectional Mamba-1 mixer (stock ``mamba_ssm.Mamba`` parameters)."""

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_proj = nn.Linear(cfg.d_model, 2 * cfg.d_inner, bias=False)
        add_branch_params(self, cfg)
        self.out_proj = nn.Linear(cfg.d_inner, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, d)``, ``mask (B, L)`` -> ``(B, L, d)``."""
        xz = project_in(self.in_proj, _masked(x, mask))
        return self.out_proj(ssm_branches(self, [("", xz)], self.cfg)[0][0].transpose(1, 2))


class ViM(nn.Module):
    """Vim "bimamba v2": shared ``in_proj``/``out_proj`` and gate, separate backward parameters.

    ``divide_out`` averages the two directions (Vim, MS-Temba) instead of summing them
    (VideoMamba, ActionMamba).
    """

    def __init__(self, cfg: MambaConfig, divide_out: bool = False) -> None:
        super().__init__()
        self.cfg, self.divide_out = cfg, divide_out
        self.in_proj = nn.Linear(cfg.d_model, 2 * cfg.d_inner, bias=False)
        add_branch_params(self, cfg)
        add_branch_params(self, cfg, "_b")
        self.out_proj = nn.Linear(cfg.d_inner, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_c: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x (B, L, d)``, ``mask (B, L)`` -> ``(B, L, d)``; with ``return_c`` also the C state
        ``(B, d_state, L)``: the two directions' C projections averaged in time order."""
        rev = reversal(_lengths(mask), x.shape[1])
        xz = project_in(self.in_proj, _masked(x, mask))
        (y_f, y_b), (c_f, c_b) = ssm_branches(self, [("", xz), ("_b", reverse_within(xz, rev))], self.cfg)
        y = y_f + reverse_within(y_b, rev)
        y = y / 2 if self.divide_out else y
        out = self.out_proj(y.transpose(1, 2))
        return (out, (c_f + reverse_within(c_b, rev)) / 2) if return_c else out


class DBM(nn.Module):
    """Decomposed bidirectional Mamba (ActionMamba's default).

    ``in_proj`` gives 4 di channels: a forward half and a backward half (each x and z). The
    backward half is reversed, both halves run through *one* branch as a doubled batch with
    shared parameters, and ``out_proj`` maps the concatenated 2 di channels back to d.
    """

    def __init__(self, cfg: MambaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.in_proj = nn.Linear(cfg.d_model, 4 * cfg.d_inner, bias=False)
        add_branch_params(self, cfg)
        self.out_proj = nn.Linear(2 * cfg.d_inner, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        rev = reversal(_lengths(mask), x.shape[1])
        xz_f, xz_b = project_in(self.in_proj, _masked(x, mask)).chunk(2, dim=1)
        both = cat_rows([xz_f, reverse_within(xz_b, rev)], dim=0)
        y_f, y_b = ssm_branches(self, [("", both)], self.cfg)[0][0].chunk(2, dim=0)
        y = cat_rows([y_f, reverse_within(y_b, rev)], dim=1)
        return self.out_proj(y.transpose(1, 2))


MIXERS = {"mamba": Mamba, "vim": ViM, "dbm": DBM}


class ResidualViM(nn.Module):
    """VideoMamba's block on ``(B, L, d)``: ``x + DropPath(ViM(RMSNorm(x)))`` (parameters ``norm``,
    ``mixer``); ``divide_out`` averages the two directions instead of summing them."""

    def __init__(self, dim: int, d_state: int = 16, expand: int = 2, divide_out: bool = False,
                 drop_path: float = 0.0, backend: str | None = None, d_conv: int = 4, recompute: bool = True) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.mixer = ViM(MambaConfig(dim, d_state=d_state, d_conv=d_conv, expand=expand, backend=backend,
                                     recompute=recompute), divide_out=divide_out)
        self.drop_rate = drop_path

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_c: bool = False):
        """With ``return_c`` also the mixer's C state ``(B, d_state, L)``."""
        y = self.mixer(self.norm(x), mask, return_c=return_c)
        y, c_state = y if return_c else (y, None)
        out = x + drop_path(y, self.drop_rate, self.training)
        return (out, c_state) if return_c else out
