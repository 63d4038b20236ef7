"""The canonical annotation format (see docs/ANNOTATIONS.md).

::

    {"version": "mamba-tad-annotations-1",
     "classes": ["BaseballPitch", ...],                # index = label_id
     "database": {
        "video_test_0000004": {
            "subset": "test", "duration": 30.03, "fps": 30.0,
            "annotations": [{"label": "BaseballPitch", "label_id": 0, "segment": [2.5, 6.0]}]}}}

Segments are in seconds; ``"segment": null`` labels a whole clip (clip classification). ``classes`` is optional when reading (ActivityNet files lack it) and
always written.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..atomic import write_text_atomically
from ..errors import ExtractError

VERSION = "mamba-tad-annotations-1"


class AnnotationError(ExtractError, ValueError):
    """Malformed annotations; the message names the file, video and field."""


@dataclass(frozen=True)
class Annotation:
    """One labelled segment in seconds; ``segment=None`` labels the whole clip (classification)."""

    label: str
    label_id: int
    segment: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "label_id": self.label_id,
                "segment": None if self.segment is None else list(self.segment)}


@dataclass
class VideoAnnotations:
    subset: str
    duration: float | None
    fps: float | None
    annotations: list[Annotation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"subset": self.subset, "duration": self.duration, "fps": self.fps,
                "annotations": [a.to_dict() for a in self.annotations]}


@dataclass
class AnnotationSet:
    """Videos (id -> annotations) and the class list (``label_id`` indexes it)."""

    database: dict[str, VideoAnnotations]
    classes: list[str]

    def subset(self, name: str) -> dict[str, VideoAnnotations]:
        """Videos of one split; names compare case-insensitively, as the ActivityNet tools do."""
        return {vid: v for vid, v in self.database.items() if v.subset.lower() == name.lower()}

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "classes": self.classes,
                           "database": {vid: v.to_dict() for vid, v in self.database.items()}}, indent=1) + "\n"

    def save(self, path: str | Path) -> None:
        write_text_atomically(path, self.to_json())


def class_list(labels: Iterable[tuple[str, int | None]]) -> list[str]:
    """The class list implied by ``(label, label_id)`` pairs: ordered by id when every pair has
    one (ids with no label become ``class_<id>``), else the names sorted."""
    pairs = set(labels)
    if not pairs or any(i is None for _, i in pairs):
        return sorted({name for name, _ in pairs})
    by_id: dict[int, str] = {}
    for name, i in sorted(pairs, key=lambda p: (p[1], p[0])):
        if by_id.setdefault(i, name) != name:
            raise AnnotationError(f"label_id {i} names two labels: {by_id[i]!r} and {name!r}")
    return [by_id.get(i, f"class_{i}") for i in range(max(by_id) + 1)]


def _number(value: Any, where: str, name: str, required: bool) -> float | None:
    if value is None:
        if required:
            raise AnnotationError(f"{where}: missing {name!r}")
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: {name!r} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise AnnotationError(f"{where}: {name!r} is not finite: {value!r}")
    return number


def parse_database(database: Any, source: str, classes: list[str] | None = None,
                   remap_ids: bool = False) -> AnnotationSet:
    """Parse an ActivityNet-style ``database`` mapping (the canonical one is a superset).

    With ``classes`` given, labels must be in it and ``label_id`` must be its index, unless
    ``remap_ids`` (converting a native file whose ids differ): then ids follow ``classes``.
    """
    if not isinstance(database, dict):
        raise AnnotationError(f"{source}: 'database' must map video ids to entries")
    raw: dict[str, tuple[dict[str, Any], list[tuple[str, int | None, tuple[float, float] | None]]]] = {}
    for vid, entry in database.items():
        where = f"{source}: video {vid!r}"
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: entry must be an object")
        segments = []
        for k, ann in enumerate(entry.get("annotations") or []):
            at = f"{where}: annotation {k}"
            if not isinstance(ann, dict) or "label" not in ann or "segment" not in ann:
                raise AnnotationError(f"{at}: needs 'label' and 'segment'")
            seg = ann["segment"]
            if seg is not None and (not isinstance(seg, (list, tuple)) or len(seg) != 2):
                raise AnnotationError(f"{at}: 'segment' must be [start, end] or null, got {seg!r}")
            span = None if seg is None else (_number(seg[0], at, "segment start", True),
                                             _number(seg[1], at, "segment end", True))
            label_id = ann.get("label_id")
            segments.append((str(ann["label"]), None if label_id is None else int(label_id), span))
        raw[vid] = (entry, segments)
    names = classes if classes is not None else class_list(
        (name, i) for _, segs in raw.values() for name, i, _ in segs)
    index = {name: i for i, name in enumerate(names)}
    out = {}
    for vid, (entry, segs) in raw.items():
        where = f"{source}: video {vid!r}"
        anns = []
        for name, label_id, span in segs:
            if name not in index:
                raise AnnotationError(f"{where}: label {name!r} is not in the class list")
            if label_id is not None and not remap_ids and label_id != index[name]:
                raise AnnotationError(f"{where}: label {name!r} has label_id {label_id}, but the class "
                                      f"list puts it at {index[name]}")
            anns.append(Annotation(name, index[name], span))
        out[vid] = VideoAnnotations(subset=str(entry.get("subset", "")),
                                    duration=_number(entry.get("duration"), where, "duration", False),
                                    fps=_number(entry.get("fps"), where, "fps", False), annotations=anns)
    return AnnotationSet(out, names)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys without a word: a duplicated video id would
    # silently drop the first one's annotations.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise AnnotationError(f"key {key!r} appears twice in the same object")
        out[key] = value
    return out


def load_annotations(path: str | Path) -> AnnotationSet:
    """Read a canonical (or plain ActivityNet-style) annotation file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path} is not valid JSON: {exc}") from None
    except AnnotationError as exc:
        raise AnnotationError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or "database" not in data:
        raise AnnotationError(f"{path}: expected an object with a 'database' mapping")
    classes = data.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise AnnotationError(f"{path}: 'classes' must be a list of names")
    return parse_database(data["database"], str(path), classes)
