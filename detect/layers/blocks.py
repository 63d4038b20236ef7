"""Backbone blocks: ``(B, C, T), mask (B, 1, T) -> (B, C, T / stride), mask``.

``ConvBlock`` (ActionFormer's conv ablation), ``TransformerBlock`` (local-window self-attention,
the ActionFormer baseline) and ``MambaBlock`` (ActionMamba's ``MaskMambaBlock`` with a ViM or
DBM mixer). Module names follow the released ActionFormer / ActionMamba code.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..ops.local_attention import BlockBand, local_attention, local_attention_reference
from .masked import AffineDropPath, LayerNorm, MaskedConv1D, masked_max_pool, zero_padding
from .mamba import DBM, MambaConfig, ViM


class ConvBlock(nn.Module):
    """Two k=3 masked convs (widened x2) with a residual; strided 1x1 conv on the skip when downsampling."""

    def __init__(self, channels: int, stride: int = 1, expansion: int = 2) -> None:
        super().__init__()
        width = channels * expansion
        self.conv1 = MaskedConv1D(channels, width, 3, stride)
        self.conv2 = MaskedConv1D(width, channels, 3)
        self.downsample = MaskedConv1D(channels, channels, 1, stride) if stride > 1 else None

    def forward(self, x, mask):
        out, out_mask = self.conv1(x, mask)
        out, out_mask = self.conv2(F.relu(out), out_mask)
        identity = x if self.downsample is None else self.downsample(x, mask)[0]
        return F.relu(out + identity), out_mask


class LocalMaskedMHCA(nn.Module):
    """Multi-head attention within a window of ``window`` steps (-1: global), on strided
    depthwise-conv + LayerNorm projections of Q, K and V (ActionFormer's ``LocalMaskedMHCA``)."""

    def __init__(self, channels: int, n_head: int, window: int, stride: int = 1,
                 attn_pdrop: float = 0.0, proj_pdrop: float = 0.0) -> None:
        super().__init__()
        if channels % n_head:
            raise ValueError(f"{channels} channels do not split into {n_head} heads")
        self.n_head, self.window = n_head, window
        for name in ("query", "key", "value"):
            setattr(self, f"{name}_conv", MaskedConv1D(channels, channels, 3, stride, groups=channels, bias=False))
            setattr(self, f"{name}_norm", LayerNorm(channels))
            setattr(self, name, nn.Conv1d(channels, channels, 1))
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.band = BlockBand.for_window(window) if window > 0 else None

    def forward(self, x, mask):
        # Padding is zeroed once for the three convs, and not after them: the per-step norms and
        # projections follow, padded keys are masked out, and padded queries' outputs are zeroed.
        x = zero_padding(x, mask)
        q, q_mask = self.query_conv(x, mask, zeroed=True, zero_output=False)
        k, kv_mask = self.key_conv(x, mask, zeroed=True, zero_output=False)
        v, _ = self.value_conv(x, mask, zeroed=True, zero_output=False)
        q, k, v = (getattr(self, n)(getattr(self, f"{n}_norm")(t)) for n, t in (("query", q), ("key", k), ("value", v)))
        batch, channels, length = q.shape
        heads = [t.view(batch, self.n_head, channels // self.n_head, length).transpose(2, 3) for t in (q, k, v)]
        dropout = self.attn_drop.p if self.training else 0.0
        if self.band is None:
            out = local_attention_reference(*heads, kv_mask[:, 0], None, dropout)
        else:
            out = local_attention(*heads, kv_mask[:, 0], self.band, dropout)
        out = out.transpose(2, 3).reshape(batch, channels, length)
        return zero_padding(self.proj_drop(self.proj(out)), q_mask), q_mask


class TransformerBlock(nn.Module):
    """Pre-LN local-window transformer block; max-pool on the skip path when downsampling."""

    def __init__(self, channels: int, n_head: int = 4, window: int = 19, stride: int = 1,
                 drop_path: float = 0.1, mlp_ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1, self.ln2 = LayerNorm(channels), LayerNorm(channels)
        self.attn = LocalMaskedMHCA(channels, n_head, window, stride)
        self.stride = stride
        # Conv, GELU, Dropout, Conv, Dropout: the released checkpoints' keys are mlp.0 and mlp.3.
        self.mlp = nn.Sequential(nn.Conv1d(channels, mlp_ratio * channels, 1), nn.GELU(), nn.Dropout(dropout),
                                 nn.Conv1d(mlp_ratio * channels, channels, 1), nn.Dropout(dropout))
        self.drop_path_attn = AffineDropPath(channels, drop_path) if drop_path > 0 else nn.Identity()
        self.drop_path_mlp = AffineDropPath(channels, drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x, mask):
        out, out_mask = self.attn(self.ln1(x), mask)
        skip = x if self.stride == 1 else masked_max_pool(x, mask, self.stride)[0]
        out = zero_padding(skip, out_mask) + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(zero_padding(self.mlp(self.ln2(out)), out_mask))
        return out, out_mask


class MambaBlock(nn.Module):
    """``x + DropPath(Mixer(LN(x)) * mask)``, then max-pool x2 when downsampling (ActionMamba).

    The normalised input is zeroed on padding before the mixer's projection (the LayerNorm bias
    would otherwise turn padding into a constant that the backward scan carries into valid steps).
    ``norm`` is a token-wise ``nn.LayerNorm`` with ``(C,)`` parameters, as in ActionMamba's
    checkpoints (the other blocks use ActionFormer's ``(1, C, 1)`` channel LayerNorm).
    """

    def __init__(self, channels: int, mixer: str = "dbm", stride: int = 1, drop_path: float = 0.3,
                 d_state: int = 16, d_conv: int = 4, expand: int | None = None, divide_out: bool = False,
                 backend: str | None = None, recompute: bool = True) -> None:
        super().__init__()
        if mixer not in ("dbm", "vim"):
            raise ValueError(f"mixer must be 'dbm' or 'vim', got {mixer!r}")
        cfg = MambaConfig(channels, d_state=d_state, d_conv=d_conv, backend=backend, recompute=recompute,
                          expand=expand if expand is not None else (1 if mixer == "dbm" else 2))
        self.norm = nn.LayerNorm(channels)
        self.mamba = DBM(cfg) if mixer == "dbm" else ViM(cfg, divide_out=divide_out)
        self.drop_path = AffineDropPath(channels, drop_path) if drop_path > 0 else nn.Identity()
        self.stride = stride

    def forward(self, x, mask):
        y = self.mamba(self.norm(x.transpose(1, 2)), mask[:, 0]).transpose(1, 2)  # the mixer zeroes padding
        x = x + self.drop_path(zero_padding(y, mask))
        return (x, mask) if self.stride == 1 else masked_max_pool(x, mask, self.stride)


class MSFMambaBlock(MambaBlock):
    """``mamba-msf``: a :class:`MambaBlock` whose mixer output goes through MSF-Mamba's motion-aware
    state fusion over time (1-D CFD, multi-scale state fusion, ASWM) before the residual:
    ``x + DropPath(MSF(Mixer(LN x) * mask) * mask)``. Padding is zero there, so the differences
    and convolutions read zeros past a video's end (CFD's ``zero`` boundary): a padded video
    gives the results of the video alone."""

    def __init__(self, channels: int, msf, **kwargs) -> None:
        super().__init__(channels, **kwargs)
        from .msf import MSFFusion

        self.msf = MSFFusion(channels, msf, spatial=0)

    def forward(self, x, mask):
        y = self.mamba(self.norm(x.transpose(1, 2)), mask[:, 0]).transpose(1, 2)  # the mixer zeroes padding
        x = x + self.drop_path(zero_padding(self.msf(zero_padding(y, mask), mask), mask))
        return (x, mask) if self.stride == 1 else masked_max_pool(x, mask, self.stride)
