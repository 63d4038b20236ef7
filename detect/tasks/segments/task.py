"""``segments``: temporal action detection, ActionFormer style.

Targets are pyramid-point assignments (centre sampling, regression ranges); the loss is sigmoid
focal + 1-D DIoU normalised by an EMA of the positive count; inference decodes every level,
runs Gaussian Soft-NMS and converts to seconds through the grid; the metric is ActivityNet
detection mAP over the card's tIoU thresholds and protocol.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from extract.annotations import AnnotationSet
from extract.atomic import write_text_atomically

from ...data.segments import SegmentDataset, collate_segments
from ...errors import DataError
from ...metrics import evaluate_detections
from ...ops.graphed_forward import GraphedForward
from ...outputs import DetectorOutput
from .. import register_task
from ..base import Task, move_inputs, read_json
from .config import SegmentsConfig
from .losses import diou_loss_1d, sigmoid_focal_loss
from .decode import decode_batch_to_host
from .postprocess import fuse_class_scores
from .targets import assign_targets


class SegmentLoss(nn.Module):
    """Focal + DIoU losses normalised by an EMA of the positive count (updated in training; a
    buffer, so checkpoints resume it exactly)."""

    def __init__(self, settings: SegmentsConfig, num_classes: int) -> None:
        super().__init__()
        self.settings, self.num_classes = settings, num_classes
        self.register_buffer("loss_normalizer", torch.tensor(float(settings.init_loss_norm)))

    def assign(self, out: DetectorOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The batch's targets on ``out``'s points: ``gt_cls (B, P, K)``, ``gt_reg (B, P, 2)``.
        Their shapes do not depend on how many segments a video has, so a captured step can take
        them (:mod:`detect.engine.graphed_step`)."""
        points = torch.cat(out.points)
        device = points.device
        targets = [assign_targets(points, s.to(device), l.to(device), self.num_classes,
                                  self.settings.center_sample_radius) for s, l in zip(batch["segments"], batch["labels"])]
        return {"gt_cls": torch.stack([t[0] for t in targets]), "gt_reg": torch.stack([t[1] for t in targets])}

    def forward(self, out: DetectorOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The loss of ``out``, or with ``out.towers`` the sum of the towers' losses (one
        positive-count normaliser: the towers share points and targets). ``batch`` holds the
        segments and labels, or their targets already assigned (:meth:`assign`)."""
        assigned = batch if "gt_cls" in batch else self.assign(out, batch)
        gt_cls, gt_reg = assigned["gt_cls"], assigned["gt_reg"]
        valid = torch.cat(out.masks, dim=1)
        positive = valid & (gt_cls.sum(-1) > 0)
        num_pos = positive.sum()
        if self.training:
            self.loss_normalizer.mul_(0.9).add_(0.1 * num_pos.clamp(min=1).float())
        losses: dict[str, torch.Tensor] = {}
        for tower, part in enumerate(out.towers or [out]):
            cls_loss, reg_loss = self._terms(part, gt_cls, gt_reg, valid, positive)
            weight = self.settings.loss_weight
            if weight <= 0:
                weight = cls_loss.detach() / reg_loss.detach().clamp(min=0.01)
            terms = {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": cls_loss + weight * reg_loss}
            if out.towers:
                losses.update({f"tower{tower}_{k}": v for k, v in terms.items()})
            for k, v in terms.items():
                losses[k] = losses.get(k, 0) + v
        return losses

    def _terms(self, out: DetectorOutput, gt_cls, gt_reg, valid, positive):
        logits = torch.cat(out.cls_logits, dim=1).float()
        offsets = torch.cat(out.offsets, dim=1).float()
        eps = self.settings.label_smoothing
        target = gt_cls * (1 - eps) + eps / (self.num_classes + 1)
        cls_loss = sigmoid_focal_loss(logits, target, where=valid[..., None]) / self.loss_normalizer
        reg_loss = diou_loss_1d(offsets, gt_reg, where=positive) / self.loss_normalizer
        return cls_loss, reg_loss


def to_seconds(segs: torch.Tensor, item) -> torch.Tensor:
    """Level-0 grid units of ``item``'s steps -> seconds on its snippet grid, inside the video."""
    index = (segs.double() + item.offset) * item.downsample
    seconds = torch.as_tensor(item.grid.index_to_seconds(index.numpy())).reshape(-1, 2)
    return seconds.clamp(0, item.duration)


def load_class_scores(path: str | Path, classes: list[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Video-level class probabilities for score fusion: ``{"results": {video: [p, ...]},
    "class": [names]}`` (ActionFormer's external-classifier files; ``class`` defaults to the
    annotation classes)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    names = data.get("class") or data.get("classes") or classes
    scores = {vid: torch.tensor(p, dtype=torch.float32) for vid, p in data["results"].items()}
    bad = [vid for vid, p in scores.items() if p.numel() != len(names)]
    if bad:
        raise DataError(f"{path}: {len(bad)} videos have {scores[bad[0]].numel()} scores for {len(names)} classes")
    return scores, list(names)


@register_task("segments")
class SegmentsTask(Task):
    config = SegmentsConfig
    output = DetectorOutput
    card_task = "segment-detection"
    card_metric = "detection-map"
    metric = "average_mAP"
    collate_fn = staticmethod(collate_segments)
    prediction_suffix = "_detections.json"

    def num_model_classes(self) -> int:
        return 1 if self.settings.class_agnostic else len(self.classes)

    def dataset(self, video_ids: list[str], *, training: bool) -> SegmentDataset:
        s = self.settings
        return SegmentDataset(self.streams, self.annotations, video_ids, self.classes, training=training,
                              seed=self.cfg.seed, skip_corrupt=self.cfg.data.skip_corrupt,
                              max_seq_len=self.cfg.data.max_seq_len, trunc_thresh=s.trunc_thresh,
                              crop_ratio=tuple(s.crop_ratio) if s.crop_ratio else None,
                              downsample_rate=s.downsample_rate, resize_to=s.resize_to,
                              class_agnostic=s.class_agnostic)

    def criterion(self, model: nn.Module) -> nn.Module:
        return SegmentLoss(self.settings, model.cfg.num_classes)

    def fusion(self) -> dict[str, Any] | None:
        """Score fusion settings from ``ext_score_file`` (class-agnostic models)."""
        s = self.settings
        if not s.ext_score_file:
            return None
        scores, names = load_class_scores(s.ext_score_file, self.classes)
        return {"scores": scores, "classes": names, "topk": s.fusion_topk, "mode": s.fusion_mode}

    @torch.no_grad()
    def predict(self, model, loader, device, amp=False) -> dict[str, list[dict[str, Any]]]:
        """Detections in seconds: ``{video: [{label, score, segment}]}``. Class-agnostic segments
        take the video's top external classes (``ext_score_file``), else the label ``action``."""
        model.eval()
        forward = GraphedForward(model)
        fusion = self.fusion()
        pp = self.settings.postprocess
        results: dict[str, list[dict[str, Any]]] = {}
        for batch in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = forward(**move_inputs(batch, device))
            for item, (segs, scores, labels) in zip(batch["items"], decode_batch_to_host(out, pp)):
                names = self.classes
                if model.cfg.num_classes == 1 and len(self.classes) > 1:  # class-agnostic; one real class keeps its name
                    names = ["action"]
                    if fusion is not None:
                        if item.video_id not in fusion["scores"]:
                            raise DataError(f"video {item.video_id!r} has no external class scores")
                        segs, scores, labels = fuse_class_scores(segs, scores, fusion["scores"][item.video_id],
                                                                 fusion["topk"], fusion["mode"])
                        names = fusion["classes"]
                seconds = to_seconds(segs, item)
                results[item.video_id] = [{"label": names[int(c)], "score": float(s), "segment": [float(a), float(b)]}
                                          for (a, b), s, c in zip(seconds.tolist(), scores, labels)]
        return results

    def evaluate(self, predictions, video_ids, split) -> dict[str, Any]:
        """Scored on ``video_ids`` only; a class-agnostic model without external classes is
        scored as proposals (every label ``action``)."""
        s = self.settings
        agnostic = self.cfg.model.num_classes == 1 and len(self.classes) > 1 and not s.ext_score_file

        def entry(v):  # the split's videos under the split's name (a held-out part of train included)
            anns = [dataclasses.replace(a, label="action", label_id=0) for a in v.annotations] if agnostic else v.annotations
            return dataclasses.replace(v, subset=split, annotations=anns)

        only = AnnotationSet({vid: entry(self.annotations.database[vid]) for vid in video_ids},
                             ["action"] if agnostic else self.classes)
        result = self.score(s, predictions, None, only, video_ids, split)
        result["protocol"] += ("; class-agnostic (no ext_score_file)" if agnostic else
                               f"; fused with {s.ext_score_file} ({s.fusion_mode})" if s.ext_score_file else "")
        return result

    @classmethod
    def claims(cls, path: Path) -> bool:
        """A detections JSON: ``{"results": {video: [...]}}`` or the bare mapping."""
        if Path(path).suffix.lower() != ".json":
            return False
        results = _results(path)
        return all(isinstance(v, list) for v in results.values())

    @classmethod
    def read_predictions(cls, path: Path) -> tuple[dict[str, Any], None]:
        return _checked_results(path), None

    @classmethod
    def score(cls, settings, predictions, classes, annotations, video_ids, split) -> dict[str, Any]:
        """ActivityNet detection mAP at ``settings.tiou`` (ground truth cleaned with
        ``settings.clean_gt``); labels are matched by name, so ``classes`` is not needed."""
        import warnings

        database = {vid: v.to_dict() for vid, v in annotations.database.items()}
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            result = evaluate_detections(database, predictions, split, settings.tiou, clean_gt=settings.clean_gt,
                                         restrict_to_subset=settings.restrict_to_subset)
        out = result.to_json()
        return {"average_mAP": result.average, "mAP": out["mAP"], "protocol": result.protocol,
                "per_class_ap": out["per_class_ap"], "notes": list(result.notes)}

    @classmethod
    def plot(cls, video_id, ground_truth, prediction, classes, out, top=30) -> Path:
        """Ground truth and the ``top`` best detections on a timeline, one row per class."""
        from ...plot import plot_timeline

        return plot_timeline(video_id, ground_truth.get("annotations", []), prediction or [], out,
                             ground_truth.get("duration"), top)

    def write_predictions(self, predictions, path: Path, result: dict[str, Any] | None = None) -> list[Path]:
        """ActivityNet result format: ``{"results": {video: [{label, score, segment}]}}``."""
        write_text_atomically(path, json.dumps({"results": predictions}))
        return [path]

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        per = "  ".join(f"@{k} {100 * v:.2f}" for k, v in result["mAP"].items())
        return f"average mAP {100 * result['average_mAP']:.2f}  ({per}; {result['protocol']})"

    @classmethod
    def report(cls, result: dict[str, Any]) -> str:
        """Per-class AP at every threshold, then the mAP row."""
        tiou = list(result["mAP"])
        lines = [f"protocol: {result['protocol']}; {len(result['per_class_ap'])} classes",
                 "class".ljust(28) + "".join(f"{float(t):>8.2f}" for t in tiou)]
        for name, aps in result["per_class_ap"].items():
            lines.append(name[:27].ljust(28) + "".join(f"{100 * ap:8.2f}" for ap in aps))
        lines.append("mAP".ljust(28) + "".join(f"{100 * result['mAP'][t]:8.2f}" for t in tiou)
                     + f"   average {100 * result['average_mAP']:.2f}")
        return "\n".join(lines)


def _results(path: Path) -> dict[str, Any]:
    data = read_json(path)
    results = data.get("results", data) if isinstance(data, dict) else data
    if not isinstance(results, dict):
        raise DataError(f"{path}: expected {{\"results\": {{video: [detections]}}}}, got a {type(results).__name__}")
    return results


def _checked_results(path: Path) -> dict[str, Any]:
    """The ``results`` of a detections file, each detection checked: a ``label`` string, a
    finite ``score`` and a ``segment`` of two finite times with start <= end."""
    results = _results(path)
    for vid, detections in results.items():
        if not isinstance(detections, list):
            raise DataError(f"{path}: video {vid!r}: expected a list of detections, got a {type(detections).__name__}")
        for i, det in enumerate(detections):
            problem = _detection_problem(det)
            if problem:
                raise DataError(f"{path}: video {vid!r}, detection {i}: {problem}")
    return results


def _detection_problem(det: Any) -> str | None:
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    if not isinstance(det, dict):
        return f"expected an object with label, score and segment, got {det!r}"
    if not isinstance(det.get("label"), str):
        return f"'label' must be a class name, got {det.get('label')!r}"
    if not number(det.get("score")):
        return f"'score' must be a finite number, got {det.get('score')!r}"
    seg = det.get("segment")
    if not (isinstance(seg, list) and len(seg) == 2 and all(number(t) for t in seg)):
        return f"'segment' must be [start, end] in seconds, got {seg!r}"
    if seg[0] > seg[1]:
        return f"'segment' ends before it starts: {seg!r}"
    return None
