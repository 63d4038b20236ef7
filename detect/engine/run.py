"""A run's pieces, task-agnostic: task, splits and datasets from a config; a trained model from
a checkpoint; one split evaluated. The trainer and the CLI's ``eval``/``infer`` use these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from extract.annotations import AnnotationSet, VideoAnnotations, load_annotations

from ..config import RunConfig, load_config, task_name
from ..data.splits import resolve_splits
from ..data.streams import StreamSet
from ..models import create_model
from ..tasks import Task, get_task
from .checkpoint import load_checkpoint, resolve_checkpoint


@dataclass
class Run:
    cfg: RunConfig
    task: Task
    splits: dict[str, list[str]]        # train / val / test video ids (empty lists allowed)

    def dataset(self, split: str, training: bool = False):
        return self.task.dataset(self.splits[split], training=training)


def prepare(cfg: RunConfig) -> Run:
    """Annotations, streams, the task and its splits."""
    annotations = load_annotations(cfg.data.annotations)
    streams = StreamSet.open(cfg.data.streams)
    task = get_task(task_name(cfg))(cfg, annotations, streams)
    return Run(cfg, task, resolve_splits(cfg.data, annotations))


def use_amp(cfg: RunConfig, device: torch.device) -> bool:
    if cfg.optim.amp not in ("bf16", "none"):
        raise ValueError(f"optim.amp must be 'bf16' or 'none', got {cfg.optim.amp!r}")
    return cfg.optim.amp == "bf16" and device.type == "cuda"


def predict_videos(model: nn.Module, run: Run, video_ids: list[str], device: torch.device,
                   dataset=None) -> dict[str, Any]:
    """The task's predictions of ``model`` for ``video_ids`` (whole videos, no crops)."""
    task, cfg = run.task, run.cfg
    dataset = dataset or task.dataset(video_ids, training=False)
    loader = task.loader(dataset, cfg.eval.batch_size, training=False, multiple=length_multiple(model))
    return task.predict(model, loader, device, amp=use_amp(cfg, device))


def evaluate_split(model: nn.Module, run: Run, video_ids: list[str], split: str, device: torch.device,
                   dataset=None) -> dict[str, Any]:
    """Predictions of ``model`` on ``video_ids`` and their score (``predictions`` included)."""
    predictions = predict_videos(model, run, video_ids, device, dataset)
    return {**run.task.evaluate(predictions, video_ids, split), "predictions": predictions}


def length_multiple(model: nn.Module) -> int:
    """Inputs are padded to a multiple of this (a detector's largest stride; else 1)."""
    return getattr(model, "length_multiple", 1)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_trained(checkpoint: str, overrides: list[str] = ()) -> tuple[RunConfig, nn.Module, dict[str, Any]]:
    """The config (with ``key=value`` overrides), the model with the checkpoint's (EMA) weights,
    strictly loaded, and the checkpoint's other fields."""
    state = load_checkpoint(resolve_checkpoint(checkpoint))
    cfg = load_config(None, overrides, base=state["config"])
    model = create_model(cfg.model)
    model.load_state_dict(state.get("ema", state["model"]))
    return cfg, model, state


def inference_run(cfg: RunConfig, stores: list[str] | None = None, annotations: str | None = None) -> Run:
    """A run over every video of ``stores`` (default: the config's ``features`` stream), with the
    training's class list; durations from ``annotations`` where known, else from the grid."""
    if stores:
        if len(cfg.data.streams) != 1:
            raise ValueError(f"--store replaces a single stream; this model reads {sorted(cfg.data.streams)}")
        cfg.data.streams = {next(iter(cfg.data.streams)): list(stores)}
    streams = StreamSet.open(cfg.data.streams)
    known = load_annotations(annotations or cfg.data.annotations)
    ids = streams.ids
    database = {vid: known.database.get(vid) or VideoAnnotations(subset="", duration=None, fps=None) for vid in ids}
    task = get_task(task_name(cfg))(cfg, AnnotationSet(database, known.classes), streams)
    return Run(cfg, task, {"all": ids})
