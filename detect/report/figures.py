"""The report's figures as inline markup: matplotlib figures as SVG text, precision-recall curves,
and frame thumbnails as JPEG data URIs (the page needs no other file and no network)."""
from __future__ import annotations

import base64
import re
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics.detection_map import class_pr_curve


def inline_svg(path: Path, label: str) -> str:
    """An SVG file's markup for embedding: no XML prolog, scalable, announced as one image."""
    text = path.read_text(encoding="utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1', text, count=1)
    return text.replace("<svg", f'<svg role="img" aria-label="{escape(label)}" class="figure"', 1)


def save_svg(fig, path: Path) -> Path:
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none"}):   # text stays text: smaller, searchable, read aloud
        fig.tight_layout()
        fig.savefig(path)
    return path


def pr_curves(annotations: dict[str, Any], split: str, results: dict[str, list[dict[str, Any]]], tiou: float,
              path: Path) -> Path:
    """Precision against recall at ``tiou``, one curve per class of the split's ground truth."""
    from ..plot import _pyplot

    plt = _pyplot()
    gt: dict[str, dict[str, list]] = {}
    for vid, entry in annotations.items():
        if entry["subset"].lower() != split.lower():
            continue
        for ann in entry["annotations"]:
            gt.setdefault(ann["label"], {}).setdefault(vid, []).append(ann["segment"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label in sorted(gt):
        preds = [(vid, d["segment"][0], d["segment"][1], d["score"]) for vid, dets in results.items()
                 for d in dets if d["label"] == label]
        recall, precision = class_pr_curve({v: np.asarray(s, dtype=np.float64) for v, s in gt[label].items()},
                                           preds, tiou)
        ax.plot(np.r_[0, recall], np.r_[precision[:1] if len(precision) else [0], precision], lw=1.2, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"Precision-recall at tIoU {tiou:g}")
    if len(gt) <= 20:
        ax.legend(fontsize=7, loc="lower left")
    save_svg(fig, path)
    plt.close(fig)
    return path


def thumbnails(video: Path, duration: float, count: int = 8, size: int = 112) -> list[tuple[float, str]]:
    """``count`` frames evenly along the video: ``(time, JPEG data URI)``."""
    import torch
    from torchvision.io import encode_jpeg

    from extract.video.decode import DecodeSpec, FrameStream

    fps = count / max(duration, 1e-3)
    stream = FrameStream(video, DecodeSpec(size=size, spatial="resize", fps=fps))
    frames = [f for chunk in stream for f in chunk]
    if not frames:
        return []
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    out = []
    for i in picks:
        jpeg = encode_jpeg(torch.from_numpy(np.array(frames[i])).permute(2, 0, 1), quality=80)
        out.append(((i + 0.5) / stream.fps, "data:image/jpeg;base64," + base64.b64encode(jpeg.numpy()).decode()))
    return out
