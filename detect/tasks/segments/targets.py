"""Label assignment on the pyramid points, in level-0 feature-grid units.

Level ``l`` has stride ``s_l = scale_factor ** l`` and points ``t = 0, s_l, 2 s_l, ...`` (no half
-stride offset; :func:`detect.outputs.make_points`). A point is a positive for a ground-truth segment ``[gs, ge]`` (centre ``c``) if

1. it lies inside the centre region ``(max(gs, c - r s_l), min(ge, c + r s_l))`` (radius r = 1.5),
2. its largest distance to a boundary ``max(t - gs, ge - t)`` is within the level's regression range.

Among qualifying segments the shortest wins; segments as short as it (within 1e-3) add their
classes to a multi-hot target. Regression targets are ``((t - gs) / s_l, (ge - t) / s_l)``.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def assign_targets(points: torch.Tensor, segments: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   center_radius: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets of one video: ``points (P, 4)``, ``segments (M, 2)``, ``labels (M,)`` ->
    ``cls (P, K)`` multi-hot and ``reg (P, 2)`` (zero where ``cls`` is all zero)."""
    n_points = points.shape[0]
    if segments.numel() == 0:
        return points.new_zeros(n_points, num_classes), points.new_zeros(n_points, 2)
    t, lo, hi, stride = (points[:, i:i + 1] for i in range(4))         # (P, 1) each
    gs, ge = segments[:, 0][None], segments[:, 1][None]                  # (1, M)
    left, right = t - gs, ge - t                                         # (P, M)
    if center_radius > 0:
        centre = (gs + ge) / 2
        inside = torch.minimum(t - torch.maximum(gs, centre - center_radius * stride),
                               torch.minimum(ge, centre + center_radius * stride) - t) > 0
    else:
        inside = torch.minimum(left, right) > 0
    reach = torch.maximum(left, right)
    ok = inside & (reach >= lo) & (reach <= hi)
    lengths = (ge - gs).expand(n_points, -1).masked_fill(~ok, float("inf"))
    shortest, best = lengths.min(dim=1)                                  # (P,)
    positive = torch.isfinite(shortest)
    chosen = ok & (lengths <= shortest[:, None] + 1e-3)
    # multi-hot by a product with the labels' one-hot rows: no nonzero(), so no host sync
    one_hot = torch.nn.functional.one_hot(labels.long(), num_classes).to(points.dtype)   # (M, K)
    cls = (chosen.to(points.dtype) @ one_hot).clamp(max=1.0)
    idx = torch.arange(n_points, device=points.device)
    reg = torch.stack([left[idx, best], right[idx, best]], dim=1) / stride
    reg = reg * positive[:, None]
    return cls, reg
