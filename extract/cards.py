"""Dataset cards: ``datasets/<id>.yaml``, one per supported dataset, validated against a schema.

A card says what a dataset is (task, classes, fps, splits), how it is evaluated, how to get
it, and which public feature sets exist with their snippet grids. ``--dataset NAME`` anywhere
in the CLI takes a card id (``thumos14``) or a path to a card file.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExtractError



def card_metrics() -> dict[str, str]:
    """The cards' task names and each one's metric, from the task registry (``detect.tasks``):
    a new task's cards are valid once the task is registered."""
    from detect.tasks import TASKS

    return {task.card_task: task.card_metric for _, task in TASKS.items()}

PROTOCOLS = ("clean-gt", "official")


class CardError(ExtractError, ValueError):
    """A card that does not follow the schema; the message names the file and field."""


def shared_dir(name: str) -> Path:
    """A data folder of the distribution (``datasets``, ``configs``): the checkout's, or, for a
    ``pip install .``, the copy installed under ``<prefix>/share/mamba-tad/``."""
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "mamba-tad" / name


def cards_dir() -> Path:
    """``$MAMBA_TAD_DATASETS``, else the distribution's ``datasets/`` (:func:`shared_dir`)."""
    return Path(os.environ.get("MAMBA_TAD_DATASETS") or shared_dir("datasets"))


@dataclass(frozen=True)
class FeatureSet:
    """A published feature release and its grid. ``file_pattern`` holds ``{id}``."""

    name: str
    window: int
    stride: int
    fps: float | str          # a number, or "native"
    dim: int
    format: str
    file_pattern: str
    hub: str | None = None
    tail: str = "drop"
    notes: str = ""

    @property
    def prefix_suffix(self) -> tuple[str, str]:
        """What surrounds the video id in a file name, extension excluded."""
        stem = self.file_pattern.rsplit(".", 1)[0]
        prefix, _, suffix = stem.partition("{id}")
        return prefix, suffix


@dataclass(frozen=True)
class DatasetCard:
    id: str
    name: str
    task: str
    num_classes: int
    native_fps: float | str
    splits: dict[str, Any]
    evaluation: dict[str, Any]
    annotations: dict[str, Any]
    access: dict[str, Any]
    classes: list[str] | None = None
    classes_source: str = ""
    feature_sets: list[FeatureSet] = field(default_factory=list)
    notes: str = ""
    path: Path | None = None

    @property
    def fps(self) -> float | None:
        return float(self.native_fps) if isinstance(self.native_fps, (int, float)) else None

    def feature_set(self, hub_repo: str) -> FeatureSet:
        for fs in self.feature_sets:
            if fs.hub == hub_repo:
                return fs
        known = [fs.hub for fs in self.feature_sets if fs.hub]
        raise CardError(f"card {self.id!r} lists no feature set on the Hub as {hub_repo!r} (known: {known})")


def _require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise CardError(f"{where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool):  # YAML's yes/no are not numbers here
        raise CardError(f"{where}: field {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _validate_evaluation(ev: dict[str, Any], task: str, where: str) -> None:
    metric = _require(ev, "metric", str, where)
    expected = card_metrics()[task]
    if metric != expected:
        raise CardError(f"{where}: metric of a {task} dataset is {expected!r}, not {metric!r}")
    if metric == "detection-map":
        tiou = _require(ev, "tiou", list, where)
        if not tiou or not all(isinstance(t, (int, float)) and 0 < t < 1 for t in tiou):
            raise CardError(f"{where}: 'tiou' must be thresholds in (0, 1), got {tiou!r}")
        if _require(ev, "protocol", str, where) not in PROTOCOLS:
            raise CardError(f"{where}: 'protocol' must be one of {PROTOCOLS}")
    elif metric == "frame-map":
        from detect.metrics.frame_map import MODES

        if _require(ev, "mode", str, where) not in MODES:
            raise CardError(f"{where}: 'mode' must be one of {', '.join(MODES)}")
    else:
        topk = _require(ev, "topk", list, where)
        if not topk or not all(isinstance(k, int) and k >= 1 for k in topk):
            raise CardError(f"{where}: 'topk' must be positive integers, got {topk!r}")


def _feature_set(d: Any, where: str) -> FeatureSet:
    if not isinstance(d, dict):
        raise CardError(f"{where}: must be a mapping")
    for key, kind in [("name", str), ("window", int), ("stride", int), ("fps", (int, float, str)), ("dim", int),
                      ("format", str), ("file_pattern", str)]:
        _require(d, key, kind, where)
    if isinstance(d["fps"], str) and d["fps"] != "native":
        raise CardError(f"{where}: 'fps' must be a number or 'native', got {d['fps']!r}")
    if d["format"] not in ("npy", "npz", "pt", "pkl"):
        raise CardError(f"{where}: 'format' must be npy, npz, pt or pkl, got {d['format']!r}")
    if "{id}" not in d["file_pattern"] or not d["file_pattern"].endswith("." + d["format"]):
        raise CardError(f"{where}: 'file_pattern' must contain {{id}} and end in .{d['format']}")
    unknown = set(d) - {"name", "window", "stride", "fps", "dim", "format", "file_pattern", "hub", "tail", "notes"}
    if unknown:
        raise CardError(f"{where}: unknown fields {sorted(unknown)}")
    return FeatureSet(**d)


def parse_card(d: Any, source: str) -> DatasetCard:
    """Validate a card's data against the schema and build the :class:`DatasetCard`."""
    if not isinstance(d, dict):
        raise CardError(f"{source}: a card must be a mapping")
    allowed = {"id", "name", "task", "num_classes", "native_fps", "splits", "evaluation", "annotations",
               "access", "classes", "classes_source", "feature_sets", "notes"}
    unknown = set(d) - allowed
    if unknown:
        raise CardError(f"{source}: unknown fields {sorted(unknown)}")
    for key, kind in [("id", str), ("name", str), ("task", str), ("num_classes", int), ("native_fps", (int, float, str)),
                      ("splits", dict), ("evaluation", dict), ("annotations", dict), ("access", dict)]:
        _require(d, key, kind, source)
    if d["task"] not in card_metrics():
        raise CardError(f"{source}: 'task' must be one of {tuple(card_metrics())}, got {d['task']!r}")
    if isinstance(d["native_fps"], str) and d["native_fps"] != "varies":
        raise CardError(f"{source}: 'native_fps' must be a number or 'varies'")
    classes = d.get("classes")
    if classes is not None:
        if not (isinstance(classes, list) and all(isinstance(c, str) and c for c in classes)):
            raise CardError(f"{source}: 'classes' must be a list of names (index = label_id)")
        if len(classes) != d["num_classes"] or len(set(classes)) != len(classes):
            raise CardError(f"{source}: 'classes' has {len(classes)} names ({len(set(classes))} distinct), "
                            f"num_classes says {d['num_classes']}")
    elif not d.get("classes_source"):
        raise CardError(f"{source}: without 'classes', say where the names come from in 'classes_source'")
    splits = d["splits"]
    for key in ("train", "val", "test"):
        _require(splits, key, str, f"{source}: splits")
    holdout = splits.get("val_holdout")
    if splits["val"] == splits["train"] and not (isinstance(holdout, float) and 0 < holdout < 1):
        raise CardError(f"{source}: splits: validating on the training split needs 'val_holdout' in (0, 1)")
    _validate_evaluation(d["evaluation"], d["task"], f"{source}: evaluation")
    from .annotations.convert import CONVERTERS

    if _require(d["annotations"], "format", str, f"{source}: annotations") not in CONVERTERS:
        raise CardError(f"{source}: annotations: 'format' must be one of {sorted(CONVERTERS)}")
    for key in ("licence", "how"):
        _require(d["access"], key, str, f"{source}: access")
    feature_sets = [_feature_set(fs, f"{source}: feature_sets[{i}]") for i, fs in enumerate(d.get("feature_sets") or [])]
    return DatasetCard(**{**d, "feature_sets": feature_sets, "classes": classes})


def load_card(name_or_path: str | os.PathLike) -> DatasetCard:
    """A card by id (``thumos14``) or by path to a YAML file."""
    from .typed_config import FieldError, read_yaml

    path = Path(name_or_path)
    if not path.suffix:
        path = cards_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise CardError(f"no dataset card {str(name_or_path)!r} (looked for {path}); known: {', '.join(list_cards())}")
    try:
        data = read_yaml(path)
    except FieldError as exc:
        raise CardError(str(exc)) from None
    card = parse_card(data, str(path))
    if path.stem != card.id:
        raise CardError(f"{path}: file name and 'id' ({card.id!r}) differ")
    return DatasetCard(**{**card.__dict__, "path": path})


def list_cards() -> list[str]:
    return sorted(p.stem for p in cards_dir().glob("*.yaml"))
