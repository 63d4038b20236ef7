"""``dense``: per-step multi-label action detection (Charades, TSU, MultiTHUMOS; MS-Temba).

Targets are multi-hot ``(T, K)`` on the store's grid (:mod:`detect.data.dense`); the loss is
binary cross-entropy averaged over valid steps only (padding never counts, neither as a
positive nor as a negative), plus ``eval.aux_weight`` times the same loss on each
deep-supervision output; predictions are per-step sigmoid probabilities; the metric is
per-frame mAP in the card's mode (:mod:`detect.metrics.frame_map`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from extract.annotations import AnnotationSet

from ..data.dense import DenseDataset, collate_dense, frame_targets, segment_rows
from ..errors import DataError
from ..metrics import frame_map
from ..models.outputs import FrameOutput
from . import TASKS
from .base import Task, move_inputs


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the valid steps of ``logits``/``target (B, T, K)``, ``mask (B, T)``."""
    return F.binary_cross_entropy_with_logits(logits[mask].float(), target[mask])


class DenseLoss(nn.Module):
    def __init__(self, aux_weight: float) -> None:
        super().__init__()
        self.aux_weight = aux_weight

    def forward(self, out: FrameOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        mask = batch["inputs"]["mask"].to(out.logits.device)
        target = batch["frames"].to(out.logits.device)
        losses = {"frame_loss": masked_bce(out.logits, target, mask)}
        if out.aux_logits:
            losses["aux_loss"] = sum(masked_bce(a, target, mask) for a in out.aux_logits)
        losses.update(out.extra_losses)
        losses["final_loss"] = (losses["frame_loss"] + self.aux_weight * losses.get("aux_loss", 0.0)
                                + sum(out.extra_losses.values()))
        return losses


def score_frames(predictions: dict[str, dict[str, np.ndarray]], annotations: AnnotationSet, video_ids: list[str],
                 classes: list[str], mode: str) -> dict[str, Any]:
    """Per-frame mAP of ``predictions`` (``scores (T, K)`` and ``times (T,)`` per video) against
    the annotations of ``video_ids``; every one of them needs predictions."""
    missing = [vid for vid in video_ids if vid not in predictions]
    if missing:
        raise DataError(f"{len(missing)} videos have no predictions, e.g. {missing[:3]}")
    index = {name: i for i, name in enumerate(classes)}
    scores = [predictions[vid]["scores"] for vid in video_ids]
    targets = [frame_targets(predictions[vid]["times"], segment_rows(annotations.database[vid], index), len(classes))
               for vid in video_ids]
    result = frame_map(scores, targets, mode)
    return {"mAP": result.map, "per_class_ap": dict(zip(classes, result.per_class_ap)), "protocol": result.protocol}


def read_frame_predictions(path: str | Path) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """What :meth:`DenseTask.write_predictions` wrote: per-video predictions and the classes."""
    try:
        with np.load(path, allow_pickle=False) as data:
            predictions: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                if key != "classes":
                    vid, _, field = key.rpartition("/")
                    predictions.setdefault(vid, {})[field] = data[key]
            return predictions, data["classes"].tolist()
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path} is not a dense predictions file ({exc})") from None


@TASKS.register("dense")
class DenseTask(Task):
    name = "dense"
    card_task = "dense-detection"
    metric = "mAP"
    collate_fn = staticmethod(collate_dense)
    prediction_suffix = "_frames.npz"
    options = frozenset({"eval.frame_map", "eval.aux_weight"})

    def dataset(self, video_ids: list[str], *, training: bool) -> DenseDataset:
        return DenseDataset(self.streams, self.annotations, video_ids, self.classes, training=training,
                            seed=self.cfg.seed, skip_corrupt=self.cfg.data.skip_corrupt,
                            max_seq_len=self.cfg.data.max_seq_len)

    def criterion(self, model: nn.Module) -> nn.Module:
        return DenseLoss(self.cfg.eval.aux_weight)

    def mode(self) -> str:
        if self.cfg.eval.frame_map:
            return self.cfg.eval.frame_map
        if self.cfg.data.dataset:
            from extract.cards import load_card

            return load_card(self.cfg.data.dataset).evaluation.get("mode", "full")
        return "full"

    @torch.no_grad()
    def predict(self, model, loader, device, amp=False) -> dict[str, dict[str, np.ndarray]]:
        """Per video: ``scores (T, K)`` sigmoid probabilities and ``times (T,)`` step centres (s)."""
        model.eval()
        results = {}
        for batch in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(**move_inputs(batch, device))
            probs = torch.sigmoid(out.logits.float()).cpu().numpy()
            for i, item in enumerate(batch["items"]):
                steps = item.offset + np.arange(item.length)
                results[item.video_id] = {"scores": probs[i, : item.length],
                                          "times": np.asarray(item.grid.index_to_seconds(steps), dtype=np.float64)}
        return results

    def evaluate(self, predictions, video_ids, split) -> dict[str, Any]:
        return score_frames(predictions, self.annotations, video_ids, self.classes, self.mode())

    def write_predictions(self, predictions, path: Path, result: dict[str, Any] | None = None) -> list[Path]:
        """An ``.npz``: ``classes``, and per video ``{id}/scores`` ``(T, K)`` and ``{id}/times`` (s)."""
        arrays = {"classes": np.asarray(self.classes)}
        for vid, p in predictions.items():
            arrays[f"{vid}/scores"] = p["scores"].astype(np.float32)
            arrays[f"{vid}/times"] = p["times"]
        np.savez_compressed(path, **arrays)
        return [path]

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        return f"per-frame mAP {100 * result['mAP']:.2f} ({result['protocol']})"
