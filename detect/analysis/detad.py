"""The DETAD diagnosis of segment detections (Alwassel et al., ECCV 2018; ``HumamAlwassel/DETAD``):
false-positive profile, the average-mAP_N gain of fixing each error type, sensitivity of mAP_N
to ground-truth characteristics, and false-negative rates.

Numbers follow the official code (``src/action_detector_diagnosis.py``,
``false_positive_analysis.py``, ``sensitivity_analysis.py``, ``false_negative_analysis.py``):

* ActivityNet matching (:func:`detect.metrics.detection_map.match_in_score_order`) at each tIoU;
* precision normalised to ``N`` = evaluated ground truth / classes:
  ``P_N = R N / (R N + FP)``, so classes of different sizes compare;
* ground truth of zero length, or with a coverage above 1, is not evaluated;
* an unmatched prediction is judged against the ground truth of highest tIoU in its video, any
  label: tIoU >= the threshold is a double detection (same label) or a wrong label; >= 0.1 a
  localization (same label) or a confusion error; else, or without ground truth, background;
* the profile and the error-fix gains use each class's top ``10 G_j`` predictions; the profile's
  band ``k`` is ranks ``((k-1) G_j, k G_j]`` of every class, pooled, averaged over thresholds;
* sensitivity drops, per bin, predictions matched (at any threshold) to ground truth outside it;
  false negatives ignore matches made below a normalised precision of 0.05.

Where the official code goes wrong we do not: a video without ground truth makes all its unmatched
predictions background (the official code judges the later ones against the previous video's
ground truth); predictions of labels absent from the ground truth are left out and counted in the
notes (it raises ``KeyError``); a class with ground truth in a bin but no predictions has AP_N 0
there (it raises); score ties keep file order (its sorts are unstable).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..metrics.detection_map import _tiou, interpolated_ap, match_in_score_order
from .characteristics import Bins

ERROR_TYPES = ("true positive", "double detection", "wrong label", "localization", "confusion", "background")
TRUE_POSITIVE, DOUBLE, WRONG_LABEL, LOCALIZATION, CONFUSION, BACKGROUND = range(6)
LIMIT_FACTOR = 10          # the profile looks at the top 10 G_j predictions of each class
MIN_TIOU = 0.1             # below it an unmatched prediction is a background error
FN_PRECISION_FLOOR = 0.05  # matches below this normalised precision do not count against false negatives


@dataclass
class GroundTruth:
    """Evaluated instances, in file order; ``label`` indexes ``classes``."""

    video: np.ndarray            # (G,) str
    label: np.ndarray            # (G,) int
    segment: np.ndarray          # (G, 2) seconds
    classes: list[str]
    values: dict[str, np.ndarray] = field(default_factory=dict)   # characteristic -> (G,)


@dataclass
class Detections:
    video: np.ndarray            # (P,) str
    label: np.ndarray            # (P,) int, indexes the ground truth's classes
    segment: np.ndarray          # (P, 2)
    score: np.ndarray            # (P,)


def normalised_ap(tp: np.ndarray, npos: int, n: float) -> np.ndarray:
    """AP_N per threshold of a ranked list. ``tp``: ``(n_tiou, P)`` bool, by rank."""
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_cum = np.cumsum(~tp, axis=1, dtype=np.float64)
    recall = tp_cum / npos
    with np.errstate(invalid="ignore"):
        precision = recall * n / (recall * n + fp_cum)
    return np.array([interpolated_ap(precision[t], recall[t]) for t in range(tp.shape[0])])


class Diagnosis:
    """One matching of ``dets`` to ``gt`` at every threshold; the analyses read it."""

    def __init__(self, gt: GroundTruth, dets: Detections, tiou: list[float]) -> None:
        self.gt, self.dets, self.tiou = gt, dets, np.asarray(tiou, dtype=np.float64)
        self.n_classes = len(gt.classes)
        self.npos = np.bincount(gt.label, minlength=self.n_classes)
        self.n = len(gt.label) / self.n_classes
        rows: dict[str, list[int]] = {}
        for r, vid in enumerate(gt.video):
            rows.setdefault(vid, []).append(r)
        self.rows_of = {vid: np.array(r) for vid, r in rows.items()}   # ground-truth rows of each video
        # per class: prediction indices by rank, and the ground truth (row) each rank matched
        self.ranked: list[np.ndarray] = []
        self.matched: list[np.ndarray] = []
        for c in range(self.n_classes):
            self._match_class(c)

    def _match_class(self, c: int) -> None:
        rows = np.nonzero(self.gt.label == c)[0]
        by_video: dict[str, list[int]] = {}
        for r in rows:
            by_video.setdefault(self.gt.video[r], []).append(r)
        segs = {vid: self.gt.segment[r] for vid, r in by_video.items()}
        mine = np.nonzero(self.dets.label == c)[0]
        preds = [(self.dets.video[i], *self.dets.segment[i], self.dets.score[i]) for i in mine]
        order, local = match_in_score_order(segs, preds, self.tiou)
        ranked = mine[order] if len(mine) else mine
        matched = np.full(local.shape, -1, dtype=np.int64)
        for t, r in zip(*np.nonzero(local >= 0)):
            matched[t, r] = by_video[self.dets.video[ranked[r]]][local[t, r]]
        self.ranked.append(ranked)
        self.matched.append(matched)

    # -- mAP_N ------------------------------------------------------------------------------
    def limit(self, c: int) -> int:
        """How many of class ``c``'s ranked predictions the profile and the gains look at."""
        return min(len(self.ranked[c]), int(self.npos[c] * LIMIT_FACTOR))

    def ap_n(self, limited: bool = False) -> np.ndarray:
        """``(n_tiou, n_classes)`` AP_N over all predictions or each class's top ``10 G_j``."""
        return np.stack([normalised_ap(self.matched[c][:, :self.limit(c) if limited else None] >= 0,
                                       self.npos[c], self.n) for c in range(self.n_classes)], axis=1)

    # -- false positives --------------------------------------------------------------------
    def error_types(self, c: int) -> np.ndarray:
        """``(n_tiou, limit(c))`` error type of class ``c``'s top predictions, by rank."""
        keep = self.ranked[c][:self.limit(c)]
        top_iou, top_label = self._best_ground_truth(keep)
        types = np.full((len(self.tiou), len(keep)), BACKGROUND, dtype=np.int64)
        same = top_label == c
        for t, thr in enumerate(self.tiou):
            near = top_iou >= MIN_TIOU
            types[t, near] = np.where(same[near], LOCALIZATION, CONFUSION)
            hit = top_iou >= thr
            types[t, hit] = np.where(same[hit], DOUBLE, WRONG_LABEL)
        types[self.matched[c][:, :len(keep)] >= 0] = TRUE_POSITIVE
        return types

    def _best_ground_truth(self, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """tIoU with, and label of, the first ground truth of highest tIoU in each prediction's
        video (any label); tIoU -1 where the video has none."""
        top_iou = np.full(len(preds), -1.0)
        top_label = np.full(len(preds), -1, dtype=np.int64)
        for k, i in enumerate(preds):
            rows = self.rows_of.get(self.dets.video[i])
            if rows is None:
                continue
            ious = _tiou(self.dets.segment[i], self.gt.segment[rows])
            j = int(np.argmax(ious))
            top_iou[k], top_label[k] = ious[j], self.gt.label[rows[j]]
        return top_iou, top_label

    def false_positive_profile(self, types: list[np.ndarray]) -> list[dict[str, float | None]]:
        """Per band ``k = 1..10``: the fraction of each error type among the predictions of
        ranks ``((k-1) G_j, k G_j]`` of every class, averaged over thresholds."""
        bands = []
        for k in range(LIMIT_FACTOR):
            parts = [types[c][:, k * self.npos[c]:(k + 1) * self.npos[c]] for c in range(self.n_classes)]
            band = np.concatenate(parts, axis=1)
            bands.append({name: (float(np.mean((band == e).sum(axis=1) / band.shape[1])) if band.shape[1] else None)
                          for e, name in enumerate(ERROR_TYPES)})
        return bands

    def error_fix_gains(self, types: list[np.ndarray]) -> dict[str, float]:
        """Average-mAP_N (top ``10 G_j``) gained by removing the predictions of each error type."""
        base = self.ap_n(limited=True).mean()
        gains = {}
        for e, name in enumerate(ERROR_TYPES):
            if e == TRUE_POSITIVE:
                continue
            ap = np.zeros((len(self.tiou), self.n_classes))
            for c in range(self.n_classes):
                tp = self.matched[c][:, :types[c].shape[1]] >= 0
                for t in range(len(self.tiou)):
                    ap[t, c] = normalised_ap(tp[t:t + 1, types[c][t] != e], self.npos[c], self.n)[0]
            gains[name] = float(ap.mean() - base)
        return gains

    # -- ground-truth characteristics --------------------------------------------------------
    def sensitivity(self, bins: Bins, values: np.ndarray) -> dict[str, float | None]:
        """Average-mAP_N per bin: ground truth of the bin only, and predictions unmatched or
        matched (at every threshold) within it; the mean over classes with ground truth there."""
        where = bins.assign(values)
        out: dict[str, float | None] = {}
        for b, name in enumerate(bins.labels):
            in_bin = where == b
            aps = []
            for c in range(self.n_classes):
                npos = int(np.sum(in_bin & (self.gt.label == c)))
                if npos == 0:
                    continue
                m = self.matched[c]
                keep = np.all((m < 0) | in_bin[np.maximum(m, 0)], axis=0)
                aps.append(normalised_ap(m[:, keep] >= 0, npos, self.n).mean())
            out[name] = float(np.mean(aps)) if aps else None
        return out

    def false_negative_rates(self, bins: Bins, values: np.ndarray) -> dict[str, float]:
        """Per bin with ground truth: the fraction left unmatched, averaged over thresholds,
        matches made below a normalised precision of 0.05 not counting."""
        found = np.zeros((len(self.tiou), len(self.gt.label)), dtype=bool)
        for c in range(self.n_classes):
            m = self.matched[c]
            tp = m >= 0
            tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
            fp_cum = np.cumsum(~tp, axis=1, dtype=np.float64)
            recall = tp_cum / self.npos[c]
            precision = recall * self.n / (recall * self.n + fp_cum)
            for t, r in zip(*np.nonzero(tp & (precision > FN_PRECISION_FLOOR))):
                found[t, m[t, r]] = True
        where = bins.assign(values)
        return {name: float(np.mean(~found[:, where == b])) for b, name in enumerate(bins.labels)
                if np.any(where == b)}


def summary(diagnosis: Diagnosis, characteristics: dict[str, tuple[Bins, np.ndarray]]) -> dict[str, Any]:
    """Every number of the diagnosis, as JSON."""
    ap_n = diagnosis.ap_n()
    types = [diagnosis.error_types(c) for c in range(diagnosis.n_classes)]
    classes = diagnosis.gt.classes
    return {
        "average_mAP_N": float(ap_n.mean()),
        "mAP_N": {f"{t:g}": float(v) for t, v in zip(diagnosis.tiou, ap_n.mean(axis=1))},
        "per_class_ap_n": {name: [float(v) for v in ap_n[:, c]] for c, name in enumerate(classes)},
        "false_positive_profile": {
            "bands": [f"{k + 1}G" for k in range(LIMIT_FACTOR)],
            "fractions": diagnosis.false_positive_profile(types),
            "average_mAP_N_top_10G": float(diagnosis.ap_n(limited=True).mean()),
            "error_fix_gain": diagnosis.error_fix_gains(types),
        },
        "sensitivity": {name: diagnosis.sensitivity(b, v) for name, (b, v) in characteristics.items()},
        "false_negative_rate": {name: diagnosis.false_negative_rates(b, v) for name, (b, v) in characteristics.items()},
    }
