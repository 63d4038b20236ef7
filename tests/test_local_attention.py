"""Blocked local attention equals the T x T masked reference: every length against the block
size (shorter than a block, not a multiple, exact multiples), padded keys, padded queries, in
float64, gradients included."""
import pytest
import torch

from detect.ops.local_attention import BlockBand, local_attention, local_attention_reference


def _inputs(lengths: list[int], length: int, heads: int = 2, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(len(lengths), heads, length, dim, generator=g, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    key_mask = torch.arange(length)[None] < torch.tensor(lengths)[:, None]
    return q, k, v, key_mask


@pytest.mark.parametrize("length,block,half_window", [(5, 16, 9), (37, 16, 9), (64, 16, 9), (100, 32, 3),
                                                      (97, 8, 9), (50, 64, 0)])
def test_blocked_equals_the_masked_reference(length, block, half_window):
    q, k, v, key_mask = _inputs([length, max(1, length // 3)], length)
    ours = local_attention(q, k, v, key_mask, BlockBand(half_window, block))
    ref = local_attention_reference(q, k, v, key_mask, half_window)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    up = torch.randn_like(ref)
    grads = torch.autograd.grad((ours * up).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref * up).sum(), (q, k, v))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_a_key_outside_the_window_is_not_seen():
    """Changing a key just outside every query's window leaves that query's output unchanged,
    and changing one inside changes it (the check can fail)."""
    q, k, v, key_mask = _inputs([40], 40)
    band = BlockBand(3, 16)
    base = local_attention(q, k, v, key_mask, band)
    for step, seen in ((24, False), (23, True)):       # query 20 sees steps 17..23
        v2 = v.detach().clone()
        v2[:, :, step] += 1.0
        moved = (local_attention(q, k, v2, key_mask, band) - base)[:, :, 20].abs().max().item()
        assert (moved > 1e-6) == seen, (step, moved)


def test_blocked_takes_attention_output_in_any_memory_layout(monkeypatch):
    """CUDA's fused kernels may return ``(B, N, L, D)`` laid out as ``(B, L, N, D)``; the blocked
    path must not assume contiguous output (it did, and fp32 training failed on a GPU)."""
    import torch.nn.functional as F

    sdpa = F.scaled_dot_product_attention

    def transposed_layout(*args, **kwargs):
        out = sdpa(*args, **kwargs)
        return out.transpose(1, 2).contiguous().transpose(1, 2)

    q, k, v, key_mask = _inputs([37, 20], 37)
    expected = local_attention(q, k, v, key_mask, BlockBand(9, 16))
    monkeypatch.setattr(F, "scaled_dot_product_attention", transposed_layout)
    torch.testing.assert_close(local_attention(q, k, v, key_mask, BlockBand(9, 16)), expected)
