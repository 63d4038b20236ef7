"""``extract annotations check``: every problem of an annotation file, named with its video."""
from __future__ import annotations

from dataclasses import dataclass

from .schema import AnnotationSet

# Boundaries closer than this are the same boundary (the ActionFormer duplicate rule).
_SAME = 1e-3


@dataclass(frozen=True)
class Finding:
    level: str  # "error" or "warning"
    video: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: video {self.video!r}: {self.message}" if self.video else f"{self.level}: {self.message}"


def check(result: AnnotationSet, *, classes: list[str] | None = None, task: str = "segment-detection",
          store_ids: set[str] | None = None, subset: str | None = None) -> list[Finding]:
    """Findings for ``result``: errors break training or evaluation, warnings deserve a look.

    ``classes`` (a card's) turns unknown labels and mismatched ids into errors; ``store_ids``
    compares the videos with a feature store (restricted to ``subset`` when given).
    """
    out: list[Finding] = []

    def add(level: str, vid: str, message: str) -> None:
        out.append(Finding(level, vid, message))

    index = {name: i for i, name in enumerate(classes)} if classes is not None else None
    for vid, video in result.database.items():
        if video.duration is None:
            add("error" if task != "clip-classification" else "warning", vid, "missing 'duration'")
        if video.fps is None:
            add("warning", vid, "missing 'fps'")
        if not video.subset:
            add("warning", vid, "no 'subset'")
        seen: list[tuple[str, float, float]] = []
        for k, ann in enumerate(video.annotations):
            where = f"annotation {k} ({ann.label})"
            if index is not None:
                if ann.label not in index:
                    add("error", vid, f"{where}: label {ann.label!r} is not a class of the dataset card")
                elif index[ann.label] != ann.label_id:
                    add("error", vid, f"{where}: label_id {ann.label_id}, the card says {index[ann.label]}")
            if ann.segment is None:
                if task != "clip-classification":
                    add("error", vid, f"{where}: no segment (whole-clip labels only suit classification)")
                continue
            start, end = ann.segment
            if end < start:
                add("error", vid, f"{where}: inverted segment [{start}, {end}]")
            elif end - start < 1e-6:
                add("warning", vid, f"{where}: zero-length segment at {start}s (never matched in evaluation)")
            if start < 0:
                add("error", vid, f"{where}: starts before the video ({start}s)")
            if video.duration is not None:
                if start >= video.duration:
                    add("error", vid, f"{where}: starts at {start}s, after the video ends ({video.duration}s)")
                elif end > video.duration + _SAME:
                    add("warning", vid, f"{where}: ends {end - video.duration:.3f}s after the video ({video.duration}s)")
            if any(lbl == ann.label and abs(s - start) < _SAME and abs(e - end) < _SAME for lbl, s, e in seen):
                add("warning", vid, f"{where}: duplicate of an earlier [{start}, {end}] (counted twice by the "
                                    "official evaluation, dropped by --clean-gt)")
            seen.append((ann.label, start, end))
    if store_ids is not None:
        wanted = result.subset(subset) if subset else result.database
        for vid in sorted(set(wanted) - store_ids):
            add("error", vid, "not in the feature store")
        if not subset:
            for vid in sorted(store_ids - set(result.database)):
                add("warning", vid, "in the feature store but not in the annotations")
    return out
