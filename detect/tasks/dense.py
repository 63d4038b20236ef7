"""``dense``: per-step multi-label action detection (Charades, TSU, MultiTHUMOS; MS-Temba).

Targets are multi-hot ``(T, K)`` on the store's grid (:mod:`detect.data.dense`); the loss is
binary cross-entropy averaged over valid steps only (padding never counts, neither as a
positive nor as a negative), plus ``task.aux_weight`` times the same loss on each
deep-supervision output; predictions are per-step sigmoid probabilities; the metric is
per-frame mAP in the card's mode (:mod:`detect.metrics.frame_map`).
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
from extract.atomic import replace_atomically, write_text_atomically

from ..data.dense import DenseDataset, collate_dense, segment_rows
from ..errors import DataError
from ..metrics import frame_map
from ..metrics.action_conditional import action_conditional
from ..metrics.frame_map import MODES, VideoFrames
from ..outputs import FrameOutput
from . import register_task
from .base import Task, move_inputs


@dataclass
class DenseConfig:
    """The ``dense`` task's settings (a run's ``task:`` section)."""

    aux_weight: float = 0.5                 # weight of each deep-supervision output's loss
    frame_map: str = "full"                 # per-frame mAP mode (detect.metrics.frame_map); the card's unless set
    action_conditional: list[int] = field(default_factory=list)  # MLAD offsets tau to report, e.g. [0, 20, 40]

    def __post_init__(self) -> None:
        if self.frame_map not in MODES:
            raise ValueError(f"frame_map must be one of {', '.join(MODES)}, got {self.frame_map!r}")
        if self.aux_weight < 0:
            raise ValueError(f"aux_weight must be at least 0, got {self.aux_weight}")

    @staticmethod
    def card_defaults(evaluation: dict[str, Any]) -> dict[str, Any]:
        return {"frame_map": evaluation.get("mode", "full")}


def masked_bce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the valid steps of ``logits``/``target (B, T, K)``, ``mask (B, T)``; by a
    masked sum rather than boolean indexing, which would wait for the GPU to count the steps."""
    dtype = torch.promote_types(logits.dtype, torch.float32)   # bf16 logits are scored in float32
    loss = F.binary_cross_entropy_with_logits(logits.to(dtype), target.to(dtype), reduction="none")
    return torch.where(mask[..., None], loss, 0.0).sum() / (mask.sum() * logits.shape[-1]).clamp(min=1)


class DenseLoss(nn.Module):
    def __init__(self, aux_weight: float) -> None:
        super().__init__()
        self.aux_weight = aux_weight

    def assign(self, out: FrameOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The batch's targets on ``out``'s device: ``mask (B, T)``, ``frames (B, T, K)``; fixed
        shapes in training (padded to ``data.max_seq_len``), so a captured step can take them."""
        device = out.logits.device
        return {"mask": batch["inputs"]["mask"].to(device), "frames": batch["frames"].to(device)}

    def forward(self, out: FrameOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The loss of ``out`` on a batch, or on its targets already assigned (:meth:`assign`)."""
        targets = self.assign(out, batch) if "inputs" in batch else batch
        mask, target = targets["mask"], targets["frames"]
        losses = {"frame_loss": masked_bce(out.logits, target, mask)}
        if out.aux_logits:
            losses["aux_loss"] = sum(masked_bce(a, target, mask) for a in out.aux_logits)
        losses.update(out.extra_losses)
        losses["final_loss"] = (losses["frame_loss"] + self.aux_weight * losses.get("aux_loss", 0.0)
                                + sum(out.extra_losses.values()))
        return losses


def score_frames(predictions: dict[str, dict[str, np.ndarray]], annotations: AnnotationSet, video_ids: list[str],
                 classes: list[str], mode: str, action_conditional_taus: list[int] | tuple[int, ...] = ()
                 ) -> dict[str, Any]:
    """Per-frame mAP of ``predictions`` (``scores (T, K)`` and ``times (T,)`` per video) against
    the annotations of ``video_ids``; every one of them needs predictions. Videos are ranked in
    the annotation file's order (ties as the official Charades evaluation breaks them), whatever
    the order of ``video_ids``. ``mAP`` is in the primary ``mode``, ``frame_map`` holds every
    mode; with ``action_conditional_taus``, MLAD's action-conditional metrics at each offset
    (:mod:`detect.metrics.action_conditional`)."""
    missing = [vid for vid in video_ids if vid not in predictions]
    if missing:
        raise DataError(f"{len(missing)} videos have no predictions, e.g. {missing[:3]}")
    wanted = set(video_ids)
    index = {name: i for i, name in enumerate(classes)}
    videos = [VideoFrames(vid, predictions[vid]["scores"], predictions[vid]["times"],
                          segment_rows(annotations.database[vid], index), annotations.database[vid].duration)
              for vid in annotations.database if vid in wanted]
    every = {}
    for m in MODES:  # the other modes are extras: one the data cannot give (no durations) is left out
        try:
            every[m] = frame_map(videos, m)
        except ValueError as exc:
            if m == mode:
                raise DataError(str(exc)) from None
    result = {"mAP": every[mode].map, "mode": mode, "per_class_ap": dict(zip(classes, every[mode].per_class_ap)),
              "protocol": every[mode].protocol, "frame_map": {m: r.map for m, r in every.items()}}
    if action_conditional_taus:
        scores = [v.scores for v in videos]
        targets = [v.step_targets for v in videos]
        result["action_conditional"] = {str(tau): action_conditional(scores, targets, tau)
                                        for tau in action_conditional_taus}
    return result


def frames_to_segments(scores: np.ndarray, times: np.ndarray, classes: list[str], threshold: float,
                       merge_gap: int = 0) -> list[dict[str, Any]]:
    """Segments of one video from per-step ``scores (T, K)`` at step centres ``times (T,)``: per
    class, each run of steps scoring ``>= threshold`` (runs at most ``merge_gap`` steps apart
    merged) spans from half a step before its first centre to half a step after its last; its
    score is the mean score over the run's steps (the gap included)."""
    half = float(np.median(np.diff(times))) / 2 if len(times) > 1 else 0.0
    out = []
    for k, label in enumerate(classes):
        on = np.flatnonzero(scores[:, k] >= threshold)
        if not len(on):
            continue
        breaks = np.flatnonzero(np.diff(on) > merge_gap + 1)
        for first, last in zip(on[np.r_[0, breaks + 1]], on[np.r_[breaks, len(on) - 1]]):
            out.append({"label": label, "score": float(scores[first:last + 1, k].mean()),
                        "segment": [max(0.0, float(times[first]) - half), float(times[last]) + half]})
    return sorted(out, key=lambda d: -d["score"])


def read_frame_predictions(path: str | Path) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
    """What :meth:`DenseTask.write_predictions` wrote: per-video predictions and the classes."""
    try:
        with np.load(path, allow_pickle=False) as data:
            predictions: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                if key != "classes":
                    vid, _, field = key.rpartition("/")
                    predictions.setdefault(vid, {})[field] = data[key]
            classes = data["classes"].tolist()
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(f"{path} is not a dense predictions file ({type(exc).__name__}: {exc})") from None
    for vid, p in predictions.items():
        scores, times = p.get("scores"), p.get("times")
        if scores is None or times is None:
            raise DataError(f"{path}: video {vid!r} lacks its {'scores' if scores is None else 'times'} array")
        if scores.ndim != 2 or scores.shape[1] != len(classes) or times.shape != (len(scores),):
            raise DataError(f"{path}: video {vid!r} has scores {scores.shape} and times {times.shape}; expected "
                            f"(T, {len(classes)}) and (T,)")
        if not (np.isfinite(scores).all() and np.isfinite(times).all()):
            raise DataError(f"{path}: video {vid!r} has NaN or infinite scores or times")
    return predictions, classes


@register_task("dense")
class DenseTask(Task):
    config = DenseConfig
    output = FrameOutput
    card_task = "dense-detection"
    card_metric = "frame-map"
    metric = "mAP"
    collate_fn = staticmethod(collate_dense)
    prediction_suffix = "_frames.npz"

    def dataset(self, video_ids: list[str], *, training: bool) -> DenseDataset:
        return DenseDataset(self.streams, self.annotations, video_ids, self.classes, training=training,
                            seed=self.cfg.seed, skip_corrupt=self.cfg.data.skip_corrupt,
                            max_seq_len=self.cfg.data.max_seq_len)

    def criterion(self, model: nn.Module) -> nn.Module:
        return DenseLoss(self.settings.aux_weight)

    @torch.no_grad()
    def predict(self, model, loader, device, amp=False) -> dict[str, dict[str, np.ndarray]]:
        """Per video: ``scores (T, K)`` sigmoid probabilities, ``times (T,)`` step centres (s) and
        the store's ``grid``."""
        model.eval()
        results = {}
        for batch in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(**move_inputs(batch, device))
            probs = torch.sigmoid(out.logits.float()).cpu().numpy()
            for i, item in enumerate(batch["items"]):
                steps = item.offset + np.arange(item.length)
                results[item.video_id] = {"scores": probs[i, : item.length], "grid": item.grid,
                                          "times": np.asarray(item.grid.index_to_seconds(steps), dtype=np.float64)}
        return results

    @classmethod
    def claims(cls, path: Path) -> bool:
        return Path(path).suffix.lower() == ".npz"

    @classmethod
    def read_predictions(cls, path: Path) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
        return read_frame_predictions(path)

    @classmethod
    def plot(cls, video_id, ground_truth, prediction, classes, out, top=30) -> Path:
        """Per-frame score curves over the ground-truth segments."""
        from ..plot import plot_frame_scores

        if prediction is None:
            raise DataError(f"video {video_id!r} has no per-frame predictions")
        return plot_frame_scores(video_id, ground_truth.get("annotations", []), prediction["scores"],
                                 prediction["times"], classes, out)

    @classmethod
    def score(cls, settings, predictions, classes, annotations, video_ids, split) -> dict[str, Any]:
        return score_frames(predictions, annotations, video_ids, classes, settings.frame_map,
                            settings.action_conditional)

    def write_predictions(self, predictions, path: Path, result: dict[str, Any] | None = None) -> list[Path]:
        """An ``.npz``: ``classes``, and per video ``{id}/scores`` ``(T, K)`` and ``{id}/times`` (s)."""
        arrays = {"classes": np.asarray(self.classes)}
        for vid, p in predictions.items():
            arrays[f"{vid}/scores"] = p["scores"].astype(np.float32)
            arrays[f"{vid}/times"] = p["times"]
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a file object: numpy would append .npz to the temporary name
                np.savez_compressed(fh, **arrays)

        replace_atomically(path, save)
        return [path]

    def write_score_store(self, predictions, path: Path) -> Path:
        """Per-frame scores as a feature store on the input's grid: ``(T, K)`` float32 per video,
        the class names in ``store.json`` (``extra.classes``), so they can be plotted, fused or
        fed to another model like any features."""
        from extract.store import StoreInfo, StoreWriter, VideoMeta

        info = StoreInfo(feature="frame-scores", dtype="float32", num_shards=max(1, min(64, len(predictions) // 64)),
                         step_shape=[len(self.classes)], extra={"classes": list(self.classes)})
        with StoreWriter(path, info) as writer:
            for vid, p in predictions.items():
                duration = self.annotations.database[vid].duration if vid in self.annotations.database else None
                writer.write(vid, p["scores"].astype(np.float32), VideoMeta(grid=p["grid"], duration=duration))
        return Path(path)

    def write_segments(self, predictions, path: Path, threshold: float, merge_gap: int = 0) -> Path:
        """Detections JSON (the ``segments`` task's format) of :func:`frames_to_segments`."""
        results = {vid: frames_to_segments(p["scores"], p["times"], self.classes, threshold, merge_gap)
                   for vid, p in predictions.items()}
        write_text_atomically(path, json.dumps({"results": results}))
        return Path(path)

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        others = ", ".join(f"{m} {100 * v:.2f}" for m, v in result.get("frame_map", {}).items()
                           if m != result.get("mode"))
        line = f"per-frame mAP {100 * result['mAP']:.2f} ({result['protocol']})" + (f"; {others}" if others else "")
        for tau, ac in result.get("action_conditional", {}).items():
            line += (f"\naction-conditional (tau={tau}, {ac['pairs']} pairs): P {100 * ac['precision']:.2f} "
                     f"R {100 * ac['recall']:.2f} F1 {100 * ac['f1']:.2f} mAP {100 * ac['mAP']:.2f}")
        return line
