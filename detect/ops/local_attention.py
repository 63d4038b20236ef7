"""Attention within a window of steps, in blocks: work in proportion to ``T x (block + window)``
instead of ``T x T``.

ActionFormer's local self-attention lets step ``t`` attend to keys ``s`` with ``|t - s| <= w``
(``w = window // 2``) that are not padding, and a padded query to itself too (so that no row is
empty). :func:`local_attention_reference` computes exactly that with one ``T x T`` boolean mask;
on long videos almost all of its work is on pairs the mask then drops (at ``T = 6000`` and
``w = 9``, 99.7%). :func:`local_attention` cuts the queries into blocks of ``block`` steps and
gives each block its own keys, the ``block + 2w`` steps around it, with the same rule as a
``(block, block + 2w)`` mask: the same keys for every query, so the same function up to the
order of float sums (``tests/test_local_attention.py``, float64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .graphs import capturing


def local_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor,
                              half_window: int | None, dropout_p: float = 0.0) -> torch.Tensor:
    """``q, k, v (B, H, T, D)``, ``key_mask (B, T)`` bool -> ``(B, H, T, D)``; ``half_window``
    None: global attention."""
    length = q.shape[2]
    steps = torch.arange(length, device=q.device)
    allowed = key_mask[:, None, None, :].expand(-1, 1, length, length)
    if half_window is not None:
        allowed = allowed & ((steps[None] - steps[:, None]).abs() <= half_window)
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)


class BlockBand:
    """The ``(block, block + 2w)`` rule shared by every block: key ``j`` of a block is step
    ``start - w + j``, so query ``i`` sees it when ``0 <= j - i <= 2w``; ``j = i + w`` is the query
    itself. Kept per device: it depends on nothing else (and is not kept while a graph captures)."""

    def __init__(self, half_window: int, block: int) -> None:
        self.half_window, self.block = half_window, block
        self._kept: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def for_window(cls, window: int) -> "BlockBand":
        """ActionFormer's ``window``: blocks whose keys fill 64 steps, a tile of the fused
        attention kernels, where the window allows (46-step blocks at window 19)."""
        half = window // 2
        return cls(half, max(32, 64 - 2 * half))

    def masks(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Band and diagonal, ``(block, block + 2w)`` bool each."""
        if device in self._kept:
            return self._kept[device]
        w, c = self.half_window, self.block
        offset = torch.arange(c + 2 * w, device=device)[None] - torch.arange(c, device=device)[:, None]
        masks = ((offset >= 0) & (offset <= 2 * w), offset == w)
        if not capturing(device):
            self._kept[device] = masks
        return masks


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor,
                    band: BlockBand, dropout_p: float = 0.0) -> torch.Tensor:
    """:func:`local_attention_reference` in blocks: ``q, k, v (B, H, T, D)``, ``key_mask (B, T)``
    bool -> ``(B, H, T, D)``."""
    batch, heads, length, dim = q.shape
    w, c = band.half_window, band.block
    blocks = -(-length // c)
    tail = blocks * c - length              # queries past the end, dropped at the end
    span = c + 2 * w

    def key_blocks(t: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B, H * blocks, span, D)
        t = F.pad(t, (0, 0, w, w + tail)).unfold(2, span, c)          # (B, H, blocks, D, span), a view
        return t.transpose(-1, -2).reshape(batch, heads * blocks, span, dim)

    queries = F.pad(q, (0, 0, 0, tail)).view(batch, heads * blocks, c, dim)
    within, diagonal = band.masks(q.device)
    valid = F.pad(key_mask, (w, w + tail)).unfold(1, span, c)          # (B, blocks, span)
    allowed = (valid[:, :, None, :] & within) | diagonal               # (B, blocks, block, span)
    allowed = allowed[:, None].expand(batch, heads, blocks, c, span).reshape(batch, heads * blocks, c, span)
    out = F.scaled_dot_product_attention(queries, key_blocks(k), key_blocks(v), attn_mask=allowed,
                                         dropout_p=dropout_p)
    # reshape, not view: fused kernels may hand back (B, span, H * blocks, D) memory, transposed
    return out.reshape(batch, heads, blocks * c, dim)[:, :, :length]
