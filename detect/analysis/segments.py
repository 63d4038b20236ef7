"""``detect analyze`` for segment detections: the annotation file and the detections in, the DETAD
diagnosis (:mod:`.detad`) out."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from extract.annotations import AnnotationSet

from ..errors import DataError
from .characteristics import COMPUTED, PRESETS, context
from .detad import Detections, Diagnosis, GroundTruth, summary


def _file_values(path: Path, video_ids: list[str]) -> dict[str, list[Any]]:
    """Characteristics the annotation file itself carries, per evaluated instance in file order
    (the canonical reader keeps only label and segment)."""
    database = json.loads(path.read_text(encoding="utf-8"))["database"]
    found: dict[str, list[Any]] = {}
    for vid in video_ids:
        for ann in database[vid].get("annotations") or []:
            for name in PRESETS["activitynet"].bins:
                found.setdefault(name, []).append(ann.get(name))
    return found


def ground_truth(annotations: AnnotationSet, path: Path, split: str, notes: list[str]) -> GroundTruth:
    """The evaluated instances of ``split`` and their characteristics (read, else computed)."""
    video_ids = list(annotations.subset(split))
    rows = [(vid, ann) for vid in video_ids for ann in annotations.database[vid].annotations]
    if not rows:
        raise DataError(f"{path} has no annotated segments in subset {split!r}")
    if any(ann.segment is None for _, ann in rows):
        raise DataError(f"{path}: subset {split!r} labels whole clips; the DETAD analysis is for segments")
    video = np.array([vid for vid, _ in rows])
    segment = np.array([ann.segment for _, ann in rows], dtype=np.float64)
    values = {name: np.array([np.nan if v is None else float(v) for v in vals])
              for name, vals in _file_values(path, video_ids).items() if all(v is not None for v in vals)}
    computed = [name for name in COMPUTED if name not in values]
    durations = {vid: annotations.database[vid].duration for vid in video_ids}
    if computed:
        values.update(_computed(video, segment, durations, computed, notes))
    keep = segment[:, 1] > segment[:, 0]
    if not keep.all():
        notes.append(f"{int((~keep).sum())} ground-truth segments of zero or negative length are not evaluated")
    if "coverage" in values:
        over = values["coverage"] > 1
        if over.any():
            notes.append(f"{int(over.sum())} ground-truth segments longer than their video are not evaluated")
        keep &= ~over
    labels = [ann.label for _, ann in rows]
    classes = [c for c in annotations.classes if any(lab == c for lab, k in zip(labels, keep) if k)]
    index = {c: i for i, c in enumerate(classes)}
    return GroundTruth(video=video[keep], label=np.array([index[lab] for lab, k in zip(labels, keep) if k]),
                       segment=segment[keep], classes=classes, values={n: v[keep] for n, v in values.items()})


def _computed(video: np.ndarray, segment: np.ndarray, durations: dict[str, float | None], names: list[str],
              notes: list[str]) -> dict[str, np.ndarray]:
    out = {"length": segment[:, 1] - segment[:, 0]}
    out["num-instances"] = np.array([np.sum(video == v) for v in video], dtype=np.float64)
    undated = sorted({v for v in video if durations[v] is None})
    if undated:
        notes.append(f"coverage and context not analysed: {len(undated)} videos have no duration, e.g. {undated[0]}")
    else:
        out["coverage"] = out["length"] / np.array([durations[v] for v in video])
        size, distance = np.zeros(len(video)), np.zeros(len(video))
        for v in dict.fromkeys(video):
            rows = np.nonzero(video == v)[0]
            size[rows], distance[rows] = context(segment[rows, 0], segment[rows, 1], durations[v])
        out["context-size"], out["context-distance"] = size, distance
    notes.append(f"computed from the annotations: {', '.join(n for n in names if n in out)}")
    return {n: out[n] for n in names if n in out}


def detections(results: dict[str, list[dict[str, Any]]], gt: GroundTruth, notes: list[str]) -> Detections:
    index = {c: i for i, c in enumerate(gt.classes)}
    kept = [(vid, d) for vid, dets in results.items() for d in dets if d["label"] in index]
    dropped = sum(len(dets) for dets in results.values()) - len(kept)
    if dropped:
        notes.append(f"{dropped} detections of labels without evaluated ground truth are left out")
    return Detections(video=np.array([vid for vid, _ in kept], dtype=object),
                      label=np.array([index[d["label"]] for _, d in kept], dtype=np.int64),
                      segment=np.array([d["segment"] for _, d in kept], dtype=np.float64).reshape(-1, 2),
                      score=np.array([d["score"] for _, d in kept], dtype=np.float64))


def analyze_segments(annotations: AnnotationSet, annotations_path: Path, results: dict[str, list[dict[str, Any]]],
                     split: str, preset: str, tiou: list[float] | None = None) -> dict[str, Any]:
    """Every number of the diagnosis, as JSON."""
    settings = PRESETS[preset]
    thresholds = list(tiou or settings.tiou)
    notes: list[str] = []
    gt = ground_truth(annotations, annotations_path, split, notes)
    dets = detections(results, gt, notes)
    characteristics = {name: (settings.bins[name], gt.values[name]) for name in settings.bins if name in gt.values}
    out = {"task": "segments", "split": split, "preset": preset, "tiou": thresholds,
           "counts": {"ground_truth": int(len(gt.label)), "classes": len(gt.classes),
                      "detections": int(len(dets.label)), "N": len(gt.label) / len(gt.classes)},
           "bins": {name: b.to_json()
                    for name, (b, _) in characteristics.items()}}
    out.update(summary(Diagnosis(gt, dets, thresholds), characteristics))
    in_split = annotations.subset(split)
    outside = sum(len(d) for vid, d in results.items() if vid not in in_split)
    if outside:
        notes.append(f"{outside} detections on videos outside subset {split!r}: false positives (background)")
    out["notes"] = notes
    return out
