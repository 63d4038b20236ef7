"""Clip classification: top-k accuracy and the confusion matrix."""
from __future__ import annotations

import numpy as np


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``probs (N, K)``, ``labels (N,)`` -> ``{"top1": ..., "top5": ...}`` (k capped at K)."""
    order = np.argsort(-probs, axis=1, kind="stable")
    return {f"top{k}": float((order[:, :min(k, probs.shape[1])] == labels[:, None]).any(1).mean()) for k in ks}


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, pred), 1)
    return matrix
