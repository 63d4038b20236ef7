"""Confidence-weighted smoothing of keypoint tracks: the Rauch-Tung-Striebel smoother of a random
walk, computed as the equivalent MAP problem.

For one coordinate with observations ``z_t`` of confidence ``c_t``, the smoothed track minimises

    sum_t w_t (x_t - z_t)^2 + sum_t (x_t - x_{t-1})^2 / q

with ``w_t = 1 + exp(20 (c_t - 0.5))`` (SG-Mamba's observation noise ``1/(1 + exp(20(c - 0.5)))``
inverted: a confident point is followed closely, an unconfident one barely) and transition
variance ``q``. The minimiser is the forward-backward (RTS) smoother's mean for that model; it
is the solution of a tridiagonal system, solved by the Thomas algorithm vectorised over every
keypoint coordinate (one sweep forward and one back over time). Frames with ``c = 0`` carry no
observation and are interpolated from their neighbours.
"""
from __future__ import annotations

import torch


def observation_weights(confidence: torch.Tensor) -> torch.Tensor:
    """``w = 1 + exp(20 (c - 0.5))``; 0 where the confidence is 0 (no observation)."""
    return torch.where(confidence > 0, 1 + torch.exp(20 * (confidence.clamp(0, 1) - 0.5)), 0.0)


def smooth_tracks(points: torch.Tensor, confidence: torch.Tensor, q: float = 1e-3) -> torch.Tensor:
    """``points (T, K, D)`` and ``confidence (T, K)`` -> smoothed ``(T, K, D)`` (float64 inside).

    ``q`` is the per-frame transition variance in the points' units; ``q = 0`` returns the
    points unchanged. A keypoint never observed keeps its (meaningless) input values.
    """
    if q <= 0 or points.shape[0] < 2:
        return points.clone()
    t, k, d = points.shape
    z = points.double().reshape(t, k * d)
    w = observation_weights(confidence.double()).repeat_interleave(d, dim=1)  # (T, K*D)
    off = -1.0 / q
    diag = w + 2.0 / q
    diag[0] -= 1.0 / q
    diag[-1] -= 1.0 / q
    rhs = w * z
    # Thomas algorithm: forward elimination, then back substitution (all coordinates at once)
    c_prime = torch.empty_like(z)
    d_prime = torch.empty_like(z)
    c_prime[0] = off / diag[0]
    d_prime[0] = rhs[0] / diag[0]
    for i in range(1, t):
        denom = diag[i] - off * c_prime[i - 1]
        c_prime[i] = off / denom
        d_prime[i] = (rhs[i] - off * d_prime[i - 1]) / denom
    x = torch.empty_like(z)
    x[-1] = d_prime[-1]
    for i in range(t - 2, -1, -1):
        x[i] = d_prime[i] - c_prime[i] * x[i + 1]
    observed = (w > 0).any(dim=0)
    x[:, ~observed] = z[:, ~observed]
    return x.reshape(t, k, d).to(points.dtype)
