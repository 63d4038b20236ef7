"""Confidence-weighted smoothing of keypoint tracks in pixels of the original frame: the
Rauch-Tung-Striebel smoother of a random walk, computed as the equivalent MAP problem.

For one coordinate with observations ``z_t`` of confidence ``c_t``, the smoothed track minimises

    sum_t w(c_t) (x_t - z_t)^2 / cell^2 + sum_t (x_t - x_{t-1})^2 / motion^2

* ``motion``: the process noise, the standard deviation of a landmark's step from one frame to
  the next, in pixels of the original video per frame (an option: ``--smooth-px``);
* ``cell``: the observation noise of a fully trusted point, one cell of the pose model's heatmap
  in original-frame pixels (argmax keypoints are quantised to it);
* ``w(c) = sigmoid(20 (c - 0.3))`` (0 where ``c = 0``: no observation, interpolated from the
  neighbours). SG-Mamba's observation noise is ``1 / (1 + exp(20 (c - 0.5)))`` with the same slope
  but in units of the whole frame, where a point of confidence 0.5 has a standard deviation of
  0.7 frame (with the transition variance of 1e-4 frame^2 used here before, a landmark moving
  5-10 px at confidence 0.56-0.8 kept 3-48% of its motion). Here any point of confidence 0.5 or
  more counts as one cell of noise (``w >= 0.98``), so motion is kept at every usable confidence,
  while a point below 0.1 weighs under 2% of that: a lone jump there moves the track by about
  ``w motion^2 / (2 cell^2)`` of its size (under 1% at ``motion = cell``).

The minimiser is the forward-backward (RTS) smoother's mean for that model; it solves a
tridiagonal system (the Thomas algorithm), vectorised over every keypoint coordinate: one sweep
forward and one back over time.
"""
from __future__ import annotations

from typing import Sequence

import torch

CONFIDENCE_MIDPOINT = 0.3


def observation_weights(confidence: torch.Tensor) -> torch.Tensor:
    """``w(c) = sigmoid(20 (c - 0.3))``; 0 where the confidence is 0 (no observation)."""
    return torch.where(confidence > 0, torch.sigmoid(20 * (confidence.clamp(0, 1) - CONFIDENCE_MIDPOINT)), 0.0)


def smooth_tracks(points: torch.Tensor, confidence: torch.Tensor, motion: float,
                  cell: Sequence[float]) -> torch.Tensor:
    """``points (T, K, D)`` pixels and ``confidence (T, K)`` -> smoothed ``(T, K, D)`` (float64 inside).

    ``motion``: pixels per frame (``0`` returns the points unchanged); ``cell``: the heatmap cell
    per coordinate, pixels. A keypoint never observed keeps its (meaningless) input values.
    """
    if motion <= 0 or points.shape[0] < 2:
        return points.clone()
    t, k, d = points.shape
    cell_px = torch.as_tensor(cell, dtype=torch.float64).repeat(k)                  # (K*D,)
    z = points.double().reshape(t, k * d) / cell_px                                 # in cells
    w = observation_weights(confidence.double()).repeat_interleave(d, dim=1)        # (T, K*D)
    inv_q = (cell_px / motion) ** 2                                                 # 1 / motion^2, in cells
    off = -inv_q.expand(t, -1)
    diag = w + 2 * inv_q
    diag[0] -= inv_q
    diag[-1] -= inv_q
    rhs = w * z
    # Thomas algorithm: forward elimination, then back substitution (all coordinates at once)
    c_prime = torch.empty_like(z)
    d_prime = torch.empty_like(z)
    c_prime[0] = off[0] / diag[0]
    d_prime[0] = rhs[0] / diag[0]
    for i in range(1, t):
        denom = diag[i] - off[i] * c_prime[i - 1]
        c_prime[i] = off[i] / denom
        d_prime[i] = (rhs[i] - off[i] * d_prime[i - 1]) / denom
    x = torch.empty_like(z)
    x[-1] = d_prime[-1]
    for i in range(t - 2, -1, -1):
        x[i] = d_prime[i] - c_prime[i] * x[i + 1]
    observed = (w > 0).any(dim=0)
    x[:, ~observed] = z[:, ~observed]
    return (x * cell_px).reshape(t, k, d).to(points.dtype)
