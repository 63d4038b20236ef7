"""Decoding detector outputs into segments: one video (:func:`decode_video`), and every video of
an inference batch at once (:func:`decode_batch_to_host`): the same detections for each video,
with two waits for the GPU per batch instead of about ten per video.

Per video, decoding picks each level's candidates with ``nonzero`` (a count the host must read),
then groups them by class for Soft-NMS (more counts). Here every level keeps a fixed number of
candidates per video, ``min(pre_nms_topk, points x classes)`` by score, in the order
:func:`~.postprocess.decode_level` would list them (by position when all candidates above the
threshold fit, else best first); those it would drop stay in place with score -1, below any
``min_score``, so Soft-NMS never picks them and never lets them decay another. The Soft-NMS rows
are the classes of all videos, each row holding its class's candidates in the video's order, so
every pick, decay and tie-break is the per-video one. Voting (class-agnostic only) runs per video.
"""
from __future__ import annotations

import torch

from ...outputs import DetectorOutput
from .postprocess import PostprocessConfig, decode_level, soft_nms, soft_nms_on_rows, vote_boundaries

DROPPED = -1.0          # the score of a candidate decode_level would not keep (Soft-NMS padding too;
                        # below any min_score, which PostprocessConfig keeps in [0, 1))


@torch.no_grad()
def decode_video(out: DetectorOutput, index: int, pp) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Detections of video ``index`` of the batch: segments (level-0 grid units), scores, labels."""
    parts = [decode_level(c[index].float(), o[index].float(), m[index], s, pp)
             for c, o, m, s in zip(out.cls_logits, out.offsets, out.masks, out.strides)]
    segs, scores, labels = (torch.cat([p[i] for p in parts]) for i in range(3))
    kept, kept_scores, kept_labels = soft_nms(segs, scores, labels, pp.nms_sigma, pp.min_score, pp.max_seg_num,
                                              class_agnostic=not pp.multiclass_nms)
    if pp.voting_thresh > 0 and not pp.multiclass_nms and kept.numel():
        kept = vote_boundaries(kept, segs, scores, pp.voting_thresh, pp.voting_weights)
    return kept, kept_scores, kept_labels


def decode_to_host(out: DetectorOutput, index: int, pp) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`decode_video`, brought to the host in one copy."""
    segs, scores, labels = decode_video(out, index, pp)
    packed = torch.cat([segs.float(), scores.float()[:, None], labels.float()[:, None]], 1).cpu()
    return packed[:, :2], packed[:, 2], packed[:, 3].long()


def level_candidates(logits: torch.Tensor, offsets: torch.Tensor, mask: torch.Tensor, stride: int,
                     pp: PostprocessConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of every video: ``logits (B, T, K)``, ``offsets (B, T, 2)``, ``mask (B, T)`` ->
    segments ``(B, n, 2)`` in level-0 units, scores ``(B, n)`` (:data:`DROPPED` where decode_level
    drops the candidate), labels ``(B, n)``, ``n = min(pre_nms_topk, T x K)``."""
    num_classes = logits.shape[-1]
    scores = (torch.sigmoid(logits.float()) * mask[..., None]).flatten(1)
    k = min(pp.pre_nms_topk, scores.shape[1])
    top_scores, top_index = scores.topk(k, dim=1)
    fits = ((scores > pp.pre_nms_thresh).sum(1) <= pp.pre_nms_topk)[:, None]
    order = torch.where(fits, top_index, torch.arange(k, device=scores.device)).argsort(dim=1)  # index or rank order
    index, score = top_index.gather(1, order), top_scores.gather(1, order)
    point, label = index // num_classes, index % num_classes
    t = point.float() * stride
    off = offsets.float().gather(1, point[..., None].expand(-1, -1, 2))
    segs = torch.stack([t - off[..., 0] * stride, t + off[..., 1] * stride], dim=-1)
    kept = (score > pp.pre_nms_thresh) & ((segs[..., 1] - segs[..., 0]) > pp.duration_thresh)
    return segs, torch.where(kept, score, DROPPED), label


@torch.no_grad()
def decode_batch_to_host(out: DetectorOutput, pp: PostprocessConfig) -> list[tuple[torch.Tensor, torch.Tensor,
                                                                                   torch.Tensor]]:
    """Per video of the batch, on the host: segments (level-0 grid units), scores, labels, as
    :func:`decode_to_host` gives them."""
    if pp.voting_thresh > 0 and not pp.multiclass_nms:
        return [decode_to_host(out, i, pp) for i in range(out.cls_logits[0].shape[0])]
    parts = [level_candidates(c, o, m, s, pp) for c, o, m, s in zip(out.cls_logits, out.offsets, out.masks,
                                                                     out.strides)]
    segs, scores, labels = (torch.cat([p[i] for p in parts], dim=1) for i in range(3))
    videos, n = scores.shape
    groups = out.cls_logits[0].shape[-1] if pp.multiclass_nms else 1
    group = labels if pp.multiclass_nms else torch.zeros_like(labels)
    group = torch.where(scores > DROPPED, group, groups)           # dropped candidates: an extra group, left out
    order = group.argsort(dim=1, stable=True)                      # by group, the video's order within
    group, segs, scores, labels = (v.gather(1, order) if v.dim() == 2 else v.gather(1, order[..., None].expand(-1, -1, 2))
                                   for v in (group, segs, scores, labels))
    counts = torch.zeros(videos, groups + 1, dtype=torch.long, device=scores.device).scatter_add_(
        1, group, torch.ones_like(group))
    starts = counts.cumsum(1) - counts
    col = torch.arange(n, device=scores.device) - starts.gather(1, group)
    width = max(int(counts[:, :groups].max()), 1)                   # one wait for the GPU
    rows = videos * groups
    real = group < groups
    row = (torch.arange(videos, device=scores.device)[:, None] * groups + group)[real]
    col = col[real]
    S = scores.new_full((rows, width), DROPPED)
    S[row, col] = scores[real]
    X = segs.new_zeros(rows, width, 2)
    X[row, col] = segs[real]
    L = labels.new_zeros(rows, width)
    L[row, col] = labels[real]
    pick_col, pick_score = soft_nms_on_rows(S, X, counts[:, :groups].reshape(-1), pp.nms_sigma, pp.min_score,
                                            min(pp.max_seg_num, width))
    rounds = pick_col.shape[0]
    # per video, its picks round by round (its rows in class order within a round), as soft_nms lists them
    pick_col = pick_col.reshape(rounds, videos, groups).permute(1, 0, 2).reshape(videos, -1).long()
    pick_score = pick_score.reshape(rounds, videos, groups).permute(1, 0, 2).reshape(videos, -1)
    has = pick_col >= 0
    ranked = torch.where(has, pick_score, -torch.inf).argsort(dim=1, descending=True, stable=True)[:, :pp.max_seg_num]
    which_row = (torch.arange(videos, device=S.device)[:, None] * groups
                 + torch.arange(groups, device=S.device).repeat(rounds)[None]).gather(1, ranked)
    which_col = pick_col.gather(1, ranked).clamp(min=0)
    packed = torch.cat([X[which_row, which_col], pick_score.gather(1, ranked)[..., None],
                        L[which_row, which_col][..., None].float(), has.gather(1, ranked)[..., None].float()], -1).cpu()
    results = []
    for v in packed:                                                 # the second wait: one copy for the batch
        v = v[v[:, 4] > 0]
        results.append((v[:, :2], v[:, 2], v[:, 3].long()))
    return results
