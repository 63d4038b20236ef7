"""``clips``: one label per clip (SMG, iMiGUE, MA-52; MSF-Mamba).

Cross-entropy (``eval.label_smoothing``); predictions are softmax probabilities per clip; the
metric is top-1 (top-5 reported beside it) with the confusion matrix.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from extract.annotations import AnnotationSet

from ..data.clips import ClipDataset, clip_label, collate_clips
from ..errors import DataError
from ..metrics import confusion_matrix, topk_accuracy
from ..models.outputs import ClipOutput
from . import TASKS
from .base import Task, move_inputs


class ClipLoss(nn.Module):
    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, out: ClipOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labels = batch["labels"].to(out.logits.device)
        return {"final_loss": F.cross_entropy(out.logits.float(), labels, label_smoothing=self.label_smoothing)}


def score_clips(predictions: dict[str, np.ndarray], annotations: AnnotationSet, video_ids: list[str],
                classes: list[str], split: str) -> dict[str, Any]:
    """Top-1 / top-5 and the confusion matrix of per-clip probabilities ``(K,)``."""
    missing = [vid for vid in video_ids if vid not in predictions]
    if missing:
        raise DataError(f"{len(missing)} clips have no predictions, e.g. {missing[:3]}")
    labels = np.asarray([clip_label(annotations, vid, classes) for vid in video_ids])
    probs = np.stack([np.asarray(predictions[vid], dtype=np.float64) for vid in video_ids])
    result: dict[str, Any] = topk_accuracy(probs, labels)
    result["confusion"] = confusion_matrix(probs.argmax(1), labels, len(classes)).tolist()
    result["protocol"] = f"top-1 / top-5 accuracy over {len(video_ids)} clips of subset {split!r}"
    return result


def read_clip_predictions(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """What :meth:`ClipsTask.write_predictions` wrote: per-clip probabilities and the classes."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {vid: np.asarray(r["scores"]) for vid, r in data["results"].items()}, data["classes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a clips predictions file ({type(exc).__name__}: {exc})") from None


@TASKS.register("clips")
class ClipsTask(Task):
    name = "clips"
    card_task = "clip-classification"
    metric = "top1"
    collate_fn = staticmethod(collate_clips)
    prediction_suffix = "_clips.json"
    options = frozenset({"eval.label_smoothing"})

    def dataset(self, video_ids: list[str], *, training: bool) -> ClipDataset:
        return ClipDataset(self.streams, self.annotations, video_ids, self.classes, training=training,
                           seed=self.cfg.seed, skip_corrupt=self.cfg.data.skip_corrupt)

    def criterion(self, model: nn.Module) -> nn.Module:
        return ClipLoss(self.cfg.eval.label_smoothing)

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

    def evaluate(self, predictions, video_ids, split) -> dict[str, Any]:
        return score_clips(predictions, self.annotations, video_ids, self.classes, split)

    def write_predictions(self, predictions, path: Path, result: dict[str, Any] | None = None) -> list[Path]:
        """JSON: top label and probabilities per clip; with an evaluation ``result``, the
        confusion matrix beside it (``*_confusion.png``)."""
        results = {vid: {"label": self.classes[int(np.argmax(p))], "scores": [float(x) for x in p]}
                   for vid, p in predictions.items()}
        path.write_text(json.dumps({"classes": self.classes, "results": results}))
        if result is None:
            return [path]
        from ..plot import plot_confusion

        return [path, plot_confusion(np.asarray(result["confusion"]), self.classes,
                                     path.with_name(f"{path.stem}_confusion.png"))]

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        return f"top-1 {100 * result['top1']:.2f}  top-5 {100 * result['top5']:.2f} ({result['protocol']})"
