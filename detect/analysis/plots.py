"""Figures of ``detect analyze``, each written as PNG and SVG (``stem.png``, ``stem.svg``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..plot import _pyplot

# DETAD's colours, in ERROR_TYPES order
ERROR_COLOURS = ("#33a02c", "#b2df8a", "#1f78b4", "#fb9a99", "#e31a1c", "#a6cee3")


def _save(fig, stem: Path) -> list[Path]:
    plt = _pyplot()
    fig.tight_layout()
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def false_positive_profile(profile: dict[str, Any], stem: Path) -> list[Path]:
    """Stacked error breakdown per top-kG band, and the average-mAP_N gain of fixing each error."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    bands = [(name, row) for name, row in zip(profile["bands"], profile["fractions"])
             if row["true positive"] is not None]
    names = list(bands[0][1]) if bands else []
    bottom = np.zeros(len(bands))
    for name, colour in zip(names, ERROR_COLOURS):
        height = np.array([100 * row[name] for _, row in bands])
        a.bar(range(len(bands)), height, bottom=bottom, color=colour, label=name)
        bottom += height
    a.set_xticks(range(len(bands)), [name for name, _ in bands])
    a.set_xlabel("top predictions (G = ground-truth instances of the class)")
    a.set_ylabel("error breakdown (%)")
    a.set_ylim(0, 100)
    a.set_title("False-positive profile")
    a.legend(fontsize=7, loc="lower right")
    gains = profile["error_fix_gain"]
    bars = b.bar(range(len(gains)), [100 * v for v in gains.values()], color=ERROR_COLOURS[1:])
    for bar, value in zip(bars, gains.values()):
        b.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{100 * value:.1f}", ha="center",
               va="bottom", fontsize=8)
    b.set_xticks(range(len(gains)), list(gains), rotation=30, ha="right", fontsize=8)
    b.set_ylabel("average-mAP_N gain (%)")
    b.set_ylim(0, max(1.0, 110 * max(gains.values(), default=0)))
    b.set_title("Removing each error type")
    return _save(fig, stem)


def sensitivity(result: dict[str, Any], stem: Path) -> list[Path]:
    """Average-mAP_N per bin of each characteristic (dashed: all ground truth), and the
    false-negative rate per bin."""
    plt = _pyplot()
    chars = list(result["sensitivity"])
    bars = sum(len(result["bins"][c]["labels"]) + 1 for c in chars)
    fig, (a, b) = plt.subplots(2, 1, figsize=(max(8.0, 2 + 0.32 * bars), 6.5))
    for ax, key, ylabel in ((a, "sensitivity", "average-mAP_N (%)"), (b, "false_negative_rate", "false negatives (%)")):
        x, ticks, at = 0, [], []
        for k, name in enumerate(chars):
            values = result[key][name]
            labels = result["bins"][name]["labels"]
            heights = [100 * (values.get(label) or 0) for label in labels]
            ax.bar(range(x, x + len(labels)), heights, color=f"C{k}", label=name)
            for i, label in enumerate(labels):
                if values.get(label) is None:   # no ground truth in the bin: not a zero
                    ax.text(x + i, 1, "n/a", ha="center", fontsize=6, rotation=90)
            ticks += labels
            at += list(range(x, x + len(labels)))
            x += len(labels) + 1
        if key == "sensitivity":
            ax.axhline(100 * result["average_mAP_N"], ls="--", color="k", lw=1)
        ax.set_xticks(at, ticks, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, ncol=len(chars))
    a.set_title("Sensitivity to ground-truth characteristics")
    return _save(fig, stem)


def per_class_ap(per_class: dict[str, list[float]], stem: Path, title: str = "Per-class AP (mean over tIoU)") -> list[Path]:
    plt = _pyplot()
    names = sorted(per_class, key=lambda n: -float(np.mean(per_class[n])))
    fig, ax = plt.subplots(figsize=(7, 1 + 0.28 * len(names)))
    ax.barh(range(len(names)), [100 * float(np.mean(per_class[n])) for n in names], color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("AP (%)")
    ax.set_title(title)
    return _save(fig, stem)


def miss_rate_by_length(result: dict[str, Any], stem: Path) -> list[Path]:
    """Dense: fraction of action steps scored under the threshold, per action-length bin."""
    plt = _pyplot()
    rates = result["missed_steps_by_length"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = list(rates)
    ax.bar(range(len(labels)), [100 * (rates[k] if rates[k] is not None else 0) for k in labels], color="tab:red")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("action length (s)")
    ax.set_ylabel(f"action steps missed at {result['threshold']:g} (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Per-step misses by action length")
    return _save(fig, stem)
