"""Pieces of training and inference: splits, data loaders, optimiser groups, schedule, EMA,
checkpoints, and turning model outputs into detections in seconds."""
from __future__ import annotations

import copy
import hashlib
import math
import os
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from extract.annotations import AnnotationSet, load_annotations
from extract.store import open_store

from .config import RunConfig
from .data.dataset import DetectionDataset, collate
from .models.detector import ActionDetector
from .models.layers import AffineDropPath, LayerNorm, Scale
from .models.postprocess import fuse_class_scores


def holdout_fraction(video_id: str) -> float:
    """A stable number in [0, 1) per video: blake2b of the id."""
    return int.from_bytes(hashlib.blake2b(video_id.encode(), digest_size=8).digest(), "big") / 2 ** 64


def resolve_splits(cfg: RunConfig, annotations: AnnotationSet) -> dict[str, list[str]]:
    """Video ids of ``train``, ``val`` and ``test``. When validation draws on the training split
    (``val_holdout``), a fixed fraction of its videos (by id hash) is held out of training."""
    data, card = cfg.data, None
    if data.dataset:
        from extract.cards import load_card

        card = load_card(data.dataset)
    split = {k: getattr(data, f"{k}_split") or (card.splits[k] if card else None) for k in ("train", "val", "test")}
    holdout = data.val_holdout if data.val_holdout is not None else (card.splits.get("val_holdout") if card else None)
    if split["train"] is None:
        raise ValueError("no training split: set data.train_split or data.dataset")
    train = sorted(annotations.subset(split["train"]))
    out = {"train": train, "val": [], "test": sorted(annotations.subset(split["test"])) if split["test"] else []}
    if split["val"] == split["train"] and holdout:
        out["val"] = [v for v in train if holdout_fraction(v) < holdout]
        out["train"] = [v for v in train if holdout_fraction(v) >= holdout]
    elif split["val"]:
        out["val"] = sorted(annotations.subset(split["val"]))
    if not out["train"]:
        raise ValueError(f"no videos in training split {split['train']!r} of {data.annotations}")
    return out


def eval_protocol(cfg: RunConfig) -> tuple[list[float], bool]:
    """tIoU thresholds and whether to clean the ground truth: the config's, else the card's."""
    card = None
    if cfg.data.dataset:
        from extract.cards import load_card

        card = load_card(cfg.data.dataset)
    tiou = cfg.eval.tiou or (card.evaluation["tiou"] if card else [0.3, 0.4, 0.5, 0.6, 0.7])
    clean = cfg.eval.clean_gt if cfg.eval.clean_gt is not None else (card.evaluation.get("protocol") == "clean-gt"
                                                                     if card else True)
    return [float(t) for t in tiou], clean


def build_datasets(cfg: RunConfig) -> tuple[AnnotationSet, list[str], dict[str, DetectionDataset]]:
    annotations = load_annotations(cfg.data.annotations)
    stores = [open_store(p) for p in cfg.data.stores]
    classes = annotations.classes
    expected = 1 if cfg.data.class_agnostic else len(classes)
    if cfg.model.num_classes != expected:
        raise ValueError(f"model.num_classes is {cfg.model.num_classes} but {cfg.data.annotations} has "
                         f"{len(classes)} classes" + (" (class-agnostic training needs 1)" if cfg.data.class_agnostic else ""))
    splits = resolve_splits(cfg, annotations)
    common = dict(max_seq_len=cfg.data.max_seq_len, trunc_thresh=cfg.data.trunc_thresh,
                  crop_ratio=tuple(cfg.data.crop_ratio) if cfg.data.crop_ratio else None,
                  downsample_rate=cfg.data.downsample_rate, resize_to=cfg.data.resize_to,
                  class_agnostic=cfg.data.class_agnostic, seed=cfg.seed)
    datasets = {name: DetectionDataset(stores, annotations, ids, classes, training=name == "train", **common)
                for name, ids in splits.items() if ids}
    return annotations, classes, datasets


def make_loader(dataset: DetectionDataset, batch_size: int, *, training: bool, max_seq_len: int, multiple: int,
                workers: int, seed: int, epoch: int = 0, sampler: Any = None) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed * 1000003 + epoch) if training else None
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=training and sampler is None, sampler=sampler, generator=generator,
        num_workers=workers, drop_last=training, persistent_workers=False,
        collate_fn=partial(collate, pad_to=max_seq_len if training else None, multiple=multiple))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay for Linear/Conv weights only; biases, norms, scales, ``A_log``/``D`` not."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_weight = name == "weight" and isinstance(module, (nn.Linear, nn.Conv1d))
            flagged = getattr(p, "_no_weight_decay", False) or isinstance(module, (LayerNorm, Scale, AffineDropPath))
            (decay if is_weight and not flagged else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, warmup: int, total: int, base_lr: float, eta_min: float) -> float:
    """Multiplier for LambdaLR: linear from 0 over ``warmup`` steps, then cosine to ``eta_min``."""
    if step < warmup:
        return step / max(warmup, 1)
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return (eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * progress))) / base_lr


class ModelEma:
    """Exponential moving average of every floating-point state-dict tensor."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema, cur in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.dtype.is_floating_point:
                ema.mul_(self.decay).add_(cur.detach(), alpha=1 - self.decay)
            else:
                ema.copy_(cur)


def save_checkpoint(path: Path, **state: Any) -> None:
    """Atomic save: a reader never sees a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_class_scores(path: str | Path, classes: list[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Video-level class probabilities for score fusion: ``{"results": {video: [p, ...]},
    "class": [names]}`` (ActionFormer's external-classifier files; ``class`` defaults to the
    annotation classes)."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    names = data.get("class") or data.get("classes") or classes
    scores = {vid: torch.tensor(p, dtype=torch.float32) for vid, p in data["results"].items()}
    bad = [vid for vid, p in scores.items() if p.numel() != len(names)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} videos have {scores[bad[0]].numel()} scores for {len(names)} classes")
    return scores, list(names)


def fusion_from_config(cfg: RunConfig, classes: list[str]) -> dict[str, Any] | None:
    """The score-fusion settings :func:`predict` takes, from ``eval.ext_score_file``."""
    if not cfg.eval.ext_score_file:
        return None
    scores, names = load_class_scores(cfg.eval.ext_score_file, classes)
    return {"scores": scores, "classes": names, "topk": cfg.eval.fusion_topk, "mode": cfg.eval.fusion_mode}


@torch.no_grad()
def predict(model: ActionDetector, loader: torch.utils.data.DataLoader, classes: list[str],
            device: torch.device, amp: bool = False, fusion: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Detections of every video in ``loader``, in seconds: ``{video: [{label, score, segment}]}``.

    ``fusion`` (``scores``, ``classes``, ``topk``, ``mode``) labels class-agnostic segments with
    the video's top external classes; class-agnostic segments without it are labelled ``action``.
    """
    model.eval()
    results: dict[str, list[dict[str, Any]]] = {}
    for batch in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(batch["feats"].to(device), batch["mask"].to(device))
        for i, item in enumerate(batch["items"]):
            segs, scores, labels = (t.cpu() for t in model.detect(out, i))
            names = classes
            if model.cfg.num_classes == 1:
                names = ["action"]
                if fusion is not None:
                    if item.video_id not in fusion["scores"]:
                        raise ValueError(f"video {item.video_id!r} has no external class scores")
                    segs, scores, labels = fuse_class_scores(segs, scores, fusion["scores"][item.video_id],
                                                             fusion["topk"], fusion["mode"])
                    names = fusion["classes"]
            index = (segs.double() + item.offset) * item.downsample
            seconds = torch.as_tensor(item.grid.index_to_seconds(index.numpy())).reshape(-1, 2)
            seconds = seconds.clamp(0, item.duration)
            results[item.video_id] = [{"label": names[int(c)], "score": float(s), "segment": [float(a), float(b)]}
                                      for (a, b), s, c in zip(seconds.tolist(), scores, labels)]
    return results
