"""Scoring a predictions file against annotations (``python -m detect evaluate``): detection mAP,
per-frame mAP or top-k, by the file's task."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from extract.annotations import load_annotations

from ..errors import ConfigError, DataError

DEFAULT_TIOU = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def predictions_task(path: Path, card=None) -> str:
    """The task a predictions file belongs to: the card's, else by its format."""
    if card is not None:
        from ..tasks import task_for_card

        return task_for_card(card.task)
    if path.suffix == ".npz":
        return "dense"
    data = read_json(path)
    return "clips" if "classes" in data and isinstance(next(iter(data["results"].values()), None), dict) else "segments"


def read_json(path: Path) -> Any:
    """A JSON file; unreadable or invalid is a :class:`DataError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


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
               dataset: str | None = None, tiou: list[float] | None = None, clean_gt: bool = False,
               restrict_to_subset: bool = False, frame_map: str | None = None,
               action_conditional: list[int] | None = None) -> tuple[str, Any]:
    """``(task, result)``: a :class:`DetectionResult` for segments, a dict for dense and clips."""
    card = None
    if dataset:
        from extract.cards import load_card

        card = load_card(dataset)
    path = Path(predictions)
    task = task or predictions_task(path, card)
    gt = load_annotations(annotations)
    subsets = sorted({v.subset for v in gt.database.values()})
    ids = sorted(gt.subset(split))
    if not ids:
        raise DataError(f"{annotations} has no videos in subset {split!r} (its subsets: {', '.join(subsets)})")
    if task == "segments":
        from ..metrics import evaluate_detections

        tiou = tiou or (card.evaluation.get("tiou") if card else None) or DEFAULT_TIOU
        clean = clean_gt or (card is not None and card.evaluation.get("protocol") == "clean-gt")
        dets = read_json(path)
        database = {vid: v.to_dict() for vid, v in gt.database.items()}
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            return task, evaluate_detections(database, dets.get("results", dets), split, tiou, clean_gt=clean,
                                             restrict_to_subset=restrict_to_subset)
    if task == "dense":
        from ..tasks.dense import read_frame_predictions, score_frames

        scores, classes = read_frame_predictions(path)
        mode = frame_map or (card.evaluation.get("mode", "full") if card else "full")
        return task, score_frames(scores, gt, ids, classes, mode, action_conditional or ())
    from ..tasks.clips import read_clip_predictions, score_clips

    probs, classes = read_clip_predictions(path)
    return task, score_clips(probs, gt, ids, classes, split)
