"""Figures: ground truth and detections (or per-frame scores) of one video on a timeline; training curves;
a confusion matrix."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(video_id: str, ground_truth: list[dict[str, Any]], detections: list[dict[str, Any]],
                  out: str | Path, duration: float | None = None, top: int = 30) -> Path:
    """One row per class: ground truth as solid bars, the ``top`` best detections as translucent
    bars (opacity = score) with their scores."""
    plt = _pyplot()
    dets = sorted(detections, key=lambda d: -d["score"])[:top]
    labels = sorted({a["label"] for a in ground_truth} | {d["label"] for d in dets})
    row = {label: i for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.6 * max(len(labels), 1)))
    for ann in ground_truth:
        if ann.get("segment") is None:
            continue
        s, e = ann["segment"]
        ax.barh(row[ann["label"]] + 0.18, e - s, left=s, height=0.3, color="tab:green")
    for det in dets:
        s, e = det["segment"]
        ax.barh(row[det["label"]] - 0.18, e - s, left=s, height=0.3, color="tab:blue", alpha=max(det["score"], 0.05))
        ax.text(s, row[det["label"]] - 0.18, f"{det['score']:.2f}", fontsize=6, va="center")
    ax.set_yticks(range(len(labels)), labels)
    end = duration or max([a["segment"][1] for a in ground_truth if a.get("segment")] +
                          [d["segment"][1] for d in dets] + [1.0])
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds")
    ax.set_title(f"{video_id}: ground truth (green, upper) and top-{len(dets)} detections (blue, lower)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def plot_curves(log_jsonl: str | Path, out: str | Path) -> Path:
    """Training loss per logged step and the validation metric per epoch (``val_<metric>``
    records), from a run's ``log.jsonl``."""
    plt = _pyplot()
    records = [json.loads(line) for line in Path(log_jsonl).read_text().splitlines() if line.strip()]
    steps = [(r["step"], r["final_loss"]) for r in records if "lr" in r]
    key = next((k for r in records for k in r if k.startswith("val_")), "val_metric")
    val = [(r["epoch"], r[key]) for r in records if key in r]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.5))
    if steps:
        a.plot(*zip(*steps))
    a.set_xlabel("iteration")
    a.set_ylabel("training loss")
    if val:
        b.plot(*zip(*val), marker="o")
    b.set_xlabel("epoch")
    b.set_ylabel(f"validation {key[4:]}")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def plot_confusion(matrix, classes: list[str], out: str | Path) -> Path:
    """Row-normalised confusion matrix (true class down, predicted across), counts in the cells."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(matrix)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = 2.5 + 0.35 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    if len(classes) <= 40:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)


def plot_frame_scores(video_id: str, ground_truth: list[dict[str, Any]], scores, times, classes: list[str],
                      out: str | Path, top: int = 6) -> Path:
    """Dense predictions: one panel per class (the ``top`` classes by peak score, plus every class of
    the ground truth), the per-step probability as a curve over the ground-truth segments (shaded)."""
    import numpy as np

    plt = _pyplot()
    scores, times = np.asarray(scores), np.asarray(times)
    shown = {a["label"] for a in ground_truth if a.get("segment") is not None and a["label"] in classes}
    ranked = [classes[k] for k in np.argsort(-scores.max(axis=0), kind="stable")]
    shown |= set(ranked[:top])
    rows = [c for c in ranked if c in shown]
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 0.9 + 1.1 * len(rows)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], rows):
        for ann in ground_truth:
            if ann["label"] == name and ann.get("segment") is not None:
                ax.axvspan(*ann["segment"], color="tab:green", alpha=0.25)
        ax.plot(times, scores[:, classes.index(name)], color="tab:blue", lw=1)
        ax.set_ylim(0, 1)
        ax.set_ylabel(name[:18], rotation=0, ha="right", fontsize=8)
    axes[-1, 0].set_xlabel("seconds")
    axes[0, 0].set_title(f"{video_id}: per-frame probability (blue) over the ground truth (green)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return Path(out)
