"""The skeleton tower's stem (SG-Mamba, VideoMamba style): one vector per window of heatmaps.

    windows (N, w, S, S)  (N = valid windows of the batch, w heatmap frames each)
    -> Conv3d(1, d, (1, p, p)) patches: w * (S/p)^2 tokens, in (t, y, x) order
    -> + learned spatial (S/p)^2 and temporal w position embeddings; a class token first
    -> ``depth`` bidirectional Mamba layers, x + DropPath(ViM(RMSNorm x)), directions summed
    -> RMSNorm, mean over the patch tokens: (N, d)

Only valid windows are encoded (padding never costs a scan); the result is scattered back to
``(B, d, T)`` with zeros on padding. Selecting them needs their count on the host, which waits for
the GPU; with ``max_windows`` set, every training batch encodes exactly that many windows (its
valid ones, then copies of the first, thrown away), so the training step has fixed shapes and can
be replayed from a CUDA graph (``optim.cuda_graph``). Evaluation selects as before.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from ..ops.graphs import capturing
from .mamba import ResidualViM


@dataclass
class HeatmapStemConfig:
    window: int = 8              # heatmap frames per step (the appearance grid's window)
    size: int = 56
    patch: int = 7
    dim: int = 576
    depth: int = 3
    d_state: int = 16
    expand: int = 2
    drop_path: float = 0.1
    max_windows: int | None = None   # valid steps per training batch at most: fixed shapes for a CUDA graph
    recompute: bool = True           # rerun conv and projections (not the scans) in backward: less memory

    def __post_init__(self) -> None:
        if self.size % self.patch:
            raise ValueError(f"heatmap size {self.size} is not a multiple of the patch {self.patch}")
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"heatmap max_windows must be at least 1, got {self.max_windows}")


class HeatmapStem(nn.Module):
    def __init__(self, cfg: HeatmapStemConfig, backend: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        grid = cfg.size // cfg.patch
        self.patch_embed = nn.Conv3d(1, cfg.dim, (1, cfg.patch, cfg.patch), stride=(1, cfg.patch, cfg.patch))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, cfg.dim))
        self.temporal_pos_embedding = nn.Parameter(torch.zeros(1, cfg.window, 1, cfg.dim))
        self.layers = nn.ModuleList(ResidualViM(cfg.dim, cfg.d_state, cfg.expand, drop_path=cfg.drop_path,
                                                backend=backend, recompute=cfg.recompute) for _ in range(cfg.depth))
        self.norm_f = nn.RMSNorm(cfg.dim, eps=1e-5)
        for p in (self.cls_token, self.pos_embed, self.temporal_pos_embedding):
            nn.init.trunc_normal_(p, std=0.02)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """``(N, w, S, S)`` -> ``(N, d)``."""
        n, w = windows.shape[:2]
        if w != self.cfg.window or windows.shape[-1] != self.cfg.size:
            raise ValueError(f"heatmap windows {tuple(windows.shape[1:])} do not match the stem "
                             f"({self.cfg.window}, {self.cfg.size}, {self.cfg.size})")
        x = self.patch_embed(windows[:, None].to(self.patch_embed.weight.dtype))   # (N, d, w, g, g)
        x = x.flatten(3).permute(0, 2, 3, 1) + self.pos_embed[:, None] + self.temporal_pos_embedding
        x = torch.cat([self.cls_token.expand(n, -1, -1), x.reshape(n, -1, self.cfg.dim)], 1)
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)[:, 1:].mean(1)

    def check_windows(self, mask: torch.Tensor) -> None:
        """A batch fits ``max_windows`` (reads the count on the host)."""
        count = int(mask.sum())
        if count > self.cfg.max_windows:
            raise ConfigError(f"model.heatmap.max_windows is {self.cfg.max_windows} but a batch has {count} valid "
                              "steps (at most batch_size x the longest video's steps): raise it")

    def forward(self, heatmaps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``heatmaps (B, T, w, S, S)``, ``mask (B, T)`` -> ``(B, d, T)``."""
        b, t = mask.shape
        if self.cfg.max_windows is None or not self.training:  # only a training step is graphed
            out = heatmaps.new_zeros(b, t, self.cfg.dim, dtype=self.cls_token.dtype)
            if mask.any():
                out[mask] = self.encode(heatmaps[mask]).to(out.dtype)
            return out.transpose(1, 2)
        if not capturing(mask.device):  # a graph's trainer checks on the host
            self.check_windows(mask)
        picked = torch.nonzero_static(mask.flatten(), size=self.cfg.max_windows, fill_value=-1)[:, 0]
        real = picked >= 0
        encoded = self.encode(heatmaps.flatten(0, 1).index_select(0, picked.clamp(min=0)))
        encoded = torch.where(real[:, None], encoded, 0).to(self.cls_token.dtype)
        # the fillers all land on one extra row, dropped
        rows = torch.where(real, picked, b * t)
        out = encoded.new_zeros(b * t + 1, self.cfg.dim).index_copy(0, rows, encoded)[:-1]
        return out.view(b, t, -1).transpose(1, 2)
