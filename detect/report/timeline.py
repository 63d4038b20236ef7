"""One video's ground truth and detections as an inline, interactive SVG: one row per class,
ground truth above, detections below with opacity = score; each detection is focusable and
announces its label, score and span (the page's script shows them on hover or focus)."""
from __future__ import annotations

from html import escape
from typing import Any

WIDTH, LABEL_W, ROW_H, AXIS_H = 900, 150, 34, 26


def timeline_svg(video_id: str, ground_truth: list[dict[str, Any]], detections: list[dict[str, Any]],
                 duration: float | None, top: int = 30) -> str:
    dets = sorted(detections, key=lambda d: -d["score"])[:top]
    gts = [a for a in ground_truth if a.get("segment") is not None]
    labels = sorted({a["label"] for a in gts} | {d["label"] for d in dets})
    end = duration or max([a["segment"][1] for a in gts] + [d["segment"][1] for d in dets] + [1.0])
    plot_w = WIDTH - LABEL_W - 10
    height = AXIS_H + ROW_H * max(len(labels), 1) + 8

    def x(t: float) -> float:
        return LABEL_W + plot_w * min(max(t, 0.0), end) / end

    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="group" '
             f'aria-label="{escape(video_id)}: {len(gts)} ground-truth segments, top {len(dets)} detections">']
    for k in range(6):   # time axis
        t = end * k / 5
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{AXIS_H - 6}" y2="{height - 8}" class="grid"/>'
                     f'<text x="{x(t):.1f}" y="{AXIS_H - 10}" text-anchor="middle" class="tick">{t:.1f} s</text>')
    for row, label in enumerate(labels):
        y0 = AXIS_H + row * ROW_H
        parts.append(f'<text x="{LABEL_W - 6}" y="{y0 + ROW_H / 2 + 4:.1f}" text-anchor="end" class="row">'
                     f'{escape(label)}</text>')
        for a in (a for a in gts if a["label"] == label):
            s, e = a["segment"]
            parts.append(f'<rect class="gt" x="{x(s):.1f}" y="{y0 + 3}" width="{max(x(e) - x(s), 1.5):.1f}" '
                         f'height="{ROW_H / 2 - 5:.1f}"><title>ground truth {escape(label)} {s:.2f}-{e:.2f} s'
                         f'</title></rect>')
        for d in (d for d in dets if d["label"] == label):
            s, e = d["segment"]
            text = f"{label}: score {d['score']:.3f}, {s:.2f}-{e:.2f} s"
            parts.append(f'<rect class="det" tabindex="0" role="img" aria-label="{escape(text)}" '
                         f'data-tip="{escape(text)}" x="{x(s):.1f}" y="{y0 + ROW_H / 2 + 1:.1f}" '
                         f'width="{max(x(e) - x(s), 1.5):.1f}" height="{ROW_H / 2 - 5:.1f}" '
                         f'fill-opacity="{max(d["score"], 0.08):.3f}"/>')
    parts.append("</svg>")
    return "".join(parts)
