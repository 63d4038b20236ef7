"""Converters from the native annotation formats of the supported datasets to the canonical one.

Each converter takes the native file (or folder) and :class:`ConvertOptions` and returns an
:class:`AnnotationSet`. Class ids follow the dataset card's class list when one is given, so
every converter agrees on ``label_id``; without a card, ids follow the file's own.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .schema import AnnotationError, AnnotationSet, VideoAnnotations, load_annotations, parse_database


@dataclass
class ConvertOptions:
    classes: list[str] | None = None        # from the dataset card
    fps: float | None = None                # default fps (card's native fps, or --fps)
    subset: str | None = None               # force the subset of every video
    units: str = "seconds"                  # for formats that may count in frames
    meta: dict[str, VideoAnnotations] = field(default_factory=dict)  # duration/fps from --meta-from


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path} is not valid JSON: {exc}") from None


def _finish(result: AnnotationSet, opts: ConvertOptions) -> AnnotationSet:
    """Apply --subset, and fill missing duration/fps from --meta-from and the default fps."""
    for vid, video in result.database.items():
        known = opts.meta.get(vid)
        if video.duration is None and known is not None:
            video.duration = known.duration
        if video.fps is None:
            video.fps = known.fps if known is not None and known.fps is not None else opts.fps
        if opts.subset is not None:
            video.subset = opts.subset
    return result


def _database(entries: dict[str, Any], source: str, opts: ConvertOptions) -> AnnotationSet:
    return _finish(parse_database(entries, source, opts.classes, remap_ids=opts.classes is not None), opts)


def from_activitynet(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """ActivityNet / ActionFormer JSON: ``{"database": {vid: {subset, duration, fps, annotations}}}``."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f"{path}: expected an object with a 'database' mapping (ActivityNet format)")
    return _database(data["database"], str(path), opts)


def from_swallow(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """SG-Mamba VFSS JSON, flat ``{clip: {...}}`` or wrapped ``{"database": {...}}``; 29.97 fps."""
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("database"), dict):
        data = data["database"]
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a mapping of clip ids")
    opts = ConvertOptions(**{**opts.__dict__, "fps": opts.fps or 29.97})
    return _database(data, str(path), opts)


def _number(value, where: str, field: str, kind: type = float):
    """``kind(value)``, or an :class:`AnnotationError` naming the file, video and field."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: {field} {value!r} is not a number") from None


def _name_of(class_id: int, opts: ConvertOptions, where: str) -> str:
    if opts.classes is None:
        return f"class_{class_id}"
    if not 0 <= class_id < len(opts.classes):
        raise AnnotationError(f"{where}: class id {class_id} outside the card's {len(opts.classes)} classes")
    return opts.classes[class_id]


def _classes_for(opts: ConvertOptions, database: dict[str, Any]) -> list[str]:
    """The card's classes, or ``class_0 .. class_N`` for files that carry only numeric ids."""
    if opts.classes is not None:
        return opts.classes
    ids = [int(a["label"].split("_")[1]) for e in database.values() for a in e["annotations"]]
    return [f"class_{i}" for i in range(max(ids, default=-1) + 1)]


def _ms_temba(path: Path, opts: ConvertOptions) -> AnnotationSet:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a mapping of video ids")
    if opts.units not in ("seconds", "frames"):
        raise AnnotationError(f"units must be 'seconds' or 'frames', got {opts.units!r}")
    in_frames = opts.units == "frames"
    if in_frames and not opts.fps:
        raise AnnotationError(f"{path}: times are in frames; give --fps (or a --dataset card with a native fps)")
    scale = 1.0 / opts.fps if in_frames else 1.0
    database = {}
    for vid, entry in data.items():
        where = f"{path}: video {vid!r}"
        if not isinstance(entry, dict) or "actions" not in entry:
            raise AnnotationError(f"{where}: needs 'actions' ([[class, start, end], ...])")
        anns = []
        for k, action in enumerate(entry["actions"]):
            if not isinstance(action, (list, tuple)) or len(action) != 3:
                raise AnnotationError(f"{where}: action {k} must be [class, start, end], got {action!r}")
            cls, start, end = action
            name = _name_of(_number(cls, f"{where}: action {k}", "class", int), opts, where)
            anns.append({"label": name, "segment": [_number(start, f"{where}: action {k}", "start") * scale,
                                                    _number(end, f"{where}: action {k}", "end") * scale]})
        duration = entry.get("duration")
        database[vid] = {"subset": entry.get("subset", ""), "annotations": anns,
                         "duration": None if duration is None else _number(duration, where, "duration") * scale}
    return _finish(parse_database(database, str(path), _classes_for(opts, database), remap_ids=True), opts)


def from_ms_temba(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """MS-Temba JSON: ``{vid: {subset, duration, actions: [[class_id, start, end]]}}`` (--units)."""
    return _ms_temba(path, opts)


def from_tsu(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """Toyota Smarthome Untrimmed: the MS-Temba layout with times and durations in frames."""
    return _ms_temba(path, ConvertOptions(**{**opts.__dict__, "units": "frames"}))


_THUMOS_FILE = re.compile(r"^(?P<label>.+)_(?P<split>val|validation|test)\.txt$")


def from_thumos_txt(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """THUMOS14's per-class files ``{Class}_{val|test}.txt``, lines ``video start end`` in seconds.

    ``path`` is a folder (searched recursively). ``Ambiguous_*.txt`` marks ambiguous regions,
    not a class, and is skipped. Durations and fps are not in these files: pass --meta-from.
    """
    if not path.is_dir():
        raise AnnotationError(f"{path}: thumos-txt expects the folder holding {{Class}}_val.txt / _test.txt")
    database: dict[str, dict[str, Any]] = {}
    files = sorted(path.rglob("*.txt"))
    for file in files:
        m = _THUMOS_FILE.match(file.name)
        if m is None or m["label"] == "Ambiguous":
            continue
        subset = "validation" if m["split"].startswith("val") else "test"
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise AnnotationError(f"{file}:{n}: expected 'video start end', got {line!r}")
            vid, start, end = fields
            entry = database.setdefault(vid, {"subset": subset, "annotations": []})
            entry["annotations"].append({"label": m["label"], "segment": [start, end]})
    if not database:
        raise AnnotationError(f"{path}: no {{Class}}_val.txt or {{Class}}_test.txt files")
    return _database(database, str(path), opts)


def from_charades_csv(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """Charades ``Charades_v1_{train,test}.csv``: columns ``id``, ``length`` (s) and ``actions``
    (``c092 11.90 21.20;c147 0.00 12.60``). The subset comes from the file name or --subset."""
    subset = "testing" if "test" in path.name.lower() else "training"
    database = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"id", "actions"} - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(f"{path}: missing column(s) {sorted(missing)}")
        for row in reader:
            where = f"{path}: video {row['id']!r}"
            anns = []
            for item in filter(None, (row["actions"] or "").split(";")):
                parts = item.split()
                if len(parts) != 3 or not re.fullmatch(r"c\d{3}", parts[0]):
                    raise AnnotationError(f"{where}: bad action {item!r}, expected 'cNNN start end'")
                name = _name_of(int(parts[0][1:]), opts, where) if opts.classes else parts[0]
                anns.append({"label": name, "segment": [parts[1], parts[2]]})
            length = row.get("length")
            database[row["id"]] = {"subset": subset, "duration": _number(length, where, "length") if length else None,
                                   "annotations": anns}
    return _database(database, str(path), opts)


def from_label_list(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """Clip-classification lists (SMG, iMiGUE, MA-52): lines ``clip label_id`` (space, comma or
    tab separated; ids 0-based, index the card's classes). Each clip gets one whole-clip label.
    The subset is --subset, or the file name's train/val/test."""
    lowered = path.name.lower()
    subset = opts.subset or next((s for s in ("train", "val", "test") if s in lowered), "")
    database = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = [f for f in re.split(r"[\s,]+", line.strip()) if f]
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            if n == 1:
                continue  # a header line
            raise AnnotationError(f"{path}:{n}: expected 'clip label_id', got {line!r}")
        clip, cls = fields[0], int(fields[1])
        name = _name_of(cls, opts, f"{path}:{n}")
        database[clip] = {"subset": subset, "annotations": [{"label": name, "segment": None}]}
    return _finish(parse_database(database, str(path), _classes_for(opts, database), remap_ids=True), opts)


def from_smg_finelabels(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """SMG ``SampleNNNN_finelabels.csv`` files (a file or a folder of them): rows
    ``label,startframe,endframe`` with 1-based labels, one file per recording."""
    files = sorted(path.rglob("*_finelabels.csv")) if path.is_dir() else [path]
    if not opts.fps:
        raise AnnotationError(f"{path}: SMG frames need an fps: give --fps or --dataset smg")
    database = {}
    for file in files:
        vid = file.name[: -len("_finelabels.csv")]
        anns = []
        for n, row in enumerate(csv.reader(file.read_text(encoding="utf-8").splitlines()), 1):
            if not row or not row[0].strip().lstrip("-").isdigit():
                continue
            if len(row) < 3:
                raise AnnotationError(f"{file}:{n}: expected 'label,startframe,endframe'")
            at = f"{file}:{n}"
            label = _number(row[0], at, "label", int) - 1
            start, end = _number(row[1], at, "startframe", int), _number(row[2], at, "endframe", int)
            anns.append({"label": _name_of(label, opts, f"{file}:{n}"),
                         "segment": [start / opts.fps, end / opts.fps]})
        database[vid] = {"subset": opts.subset or "", "annotations": anns}
    return _finish(parse_database(database, str(path), _classes_for(opts, database), remap_ids=True), opts)


def from_canonical(path: Path, opts: ConvertOptions) -> AnnotationSet:
    """A canonical file (re-labelled to a card, anonymised, or re-subset)."""
    result = load_annotations(path)
    if opts.classes is not None and result.classes != opts.classes:
        result = parse_database(json.loads(result.to_json())["database"], str(path), opts.classes, remap_ids=True)
    return _finish(result, opts)


CONVERTERS: dict[str, Callable[[Path, ConvertOptions], AnnotationSet]] = {
    "activitynet": from_activitynet,
    "thumos-txt": from_thumos_txt,
    "charades-csv": from_charades_csv,
    "ms-temba": from_ms_temba,
    "tsu": from_tsu,
    "swallow": from_swallow,
    "label-list": from_label_list,
    "smg-finelabels": from_smg_finelabels,
    "canonical": from_canonical,
}
