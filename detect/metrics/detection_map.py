"""ActivityNet-style temporal detection mAP.

By default this reproduces the official evaluation (``activitynet/ActivityNet``,
``Evaluation/eval_detection.py``), quirks included:

* classes are the labels present in the evaluated ground truth, in order of appearance;
* every ground-truth segment is a positive: duplicates count twice, and a zero-length segment
  is a positive that no prediction can match;
* predictions on videos outside the evaluated subset, or without ground truth of their class,
  are false positives;
* per class and threshold, predictions in descending score order greedily take the unmatched
  ground truth of highest tIoU in their video; AP is the VOC all-point interpolated AP.

Where the official code crashes or is arbitrary we do the sensible thing, and say so:

* a prediction whose label is absent from the evaluated ground truth is ignored with a warning
  (the official code raises ``KeyError``);
* score ties keep file order, earlier first (the official order follows numpy's unstable sort);
* a zero-length prediction never matches (the official tIoU is 0/0 = NaN there, and NaN passes
  its threshold test).

``clean_gt`` applies what ActionFormer and its descendants do and published TAL numbers use:
duplicate (same label, boundaries within 1e-3 s) and zero-length ground truth are dropped.
``restrict_to_subset`` ignores predictions on videos outside the subset instead of counting them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DUPLICATE_TOL = 1e-3


@dataclass
class DetectionResult:
    tiou: list[float]
    classes: list[str]
    ap: np.ndarray                               # (n_tiou, n_classes)
    protocol: str
    notes: list[str] = field(default_factory=list)

    @property
    def map(self) -> np.ndarray:
        return self.ap.mean(axis=1) if self.ap.size else np.zeros(len(self.tiou))

    @property
    def average(self) -> float:
        return float(self.map.mean()) if len(self.tiou) else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"mAP": {f"{t:g}": float(m) for t, m in zip(self.tiou, self.map)}, "average": self.average,
                "protocol": self.protocol, "per_class_ap": {c: [float(a) for a in self.ap[:, i]]
                                                            for i, c in enumerate(self.classes)},
                "notes": self.notes}


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-point interpolated average precision."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _tiou(seg: np.ndarray, gts: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(seg[1], gts[:, 1]) - np.maximum(seg[0], gts[:, 0]), 0, None)
    union = (seg[1] - seg[0]) + (gts[:, 1] - gts[:, 0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _clean(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    kept: list[tuple[float, float]] = []
    for s, e in segments:
        if e - s <= 0:
            continue
        if any(abs(s - ks) <= DUPLICATE_TOL and abs(e - ke) <= DUPLICATE_TOL for ks, ke in kept):
            continue
        kept.append((s, e))
    return kept


def match_in_score_order(gt: dict[str, np.ndarray], preds: list[tuple[str, float, float, float]],
                         tiou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one class. ``gt``: video -> ``(M, 2)``; ``preds``: (video, start, end,
    score) in file order. Returns ``order`` (prediction index by rank) and ``matched``
    ``(n_tiou, n)``: the index, within its video's ``gt``, of the ground truth the prediction of
    each rank took, -1 if none."""
    order = np.array(sorted(range(len(preds)), key=lambda i: -preds[i][3]), dtype=np.int64)  # stable
    matched = np.full((len(tiou), len(preds)), -1, dtype=np.int64)
    taken = {vid: np.full((len(tiou), len(g)), False) for vid, g in gt.items()}
    for rank, i in enumerate(order):
        vid, start, end, _ = preds[i]
        gts = gt.get(vid)
        if gts is None or len(gts) == 0 or end - start <= 0:
            continue
        ious = _tiou(np.array([start, end]), gts)
        # Highest tIoU first; among equal tIoUs the later ground truth first, as numpy's
        # argsort()[::-1] orders the short per-video arrays of the official code.
        by_iou = np.argsort(ious, kind="stable")[::-1]
        for t, thr in enumerate(tiou):
            for j in by_iou:
                if ious[j] < thr:
                    break
                if not taken[vid][t, j]:
                    taken[vid][t, j] = True
                    matched[t, rank] = j
                    break
    return order, matched


def class_ap(gt: dict[str, np.ndarray], preds: list[tuple[str, float, float, float]],
             tiou: np.ndarray) -> np.ndarray:
    """AP of one class at each threshold (arguments as :func:`match_in_score_order`)."""
    npos = sum(len(g) for g in gt.values())
    ap = np.zeros(len(tiou))
    if not preds or npos == 0:
        return ap
    _, matched = match_in_score_order(gt, preds, tiou)
    tp_cum = np.cumsum(matched >= 0, axis=1)
    fp_cum = np.cumsum(matched < 0, axis=1)
    recall = tp_cum / npos
    precision = tp_cum / (tp_cum + fp_cum)
    for t in range(len(tiou)):
        ap[t] = interpolated_ap(precision[t], recall[t])
    return ap


def class_pr_curve(gt: dict[str, np.ndarray], preds: list[tuple[str, float, float, float]],
                   tiou: float) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)`` of one class at one threshold, one point per prediction by rank."""
    npos = sum(len(g) for g in gt.values())
    if not preds or npos == 0:
        return np.zeros(0), np.zeros(0)
    _, matched = match_in_score_order(gt, preds, np.array([tiou]))
    tp_cum = np.cumsum(matched[0] >= 0)
    return tp_cum / npos, tp_cum / np.arange(1, len(preds) + 1)


def evaluate_detections(ground_truth: dict[str, Any], results: dict[str, list[dict[str, Any]]], subset: str,
                        tiou: list[float], clean_gt: bool = False,
                        restrict_to_subset: bool = False) -> DetectionResult:
    """``ground_truth``: an ActivityNet ``database`` mapping; ``results``: video -> list of
    ``{"label", "score", "segment"}`` (the ``results`` field of a detection file)."""
    classes: list[str] = []
    gt_by_class: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for vid, entry in ground_truth.items():
        if str(entry.get("subset", "")).lower() != subset.lower():
            continue
        for ann in entry.get("annotations", []):
            label = ann["label"]
            if label not in gt_by_class:
                classes.append(label)
                gt_by_class[label] = {}
            gt_by_class[label].setdefault(vid, []).append((float(ann["segment"][0]), float(ann["segment"][1])))
    in_subset = {vid for vid, e in ground_truth.items() if str(e.get("subset", "")).lower() == subset.lower()}
    notes = []
    preds_by_class: dict[str, list[tuple[str, float, float, float]]] = {c: [] for c in classes}
    unknown_labels: dict[str, int] = {}
    outside = 0
    for vid, dets in results.items():
        if vid not in in_subset:
            outside += len(dets)
            if restrict_to_subset:
                continue
        for det in dets:
            label = det["label"]
            if label not in preds_by_class:
                unknown_labels[label] = unknown_labels.get(label, 0) + 1
                continue
            preds_by_class[label].append((vid, float(det["segment"][0]), float(det["segment"][1]), float(det["score"])))
    if outside:
        how = "ignored (--restrict-to-subset)" if restrict_to_subset else "counted as false positives"
        notes.append(f"{outside} predictions on videos outside subset {subset!r} or without ground truth: {how}")
    if unknown_labels:
        notes.append(f"{sum(unknown_labels.values())} predictions with labels absent from the {subset!r} ground "
                     f"truth ignored: {dict(sorted(unknown_labels.items()))}")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    thresholds = np.asarray(tiou, dtype=np.float64)
    ap = np.zeros((len(thresholds), len(classes)))
    for c, label in enumerate(classes):
        gt = {vid: np.asarray(_clean(segs) if clean_gt else segs, dtype=np.float64).reshape(-1, 2)
              for vid, segs in gt_by_class[label].items()}
        ap[:, c] = class_ap(gt, preds_by_class[label], thresholds)
    protocol = "clean-gt (duplicate and zero-length ground truth dropped)" if clean_gt else \
        "official ActivityNet (all ground truth counted)"
    return DetectionResult(list(tiou), classes, ap, protocol, notes)
