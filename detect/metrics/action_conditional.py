"""Action-conditional metrics of multi-label dense detection (MLAD, CVPR 2021; reported by MS-TCT
and MS-Temba): how well class ``i`` is detected on the steps where class ``j`` co-occurs.

For a pair ``(i, j)``, ``i != j``, the evaluated steps are those where ``j`` is in the ground
truth (``tau = 0``); where ``j`` was in the ground truth within the last ``tau`` steps but is not
now (``tau > 0``: ``i`` follows ``j``); or where it will be within the next ``|tau|`` steps but is
not now (``tau < 0``). On them: precision and recall of ``i`` at ``score >= threshold`` (0 when
nothing is predicted) and AP of ``i`` with tied scores ranked as one group (scikit-learn's
``average_precision_score``, as the MLAD code). Pairs where ``i`` has no positive are skipped;
each metric is the mean over the remaining pairs and ``F1 = 2PR / (P + R)`` of those means.
"""
from __future__ import annotations

import numpy as np


def grouped_average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, high to low."""
    order = np.argsort(-scores, kind="stable")
    s, hits = scores[order], positive[order].astype(np.float64)
    last_of_group = np.r_[s[1:] != s[:-1], True]
    tp = np.cumsum(hits)[last_of_group]
    precision = tp / (np.flatnonzero(last_of_group) + 1)
    recall_gain = np.diff(np.r_[0.0, tp]) / hits.sum()
    return float((recall_gain * precision).sum())


def condition_mask(target: np.ndarray, tau: int) -> np.ndarray:
    """``(T, K)`` bool: where each class conditions at offset ``tau`` in one video's multi-hot target."""
    present = target > 0
    if tau == 0:
        return present
    window = abs(tau)
    seq = present if tau > 0 else present[::-1]
    counts = np.cumsum(np.vstack([np.zeros((1, seq.shape[1])), seq]), axis=0)
    recent = (counts[1:] - counts[np.maximum(np.arange(1, len(seq) + 1) - window, 0)]) > 0  # last `window` steps
    recent = recent if tau > 0 else recent[::-1]
    return recent & ~present


def action_conditional(scores: list[np.ndarray], targets: list[np.ndarray], tau: int = 0,
                       threshold: float = 0.5) -> dict[str, float]:
    """Per video ``scores``/``targets`` ``(T, K)`` -> ``precision``, ``recall``, ``f1``, ``mAP``,
    ``pairs`` (the number of class pairs averaged)."""
    s = np.concatenate(scores)
    t = np.concatenate(targets) > 0
    cond = np.concatenate([condition_mask(y, tau) for y in targets])
    predicted = s >= threshold
    precisions, recalls, aps = [], [], []
    for j in range(t.shape[1]):
        rows = cond[:, j]
        t_j, s_j, p_j = t[rows], s[rows], predicted[rows]
        for i in np.flatnonzero(t_j.sum(0)):
            if i == j:
                continue
            tp = float((t_j[:, i] & p_j[:, i]).sum())
            precisions.append(tp / p_j[:, i].sum() if p_j[:, i].any() else 0.0)
            recalls.append(tp / t_j[:, i].sum())
            aps.append(grouped_average_precision(s_j[:, i], t_j[:, i]))
    if not aps:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "mAP": 0.0, "pairs": 0}
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "mAP": float(np.mean(aps)),
            "pairs": len(aps)}
