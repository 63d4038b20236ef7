"""Gaussian Soft-NMS as one Triton kernel: the fast path of
:func:`detect.tasks.segments.postprocess.soft_nms` on the GPU (that function is the reference).

The reference runs ``max_seg_num`` rounds of a dozen small tensor operations plus a host sync
each, about 200 x 13 kernel launches per video. Here one program owns one row (one class of one
video), keeps its scores in global memory (they stay in L2) and runs every round itself: each
round decays the row by the segment it just picked and, in the same pass, finds the next best
alive segment. One launch per video, no host sync.

Ties pick the lowest column, as ``torch.argmax`` does; the float32 arithmetic is the reference's,
so results agree to rounding (``exp``), which the tests bound at 1e-6.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _soft_nms_rows(scores_ptr, starts_ptr, ends_ptr, n_cols_ptr, pick_col_ptr, pick_score_ptr, n_cols_max,
                   rounds, sigma, min_score, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    n = tl.load(n_cols_ptr + row)
    base = row.to(tl.int64) * n_cols_max
    # round 0: the best alive column
    best_val = tl.full((), -1.0, tl.float32)
    best_col = tl.zeros((), tl.int32) + n_cols_max
    for c0 in range(0, n_cols_max, BLOCK):
        cols = c0 + tl.arange(0, BLOCK)
        s = tl.load(scores_ptr + base + cols, mask=cols < n, other=-1.0)
        s = tl.where(s >= min_score, s, -1.0)
        m = tl.max(s, 0)
        c = tl.min(tl.where(s == m, cols, n_cols_max), 0)
        better = m > best_val
        best_col = tl.where(better, c, best_col)
        best_val = tl.where(better, m, best_val)
    for r in range(rounds):
        alive = best_val >= min_score
        tl.store(pick_col_ptr + r * tl.num_programs(0) + row, tl.where(alive, best_col, -1))
        tl.store(pick_score_ptr + r * tl.num_programs(0) + row, best_val)
        if alive:
            p0 = tl.load(starts_ptr + base + best_col)
            p1 = tl.load(ends_ptr + base + best_col)
            tl.store(scores_ptr + base + best_col, -1.0)   # picked: never alive again
            next_val = tl.full((), -1.0, tl.float32)
            next_col = tl.zeros((), tl.int32) + n_cols_max
            for c0 in range(0, n_cols_max, BLOCK):
                cols = c0 + tl.arange(0, BLOCK)
                inside = cols < n
                s = tl.load(scores_ptr + base + cols, mask=inside, other=-1.0)
                x0 = tl.load(starts_ptr + base + cols, mask=inside, other=0.0)
                x1 = tl.load(ends_ptr + base + cols, mask=inside, other=0.0)
                inter = tl.maximum(tl.minimum(p1, x1) - tl.maximum(p0, x0), 0.0)
                union = (p1 - p0) + (x1 - x0) - inter
                iou = tl.where(union > 0, inter / tl.maximum(union, 1e-12), 0.0)
                live = s >= min_score
                s = tl.where(live, s * tl.exp(-(iou * iou) / sigma), s)
                s = tl.where(live & (s >= min_score), s, -1.0)  # dead columns stay dead
                tl.store(scores_ptr + base + cols, s, mask=inside)
                m = tl.max(s, 0)
                c = tl.min(tl.where(s == m, cols, n_cols_max), 0)
                better = m > next_val
                next_col = tl.where(better, c, next_col)
                next_val = tl.where(better, m, next_val)
            best_val = next_val
            best_col = next_col


def soft_nms_rows(scores: torch.Tensor, segs: torch.Tensor, n_cols: torch.Tensor, sigma: float, min_score: float,
                  rounds: int, block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of candidates ``scores (R, N)`` (padding anywhere past ``n_cols[r]``), ``segs (R, N, 2)``
    -> picked columns ``(rounds, R)`` (-1 once a row has none alive) and their decayed scores,
    in pick order. ``scores`` is overwritten. ``block``: columns per step (tests make it small)."""
    rows, width = scores.shape
    pick_col = torch.empty(rounds, rows, dtype=torch.int32, device=scores.device)
    pick_score = torch.empty(rounds, rows, dtype=torch.float32, device=scores.device)
    if rows and rounds:
        block = block or min(1024, triton.next_power_of_2(max(width, 16)))
        _soft_nms_rows[(rows,)](scores, segs[..., 0].contiguous(), segs[..., 1].contiguous(), n_cols.to(torch.int32),
                                pick_col, pick_score, width, rounds, float(sigma), float(min_score), BLOCK=block)
    return pick_col, pick_score
