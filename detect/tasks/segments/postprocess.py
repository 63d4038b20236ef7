"""From per-level outputs to segments: top-k decoding, Gaussian Soft-NMS, voting, score fusion.

Soft-NMS is vectorised: all classes run at once as rows of a padded ``(K, N)`` score matrix;
each round takes every row's best remaining segment and decays the others in that row by
``exp(-IoU^2 / sigma)``. At most ``max_seg_num`` rounds, independent of K; on a GPU they run
inside one Triton kernel (``MAMBA_TAD_TRITON_NMS=0`` falls back to the tensor operations).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...ops.backend import triton_available


VOTING_WEIGHTS = ("iou-score", "iou-offset")


@dataclass
class PostprocessConfig:
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    duration_thresh: float = 0.05       # level-0 grid units
    multiclass_nms: bool = True
    nms_sigma: float = 0.5
    min_score: float = 0.001
    max_seg_num: int = 200
    voting_thresh: float = 0.0          # > 0: refine boundaries by voting (class-agnostic NMS only)
    voting_weights: str = "iou-score"   # IoU x score (ActionFormer's code); iou-offset: IoU x (score + 1.5)

    def __post_init__(self) -> None:
        for name in ("pre_nms_thresh", "min_score"):   # scores are probabilities; -1 marks padding in Soft-NMS
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.voting_weights not in VOTING_WEIGHTS:
            raise ValueError(f"voting_weights must be one of {VOTING_WEIGHTS}, got {self.voting_weights!r}")
        if self.voting_thresh > 0 and self.multiclass_nms:
            raise ValueError("voting_thresh applies to class-agnostic NMS (multiclass_nms: false), as in "
                             "ActionFormer, where a class's own segments are too few to vote")


def segment_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``(..., N, 2)`` against ``(..., M, 2)`` segments -> ``(..., N, M)``; 0 for empty unions."""
    inter = (torch.minimum(a[..., :, None, 1], b[..., None, :, 1]) -
             torch.maximum(a[..., :, None, 0], b[..., None, :, 0])).clamp(min=0)
    union = (a[..., :, None, 1] - a[..., :, None, 0]) + (b[..., None, :, 1] - b[..., None, :, 0]) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def decode_level(logits: torch.Tensor, offsets: torch.Tensor, mask: torch.Tensor, stride: int,
                 cfg: PostprocessConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One video, one level: ``logits (T, K)``, ``offsets (T, 2)``, ``mask (T,)`` ->
    segments ``(n, 2)`` in level-0 units, scores ``(n,)``, labels ``(n,)``."""
    num_classes = logits.shape[1]
    scores = (torch.sigmoid(logits) * mask[:, None]).flatten()
    keep = torch.nonzero(scores > cfg.pre_nms_thresh).squeeze(1)
    if keep.numel() > cfg.pre_nms_topk:
        keep = keep[scores[keep].topk(cfg.pre_nms_topk).indices]
    point, label = keep // num_classes, keep % num_classes
    t = point.float() * stride
    segs = torch.stack([t - offsets[point, 0] * stride, t + offsets[point, 1] * stride], dim=1)
    long_enough = (segs[:, 1] - segs[:, 0]) > cfg.duration_thresh
    return segs[long_enough], scores[keep][long_enough], label[long_enough]


def soft_nms(segs: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, sigma: float, min_score: float,
             max_seg_num: int, class_agnostic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian Soft-NMS, per class (or over all segments); returns the kept segments, decayed
    scores and labels, best first, at most ``max_seg_num`` in total. On a GPU with Triton the
    rounds run as one kernel (:mod:`detect.ops.soft_nms_triton`); :func:`soft_nms_rounds` is the
    reference."""
    if segs.numel() == 0:
        return segs, scores, labels
    groups = torch.zeros_like(labels) if class_agnostic else labels
    ids, row = torch.unique(groups, return_inverse=True)
    order = torch.argsort(row, stable=True)
    counts = torch.bincount(row, minlength=len(ids))
    col = torch.arange(len(order), device=segs.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    n_rows, n_cols = len(ids), int(counts.max())
    S = segs.new_full((n_rows, n_cols), -1.0)
    S[row[order], col] = scores[order]
    X = segs.new_zeros(n_rows, n_cols, 2)
    X[row[order], col] = segs[order]
    L = labels.new_zeros(n_rows, n_cols)
    L[row[order], col] = labels[order]
    pick_col, pick_score = soft_nms_on_rows(S, X, counts, sigma, min_score, min(max_seg_num, n_cols))
    has = pick_col >= 0                                                             # (rounds, rows)
    r = torch.arange(n_rows, device=segs.device).expand_as(pick_col)[has]
    c = pick_col[has].long()
    segs, scores, labels = X[r, c], pick_score[has], L[r, c]                       # round by round
    top = torch.argsort(scores, descending=True, stable=True)[:max_seg_num]
    return segs[top], scores[top], labels[top]


def soft_nms_on_rows(S: torch.Tensor, X: torch.Tensor, counts: torch.Tensor, sigma: float, min_score: float,
                     rounds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rounds on rows of candidates (``counts`` per row, padding -1 after them): one Triton
    kernel on a GPU, else :func:`soft_nms_rounds`; picks ``(rounds', R)``, ``rounds' <= rounds``.
    ``S`` may be overwritten."""
    if _use_triton(S):
        from detect.ops.soft_nms_triton import soft_nms_rows

        return soft_nms_rows(S, X, counts, sigma, min_score, rounds)
    return soft_nms_rounds(S, X, sigma, min_score, rounds)


def soft_nms_rounds(S: torch.Tensor, X: torch.Tensor, sigma: float, min_score: float,
                    rounds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The Soft-NMS rounds on rows of candidates, in plain tensor operations: scores ``S (R, N)``
    (padding -1), segments ``X (R, N, 2)`` -> each round's picked column ``(rounds, R)`` (-1 where
    a row has none alive) and its decayed score. Each round takes every row's best alive segment
    (the lowest column among equals) and decays the rest of the row by ``exp(-IoU^2 / sigma)``."""
    alive = S >= min_score
    rows = torch.arange(S.shape[0], device=S.device)
    cols, vals = [], []
    for _ in range(rounds):
        if not alive.any():
            break
        best = torch.where(alive, S, -1.0).argmax(dim=1)
        has = alive[rows, best]
        cols.append(torch.where(has, best, -1))
        vals.append(S[rows, best])
        alive[rows, best] = False
        iou = segment_iou(X[rows, best][:, None], X)[:, 0]                        # (rows, cols)
        S = torch.where(alive, S * torch.exp(-iou ** 2 / sigma), S)
        alive &= S >= min_score
    if not cols:
        return S.new_full((0, S.shape[0]), -1, dtype=torch.long), S.new_zeros(0, S.shape[0])
    return torch.stack(cols), torch.stack(vals)


def _use_triton(x: torch.Tensor) -> bool:
    return x.is_cuda and os.environ.get("MAMBA_TAD_TRITON_NMS", "1") != "0" and triton_available()[0]


def vote_boundaries(kept: torch.Tensor, all_segs: torch.Tensor, all_scores: torch.Tensor, iou_thresh: float,
                    weighting: str = "iou-score", score_offset: float = 1.5) -> torch.Tensor:
    """Each kept segment becomes the weighted mean of the pre-NMS segments overlapping it by at
    least ``iou_thresh``. ``weighting="iou-score"`` weighs each by ``IoU * score``, as
    ActionFormer's ``seg_voting`` does (it computes ``score + score_offset`` but never uses it);
    ``"iou-offset"`` by ``IoU * (score + score_offset)``, what that offset suggests was meant."""
    iou = segment_iou(kept, all_segs)
    offset = score_offset if weighting == "iou-offset" else 0.0
    weights = (iou >= iou_thresh).to(all_scores.dtype) * iou * (all_scores[None] + offset)
    total = weights.sum(1, keepdim=True)
    return torch.where(total > 0, weights @ all_segs / total.clamp(min=1e-12), kept)


def fuse_class_scores(segs: torch.Tensor, scores: torch.Tensor, class_probs: torch.Tensor, topk: int = 2,
                      mode: str = "sqrt") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class-agnostic proposals x the video's top-k external class probabilities (ActivityNet/HACS).

    Each proposal is repeated per class with score ``sqrt(p_cls * p_prop)`` (``mode="sqrt"``,
    ActionMamba) or ``p_cls * p_prop`` (``"product"``, ActionFormer)."""
    if mode not in ("sqrt", "product"):
        raise ValueError(f"fusion mode must be 'sqrt' or 'product', got {mode!r}")
    probs, classes = class_probs.topk(min(topk, class_probs.numel()))
    fused = scores[:, None] * probs[None]
    fused = fused.sqrt() if mode == "sqrt" else fused
    n = len(scores)
    return segs.repeat_interleave(len(probs), 0), fused.flatten(), classes.repeat(n)
