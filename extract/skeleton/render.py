"""Keypoint and limb heatmaps, rendered on the GPU in batches directly inside the clip's crop.

Each output pixel ``(u, v)`` of the ``size x size`` map is the point of the frame at the centre
of its cell of the crop box (the crop is stretched to a square, as SG-Mamba resizes it), and
the maps are evaluated there, in frame pixels:

* keypoint map: ``max_k c_k exp(-|p - p_k|^2 / (2 sigma^2))``;
* limb map: ``max_(a,b) min(c_a, c_b) exp(-dist(p, segment_ab)^2 / (2 sigma^2))``;
* fused: their mean (SG-Mamba's default output).

Rendering in the crop instead of at full resolution then resizing avoids a full-frame map per
frame; it samples the same Gaussians at the output pixel centres (no area averaging).
"""
from __future__ import annotations

import torch

VFSS_EDGES = ((0, 1), (0, 2), (1, 2), (0, 4), (3, 4), (3, 6), (5, 6), (5, 7), (6, 7))
COCO_EDGES = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
              (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))


def crop_box(points: torch.Tensor, confidence: torch.Tensor, frame_size: tuple[float, float], margin: float,
             min_confidence: float = 0.0) -> tuple[float, float, float, float] | None:
    """Box ``(x0, y0, x1, y1)`` in frame pixels around every keypoint of the clip with
    ``confidence > min_confidence``, grown by ``margin`` pixels on each side and clipped to the
    frame; ``None`` when no keypoint qualifies."""
    keep = confidence > min_confidence
    if not keep.any():
        return None
    pts = points[keep]
    w, h = frame_size
    x0, y0 = (pts.min(0).values - margin).tolist()
    x1, y1 = (pts.max(0).values + margin).tolist()
    return max(0.0, x0), max(0.0, y0), min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))


def pixel_centres(box: tuple[float, float, float, float], size: int, device) -> torch.Tensor:
    """``(size * size, 2)`` frame points (x, y) at the output pixel centres, row-major."""
    x0, y0, x1, y1 = box
    steps = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    xs, ys = x0 + steps * (x1 - x0), y0 + steps * (y1 - y0)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)


def render_maps(points: torch.Tensor, confidence: torch.Tensor, box: tuple[float, float, float, float], size: int,
                sigma: float, edges: tuple[tuple[int, int], ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``points (T, K, 2)`` frame pixels, ``confidence (T, K)`` -> keypoint and limb maps
    ``(T, size, size)`` each, on the points' device."""
    t = points.shape[0]
    grid = pixel_centres(box, size, points.device)                                   # (P, 2)
    amp = confidence.clamp(0, 1).float()
    d2 = (grid[None, None] - points[:, :, None].float()).pow(2).sum(-1)               # (T, K, P)
    keypoints = (amp[..., None] * torch.exp(-d2 / (2 * sigma ** 2))).amax(1)
    a, b = (torch.tensor([e[i] for e in edges], device=points.device) for i in (0, 1))
    pa, pb = points[:, a].float(), points[:, b].float()                               # (T, E, 2)
    ab = pb - pa
    ap = grid[None, None] - pa[:, :, None]                                            # (T, E, P, 2)
    along = ((ap * ab[:, :, None]).sum(-1) / ab.pow(2).sum(-1).clamp_min(1e-12)[..., None]).clamp(0, 1)
    nearest = pa[:, :, None] + along[..., None] * ab[:, :, None]
    dist2 = (grid[None, None] - nearest).pow(2).sum(-1)
    limb_amp = torch.minimum(amp[:, a], amp[:, b])
    limbs = (limb_amp[..., None] * torch.exp(-dist2 / (2 * sigma ** 2))).amax(1)
    return keypoints.reshape(t, size, size), limbs.reshape(t, size, size)
