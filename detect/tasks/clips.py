"""``clips``: one label per clip (SMG, iMiGUE, MA-52; MSF-Mamba).

Cross-entropy (``task.label_smoothing``); predictions are softmax probabilities per clip; the
metric is top-1 (``task.topk`` reported beside it) with the confusion matrix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from extract.annotations import AnnotationSet
from extract.atomic import write_text_atomically

from ..data.clips import ClipDataset, clip_label, collate_clips
from ..errors import DataError
from ..metrics import confusion_matrix, topk_accuracy
from ..outputs import ClipOutput
from . import register_task
from .base import Task, move_inputs, read_json


@dataclass
class ClipsConfig:
    """The ``clips`` task's settings (a run's ``task:`` section)."""

    label_smoothing: float = 0.0            # cross-entropy label smoothing
    topk: list[int] = field(default_factory=lambda: [1, 5])   # accuracies reported; top-1 selects models

    def __post_init__(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if 1 not in self.topk or any(k < 1 for k in self.topk):
            raise ValueError(f"topk must hold 1 (it selects models) and positive k, got {self.topk}")

    @staticmethod
    def card_defaults(evaluation: dict[str, Any]) -> dict[str, Any]:
        return {}


class ClipLoss(nn.Module):
    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, out: ClipOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labels = batch["labels"].to(out.logits.device)
        return {"final_loss": F.cross_entropy(out.logits.float(), labels, label_smoothing=self.label_smoothing)}


def score_clips(predictions: dict[str, np.ndarray], annotations: AnnotationSet, video_ids: list[str],
                classes: list[str], split: str, topk: list[int] | tuple[int, ...] = (1, 5)) -> dict[str, Any]:
    """Top-k accuracies and the confusion matrix of per-clip probabilities ``(K,)``."""
    missing = [vid for vid in video_ids if vid not in predictions]
    if missing:
        raise DataError(f"{len(missing)} clips have no predictions, e.g. {missing[:3]}")
    labels = np.asarray([clip_label(annotations, vid, classes) for vid in video_ids])
    probs = np.stack([np.asarray(predictions[vid], dtype=np.float64) for vid in video_ids])
    result: dict[str, Any] = topk_accuracy(probs, labels, tuple(topk))
    result["confusion"] = confusion_matrix(probs.argmax(1), labels, len(classes)).tolist()
    result["protocol"] = f"{' / '.join(f'top-{k}' for k in topk)} accuracy over {len(video_ids)} clips of subset {split!r}"
    return result


def read_clip_predictions(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """What :meth:`ClipsTask.write_predictions` wrote: per-clip probabilities and the classes."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        classes = [str(c) for c in data["classes"]]
        predictions = {vid: np.asarray(r["scores"], dtype=np.float64) for vid, r in data["results"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a clips predictions file ({type(exc).__name__}: {exc})") from None
    for vid, p in predictions.items():
        if p.shape != (len(classes),) or not np.isfinite(p).all():
            raise DataError(f"{path}: clip {vid!r} has scores of shape {p.shape} (or NaN); expected {len(classes)} "
                            f"finite scores, one per class")
    return predictions, classes


@register_task("clips")
class ClipsTask(Task):
    config = ClipsConfig
    output = ClipOutput
    card_task = "clip-classification"
    card_metric = "topk-accuracy"
    metric = "top1"
    collate_fn = staticmethod(collate_clips)
    prediction_suffix = "_clips.json"

    def dataset(self, video_ids: list[str], *, training: bool) -> ClipDataset:
        return ClipDataset(self.streams, self.annotations, video_ids, self.classes, training=training,
                           seed=self.cfg.seed, skip_corrupt=self.cfg.data.skip_corrupt)

    def criterion(self, model: nn.Module) -> nn.Module:
        return ClipLoss(self.settings.label_smoothing)

    @torch.no_grad()
    def predict(self, model, loader, device, amp=False) -> dict[str, np.ndarray]:
        """Per clip: softmax probabilities ``(K,)``."""
        model.eval()
        results = {}
        for batch in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(**move_inputs(batch, device))
            probs = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            results.update({item.video_id: p for item, p in zip(batch["items"], probs)})
        return results

    @classmethod
    def claims(cls, path: Path) -> bool:
        """A JSON of ``{"classes": [...], "results": {clip: {label, scores}}}``."""
        if Path(path).suffix.lower() != ".json":
            return False
        data = read_json(path)
        return (isinstance(data, dict) and "classes" in data and isinstance(data.get("results"), dict)
                and all(isinstance(r, dict) for r in data["results"].values()))

    @classmethod
    def read_predictions(cls, path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
        return read_clip_predictions(path)

    @classmethod
    def score(cls, settings, predictions, classes, annotations, video_ids, split) -> dict[str, Any]:
        return score_clips(predictions, annotations, video_ids, classes, split, settings.topk)

    def write_predictions(self, predictions, path: Path, result: dict[str, Any] | None = None) -> list[Path]:
        """JSON: top label and probabilities per clip; with an evaluation ``result``, the
        confusion matrix beside it (``*_confusion.png``)."""
        results = {vid: {"label": self.classes[int(np.argmax(p))], "scores": [float(x) for x in p]}
                   for vid, p in predictions.items()}
        write_text_atomically(path, json.dumps({"classes": self.classes, "results": results}))
        if result is None:
            return [path]
        from ..plot import plot_confusion

        return [path, plot_confusion(np.asarray(result["confusion"]), self.classes,
                                     path.with_name(f"{path.stem}_confusion.png"))]

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        ks = sorted(int(k[3:]) for k in result if k.startswith("top") and k[3:].isdigit())
        return "  ".join(f"top-{k} {100 * result[f'top{k}']:.2f}" for k in ks) + f" ({result['protocol']})"
