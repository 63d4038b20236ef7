"""Scoring a predictions file against annotations (``python -m detect evaluate``), by the file's
task: the one named, else the dataset card's, else the one whose file format it is."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from extract.annotations import load_annotations
from extract.registry import RegistryError

from ..config import read_card, task_settings
from ..errors import ConfigError, DataError
from ..tasks import get_task, task_for_card, task_for_predictions


def parse_tiou(text: str) -> list[float]:
    """``"0.3,0.5"`` -> thresholds in (0, 1), each named when it is not one."""
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--tiou: {part.strip()!r} is not a number") from None
        if not 0 < value < 1:
            raise ConfigError(f"--tiou: {value} is not in (0, 1)")
        out.append(value)
    return out


def score_file(annotations: str | Path, predictions: str | Path, split: str, *, task: str | None = None,
               dataset: str | None = None, settings: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(task, result)`` of a predictions file. ``settings`` are task settings (``tiou``,
    ``frame_map``, ...) on top of the card's; one the task does not have is an error."""
    path = Path(predictions)
    card = read_card(dataset)
    name = task or (task_for_card(card.task) if card is not None else task_for_predictions(path))
    try:
        task_cls = get_task(name)
    except RegistryError as exc:
        raise ConfigError(f"--task: {exc}") from None
    settings = dict(settings or {})
    foreign = sorted(set(settings) - {f.name for f in dataclasses.fields(task_cls.config)})
    if foreign:
        raise ConfigError(f"{', '.join('--' + k.replace('_', '-') for k in foreign)}: not an option of the {name!r} "
                          f"task, whose predictions {path} holds")
    config = task_settings(name, dataset, settings)
    gt = load_annotations(annotations)
    ids = sorted(gt.subset(split))
    if not ids:
        subsets = sorted({v.subset for v in gt.database.values()})
        raise DataError(f"{annotations} has no videos in subset {split!r} (its subsets: {', '.join(subsets)})")
    found, classes = task_cls.read_predictions(path)
    unknown = [c for c in classes or () if c not in gt.classes]
    if unknown:
        raise DataError(f"{path} scores {len(unknown)} classes that {annotations} does not have, e.g. {unknown[:5]}; "
                        f"classes are matched by name")
    return name, task_cls.score(config, found, classes, gt, ids, split)
