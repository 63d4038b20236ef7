"""InternVideo2's vision encoder (stage-1 and the vision tower of stage-2), for snippet features.

    frames (B, 3, T, H, W), ImageNet-normalised
    -> patch_embed: Conv3d(3, C, (tubelet, 14, 14)), tokens in (t, y, x) order   (B, T'·h·w, C)
    -> cls token first, plus the joint ``pos_embed`` (1, 1 + T0·16·16, C) of the checkpoint,
       interpolated to (T', h, w): linear in time, bicubic in space
    -> blocks: x + ls1(attn(norm1 x)); x + ls2(mlp(norm2 x)); RMSNorm; q/k RMSNorm over all heads
    -> [clip_projector (attention pooling, query = token mean) -> fc_norm -> head]: classification

Snippet features (:meth:`InternVideo2.features`) are the token outputs of one block, mean-pooled
over time and space without the class token, before any projector: what the public TAL
features are believed to be (1408-d for 1B, 3200-d for 6B). Plain PyTorch: scaled-dot-product
attention, no flash-attn / apex / deepspeed. Parameter names are the public code's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class InternVideo2Config:
    embed_dim: int = 1408
    depth: int = 40
    num_heads: int = 16
    mlp_ratio: float = 48 / 11
    patch_size: int = 14
    img_size: int = 224              # the checkpoint's pos_embed grid: img_size / patch_size per side
    num_frames: int = 8              # the checkpoint's pos_embed frames (tubelets)
    tubelet_size: int = 1
    qkv_bias: bool = False
    qk_normalization: bool = True
    init_values: float = 1e-5        # layer scale
    norm_eps: float = 1e-6
    attn_pool: bool = True           # clip_projector (stage-1 and stage-2 checkpoints have one)
    attn_pool_num_heads: int = 16
    clip_embed_dim: int = 768        # clip_projector's output width
    num_classes: int = 0             # fc_norm + head when > 0 (fine-tuned classifiers)
    mlp_gelu: str = "tanh"           # flash-attn's FusedMLP (how the weights were trained) uses tanh GELU

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads or self.embed_dim % self.attn_pool_num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by the heads "
                             f"({self.num_heads}, {self.attn_pool_num_heads})")
        if self.mlp_gelu not in ("tanh", "none"):
            raise ValueError(f"mlp_gelu must be 'tanh' or 'none' (exact), got {self.mlp_gelu!r}")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")

    @property
    def grid(self) -> int:
        return self.img_size // self.patch_size

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


VARIANTS = {  # the public constructors' settings
    "S14": dict(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
    "B14": dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "L14": dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
    "1B": dict(embed_dim=1408, depth=40, num_heads=16, mlp_ratio=48 / 11),
    "6B": dict(embed_dim=3200, depth=48, num_heads=25, mlp_ratio=4.0),
}


class LayerScale(nn.Module):
    """``x * gamma`` in float32 (the public code forces it: 1e-5 underflows bf16 products)."""

    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = torch.promote_types(x.dtype, torch.float32)
        return (x.to(wide) * self.gamma.to(wide)).to(x.dtype)


class Attention(nn.Module):
    """``(B, N, C) -> (B, N, C)``; q and k RMS-normalised over all heads together."""

    def __init__(self, cfg: InternVideo2Config) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=cfg.qkv_bias)
        self.qk_normalization = cfg.qk_normalization
        if cfg.qk_normalization:
            self.q_norm = nn.RMSNorm(dim, eps=cfg.norm_eps)
            self.k_norm = nn.RMSNorm(dim, eps=cfg.norm_eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.qk_normalization:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, gelu: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.gelu = gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.gelu))


class Block(nn.Module):
    def __init__(self, cfg: InternVideo2Config) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ls1 = LayerScale(cfg.embed_dim, cfg.init_values)
        self.norm2 = nn.RMSNorm(cfg.embed_dim, eps=cfg.norm_eps)
        self.mlp = Mlp(cfg.embed_dim, cfg.mlp_hidden, cfg.mlp_gelu)
        self.ls2 = LayerScale(cfg.embed_dim, cfg.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """``(B, 3, T, H, W) -> (B, T'·h·w, C)`` in (t, y, x) order, and ``(T', h, w)``."""

    def __init__(self, cfg: InternVideo2Config) -> None:
        super().__init__()
        kernel = (cfg.tubelet_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(3, cfg.embed_dim, kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])


class CrossAttention(nn.Module):
    """Attention of one query token over all tokens; separate q/k/v biases (public names)."""

    def __init__(self, dim: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.q_bias, self.k_bias, self.v_bias = (nn.Parameter(torch.zeros(dim)) for _ in range(3))
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        b, c = q.shape[0], q.shape[-1]
        heads = (F.linear(t, lin.weight, bias) for t, lin, bias in
                 ((q, self.q, self.q_bias), (k, self.k, self.k_bias), (v, self.v, self.v_bias)))
        q, k, v = (t.reshape(b, -1, self.num_heads, c // self.num_heads).transpose(1, 2) for t in heads)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, c))


class AttentionPooling(nn.Module):
    """``clip_projector``: ``(B, N, C) -> (B, clip_embed_dim)``, query = the mean token."""

    def __init__(self, cfg: InternVideo2Config) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1_q, self.norm1_k, self.norm1_v = (nn.LayerNorm(dim, eps=1e-5) for _ in range(3))
        self.cross_attn = CrossAttention(dim, cfg.attn_pool_num_heads, cfg.clip_embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query = x.mean(1, keepdim=True)
        return self.cross_attn(self.norm1_q(query), self.norm1_k(x), self.norm1_v(x)).squeeze(1)


def interpolate_pos_embed(pos_embed: torch.Tensor, frames: int, grid: int, size: tuple[int, int, int]) -> torch.Tensor:
    """Joint ``(1, 1 + frames·grid², C)`` -> ``(1, 1 + T·h·w, C)`` for ``size = (T, h, w)``:
    linear in time, then bicubic in space (the public fine-tuning code's order)."""
    t, h, w = size
    if (t, h, w) == (frames, grid, grid):
        return pos_embed
    cls, grid_pos = pos_embed[:, :1], pos_embed[:, 1:]
    c = grid_pos.shape[-1]
    x = grid_pos.reshape(1, frames, grid * grid, c).permute(0, 2, 3, 1).reshape(1, grid * grid * c, frames)
    if t != frames:
        x = F.interpolate(x.float(), size=t, mode="linear", align_corners=False)
    x = x.reshape(1, grid, grid, c, t).permute(0, 4, 3, 1, 2).reshape(t, c, grid, grid)
    if (h, w) != (grid, grid):
        x = F.interpolate(x.float(), size=(h, w), mode="bicubic", align_corners=False)
    x = x.permute(0, 2, 3, 1).reshape(1, t * h * w, c).to(pos_embed.dtype)
    return torch.cat([cls, x], dim=1)


class InternVideo2(nn.Module):
    def __init__(self, cfg: InternVideo2Config) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.num_frames // cfg.tubelet_size * cfg.grid ** 2, c))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        if cfg.attn_pool:
            self.clip_projector = AttentionPooling(cfg)
        if cfg.num_classes:
            self.fc_norm = nn.LayerNorm(cfg.clip_embed_dim if cfg.attn_pool else c)
            self.head = nn.Linear(cfg.clip_embed_dim if cfg.attn_pool else c, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def resolve_layer(self, layer: int) -> int:
        """``layer`` as a block count: ``N`` (1..depth) is the output of block N, ``-k`` of
        block ``depth + 1 - k`` (``-1``: the last)."""
        depth = self.cfg.depth
        resolved = layer if layer > 0 else depth + 1 + layer
        if not 1 <= resolved <= depth:
            raise ValueError(f"layer {layer} is outside 1..{depth} (or -1..-{depth}) for this {depth}-block encoder")
        return resolved

    def tokens(self, x: torch.Tensor, layer: int = -1) -> torch.Tensor:
        """``x (B, 3, T, H, W)`` -> the tokens after block ``layer`` (:meth:`resolve_layer`),
        ``(B, 1 + T'·h·w, C)`` with the class token first."""
        stop = self.resolve_layer(layer)
        x, size = self.patch_embed(x)
        pos = interpolate_pos_embed(self.pos_embed, self.cfg.num_frames // self.cfg.tubelet_size, self.cfg.grid, size)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1) + pos.to(x.dtype)
        for block in self.blocks[:stop]:
            x = block(x)
        return x

    def features(self, x: torch.Tensor, layer: int = -1) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, C)``: block ``layer``'s tokens, class token excluded,
        mean-pooled over time and space."""
        return self.tokens(x, layer)[:, 1:].mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Classification logits ``(B, num_classes)`` (checkpoints with a head)."""
        if not self.cfg.num_classes:
            raise ValueError("this encoder has no classification head (num_classes=0)")
        x = self.tokens(x, -1)
        pooled = self.clip_projector(x) if self.cfg.attn_pool else x[:, 1:].mean(1)
        return self.head(self.fc_norm(pooled))

