"""``python -m detect analyze``: why a model misses, from its predictions file.

Segments get the DETAD diagnosis (:mod:`.detad`); dense per-frame scores their per-class AP and
the action steps missed by action length; clips their per-class accuracy and confusions. Every
number goes into ``analysis.json``, every figure into PNG and SVG beside it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from extract.annotations import AnnotationSet, load_annotations
from extract.atomic import write_text_atomically

from ..engine.score import score_file
from ..errors import ConfigError
from ..tasks import get_task
from . import plots
from .characteristics import PRESETS, THUMOS14

DENSE_THRESHOLD = 0.5


def analyze(annotations: str | Path, predictions: str | Path, split: str, out: str | Path, *,
            preset: str | None = None, tiou: list[float] | None = None, dataset: str | None = None,
            task: str | None = None) -> dict[str, Any]:
    """Analyse a predictions file against ``annotations`` (subset ``split``); writes
    ``out/analysis.json`` and the figures, and returns the JSON with ``figures`` listed."""
    task, standard = score_file(annotations, predictions, split, task=task, dataset=dataset,
                                settings={"tiou": tiou} if tiou else None)
    if preset and task != "segments":
        raise ConfigError(f"--preset: DETAD's bins are for segment detections; {predictions} holds {task!r} predictions")
    gt = load_annotations(annotations)
    found, classes = get_task(task).read_predictions(Path(predictions))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if task == "segments":
        from .segments import analyze_segments

        preset = preset or ("thumos14" if dataset == "thumos14" else "activitynet")
        result = analyze_segments(gt, Path(annotations), found, split, preset, tiou)
        figures = plots.false_positive_profile(result["false_positive_profile"], out / "false_positive_profile")
        figures += plots.sensitivity(result, out / "sensitivity")
    elif task == "dense":
        result = {"task": task, "split": split, **dense_misses(found, classes, gt, split)}
        figures = plots.miss_rate_by_length(result, out / "missed_steps_by_length")
    else:
        result = {"task": task, "split": split, **clip_confusions(np.asarray(standard["confusion"]), classes)}
        figures = []
    result["standard"] = standard
    if standard.get("per_class_ap"):
        figures += plots.per_class_ap(standard["per_class_ap"], out / "per_class_ap")
    result["figures"] = [p.name for p in figures]
    write_text_atomically(out / "analysis.json", json.dumps(result, indent=1) + "\n")
    return result


def dense_misses(predictions: dict[str, dict[str, np.ndarray]], classes: list[str], gt: AnnotationSet,
                 split: str, threshold: float = DENSE_THRESHOLD) -> dict[str, Any]:
    """Per-step errors at ``threshold``: the share of each ground-truth action's steps scored
    under it, pooled per action-length bin (THUMOS14's DETAD length bins), and the share of steps
    outside every action of a class scored over it."""
    bins = THUMOS14["length"]
    missed = np.zeros(len(bins.labels))
    total = np.zeros(len(bins.labels))
    false_alarms = background = 0
    index = {c: i for i, c in enumerate(classes)}
    for vid in gt.subset(split):
        if vid not in predictions:
            continue
        scores, times = predictions[vid]["scores"], predictions[vid]["times"]
        inside = np.zeros(scores.shape, dtype=bool)
        for ann in gt.database[vid].annotations:
            if ann.segment is None or ann.label not in index:
                continue
            k = index[ann.label]
            steps = (times >= ann.segment[0]) & (times <= ann.segment[1])
            inside[:, k] |= steps
            b = bins.assign(np.array([ann.segment[1] - ann.segment[0]]))[0]
            if b >= 0:
                missed[b] += np.sum(scores[steps, k] < threshold)
                total[b] += np.sum(steps)
        false_alarms += int(np.sum(~inside & (scores >= threshold)))
        background += int(np.sum(~inside))
    return {"threshold": threshold, "length_bins": bins.to_json(),
            "missed_steps_by_length": {label: (float(missed[b] / total[b]) if total[b] else None)
                                       for b, label in enumerate(bins.labels)},
            "action_steps_by_length": {label: int(total[b]) for b, label in enumerate(bins.labels)},
            "false_alarm_steps": float(false_alarms / background) if background else None}


def clip_confusions(confusion: np.ndarray, classes: list[str], top: int = 10) -> dict[str, Any]:
    """Per-class accuracy (recall) and the ``top`` most frequent confusions."""
    totals = confusion.sum(axis=1)
    off = [(int(confusion[i, j]), classes[i], classes[j]) for i in range(len(classes)) for j in range(len(classes))
           if i != j and confusion[i, j]]
    return {"per_class_accuracy": {c: (float(confusion[i, i] / totals[i]) if totals[i] else None)
                                   for i, c in enumerate(classes)},
            "top_confusions": [{"true": t, "predicted": p, "clips": n} for n, t, p in sorted(off, reverse=True)[:top]]}


__all__ = ["PRESETS", "analyze"]
