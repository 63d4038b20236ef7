"""Channel-enhanced Cross-Mamba (CCM, SG-Mamba): two modalities exchange information before
their backbones, each one gating the other's state-space scan.

In a cross-Mamba layer the *query* stream alone provides the scanned input x and, through it,
B, C and the step size; the *other* stream enters only through the gate z::

    x_f, x_b = in_proj(query)            z_f, z_b = v_in_proj(other)        (each d wide)
    y_f = scan(x_f | z_f),  y_b = reverse(scan(reverse(x_b) | reverse(z_b)))   shared parameters
    out = [y_f, y_b]                                                       (2d channels)
    out = out + gamma_c * (out - SiLU(Conv1d_{2d->1}(out)))                channel enhancement
    out = out_proj(out)                                                    (d)

(``scan(x | z)`` is Mamba's branch: causal conv + SiLU on x, projections of x to B, C and the
step, selective scan, times SiLU(z).) Reversal is within each sequence's valid length, as in
every mixer here. The block around it is pre-norm with layer scale and drop path:
``y = q + DropPath(gamma * CrossMamba(LN(q), LN(other)) * mask)``; each direction reverses within
its own query's valid length and updates where both streams are valid (the public code passes
the visual mask in both directions). Parameter names follow the public code (``in_proj``, ``v_in_proj``,
``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .masked import drop_path, zero_padding
from .mamba import MambaConfig, add_branch_params, cat_rows, project_in, reversal, reverse_within, ssm_branches


class CrossMamba(nn.Module):
    """``query (B, L, d)``, ``other (B, L, d_other)``, ``mask (B, L)`` -> ``(B, L, d)``."""

    def __init__(self, d_model: int, d_other: int, d_state: int = 16, d_conv: int = 4,
                 channel_gamma: float = 1e-5, backend: str | None = None) -> None:
        super().__init__()
        self.cfg = MambaConfig(d_model, d_state=d_state, d_conv=d_conv, expand=1, backend=backend)
        self.in_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.v_in_proj = nn.Linear(d_other, 2 * d_model, bias=False)
        add_branch_params(self, self.cfg)
        self.channel_conv = nn.Conv1d(2 * d_model, 1, 1)
        self.channel_gamma = nn.Parameter(torch.full((1, 2 * d_model, 1), channel_gamma))
        self.out_proj = nn.Linear(2 * d_model, d_model, bias=False)

    def forward(self, query: torch.Tensor, other: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        rev = reversal(None if mask is None else mask.sum(-1), query.shape[1])
        if mask is not None:
            query, other = zero_padding(query, mask[..., None]), zero_padding(other, mask[..., None])
        x_f, x_b = project_in(self.in_proj, query).chunk(2, dim=1)
        z_f, z_b = project_in(self.v_in_proj, other).chunk(2, dim=1)
        forward = cat_rows([x_f, z_f], 1)
        backward = reverse_within(cat_rows([x_b, z_b], 1), rev)
        y = ssm_branches(self, [("", cat_rows([forward, backward], 0))], self.cfg)[0][0]
        y_f, y_b = y.chunk(2, dim=0)
        out = cat_rows([y_f, reverse_within(y_b, rev)], 1)                             # (B, 2d, L)
        out = out + self.channel_gamma * (out - F.silu(self.channel_conv(out)))
        return self.out_proj(out.transpose(1, 2))


class CrossMambaBlock(nn.Module):
    """Pre-norm residual around :class:`CrossMamba`, with layer scale (``init_scale``) and drop path."""

    def __init__(self, d_model: int, d_other: int, init_scale: float = 0.1, drop_path: float = 0.1,
                 **mamba) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.norm_other = nn.LayerNorm(d_other)
        self.mixer = CrossMamba(d_model, d_other, **mamba)
        self.gamma = nn.Parameter(torch.full((d_model,), init_scale))
        self.drop_rate = drop_path

    def forward(self, query: torch.Tensor, other: torch.Tensor, q_mask: torch.Tensor,
                other_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, d)``, ``(B, L, d_other)`` and their masks ``(B, L)`` -> ``(B, L, d)``: the
        update lands where both are valid; the query passes through where only it is."""
        both = q_mask & other_mask
        out = self.mixer(self.norm_q(query), zero_padding(self.norm_other(other), both[..., None]), q_mask)
        out = zero_padding(out, both[..., None])
        return zero_padding(query, q_mask[..., None]) + drop_path(self.gamma * out, self.drop_rate, self.training)


class CCMFusion(nn.Module):
    """``layers`` cross-Mamba layers per direction between appearance ``v (B, d_v, L)`` and
    skeleton ``h (B, d_h, L)`` features: ``v' = h2v(v, h)``, ``h' = v2h(h, v)``, both from the
    inputs of the layer. Each direction masks with its own query's valid steps (and the other's)."""

    def __init__(self, d_v: int, d_h: int, layers: int = 3, init_scale: float = 0.1, drop_path: float = 0.1,
                 **mamba) -> None:
        super().__init__()
        self.h2v = nn.ModuleList(CrossMambaBlock(d_v, d_h, init_scale, drop_path, **mamba) for _ in range(layers))
        self.v2h = nn.ModuleList(CrossMambaBlock(d_h, d_v, init_scale, drop_path, **mamba) for _ in range(layers))

    def forward(self, v: torch.Tensor, h: torch.Tensor, mask_v: torch.Tensor,
                mask_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v, h = v.transpose(1, 2), h.transpose(1, 2)
        for h2v, v2h in zip(self.h2v, self.v2h):
            v, h = h2v(v, h, mask_v, mask_h), v2h(h, v, mask_h, mask_v)
        return v.transpose(1, 2), h.transpose(1, 2)
