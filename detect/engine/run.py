"""A run's pieces, task-agnostic: task, splits and datasets from a config; a trained model from
a checkpoint; one split evaluated. The trainer and the CLI's ``eval``/``infer`` use these."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from extract.annotations import AnnotationSet, VideoAnnotations, load_annotations

from ..config import RunConfig, load_config
from ..errors import CheckpointError, ConfigError, DataError, DetectError
from ..data.splits import resolve_splits
from ..data.streams import StreamSet
from ..models import create_model, model_entry
from ..tasks import Task, get_task
from .checkpoint import load_checkpoint, resolve_checkpoint


@dataclass
class Run:
    cfg: RunConfig
    task: Task
    splits: dict[str, list[str]]        # train / val / test video ids (empty lists allowed)

    def dataset(self, split: str, training: bool = False):
        return self.task.dataset(self.splits[split], training=training)

    def video_ids(self, split: str) -> list[str]:
        """The videos of ``split``; a split without videos is an error listing those with some."""
        if not self.splits.get(split):
            raise DataError(f"split {split!r} of {self.cfg.data.annotations} has no videos "
                            f"(have {sorted(k for k, v in self.splits.items() if v)})")
        return self.splits[split]


class AnnotationCheckError(DetectError):
    """The run's annotations fail ``extract annotations check``; the message quotes its findings."""


def check_annotations(cfg: RunConfig, annotations: AnnotationSet, video_ids: set[str], card_task: str) -> None:
    """``extract annotations check`` on the run's videos; its errors stop the run."""
    from extract.annotations.check import check

    classes = cfg.data.card_classes
    used = AnnotationSet({vid: annotations.database[vid] for vid in sorted(video_ids)}, annotations.classes)
    errors = [str(f) for f in check(used, classes=classes, task=card_task) if f.level == "error"]
    if errors:
        shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise AnnotationCheckError(f"{cfg.data.annotations}: {len(errors)} errors, as `python -m extract annotations "
                                   f"check {cfg.data.annotations}` reports them: {shown}")


def prepare(cfg: RunConfig) -> Run:
    """Annotations (checked), streams, the task and its splits."""
    annotations = load_annotations(cfg.data.annotations)
    streams = StreamSet.open(cfg.data.streams)
    task = get_task(cfg.task.name)(cfg, annotations, streams)
    splits = resolve_splits(cfg.data, annotations)
    check_annotations(cfg, annotations, set().union(*splits.values()), task.card_task)
    check_stream_shapes(cfg, streams, next(ids[0] for ids in splits.values() if ids))
    return Run(cfg, task, splits)


def check_stream_shapes(cfg: RunConfig, streams: StreamSet, vid: str) -> None:
    """What the model reads against what the stores hold (video ``vid``): one step's rank, size
    and channels of every stream the model declares, and its dtype where declared, before any
    model runs; a config error naming the stream, its stores, the expected and the found."""
    expected = model_entry(cfg.model.name).input_shapes
    if expected is None:
        return
    streams.require([vid])
    found = streams.step_shapes(vid)
    for stream, (key, shape, *dtype) in expected(cfg.model).items():
        if stream not in found:
            continue
        stores = ", ".join(str(s.path) for s in streams.stores[stream])
        held = sorted({s.info.dtype for s in streams.stores[stream]})
        if dtype and held != dtype:
            raise ConfigError(f"stream {stream!r} ({stores}) holds {', '.join(held)}, but {cfg.model.name} reads "
                              f"{dtype[0]} (e.g. `extract clip-frames` stores)")
        if len(found[stream]) == len(shape) and all(e is None or e == f for e, f in zip(shape, found[stream])):
            continue
        if len(shape) == 1 and len(found[stream]) == 1:
            raise ConfigError(f"{key} is {shape[0]}, but stream {stream!r} ({stores}) has {found[stream][0]} channels")
        wanted = "(" + ", ".join("any" if e is None else str(e) for e in shape) + ("," if len(shape) == 1 else "") + ")"
        raise ConfigError(f"stream {stream!r} ({stores}): one step is {tuple(found[stream])}, but {cfg.model.name} "
                          f"reads {wanted} ({key}; a per-frame store is cut into the features' windows)")


def use_amp(cfg: RunConfig, device: torch.device) -> bool:
    """bf16 autocast: asked for (``optim.amp``, validated by its config) and on a GPU."""
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


def default_device(name: str | None = None) -> torch.device:
    """``name`` (``--device``: cuda, cuda:N, cpu) as a device that exists here; default the GPU if any."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device (cuda, cuda:N or cpu)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA GPU is visible here")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: only cpu and cuda run the models")
    return device


def build_model(cfg: RunConfig) -> nn.Module:
    """The config's model; a configuration it cannot be built with is a config error."""
    try:
        return create_model(cfg.model)
    except ValueError as exc:
        raise ConfigError(f"model {cfg.model.name!r}: {exc}") from None


def load_trained(checkpoint: str, overrides: list[str] = ()) -> tuple[RunConfig, nn.Module, dict[str, Any]]:
    """The config (with ``key=value`` overrides), the model with the checkpoint's (EMA) weights,
    strictly loaded, and the checkpoint's other fields."""
    state = load_checkpoint(resolve_checkpoint(checkpoint))
    cfg = load_config(None, overrides, base=state["config"])
    cfg.data.trained_classes = state.get("classes")  # outputs are these classes, whatever annotations come
    model = build_model(cfg)
    try:
        model.load_state_dict(state.get("ema", state["model"]))
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint}: its weights do not fit its config's model: "
                              f"{str(exc).splitlines()[0]}") from None
    return cfg, model, state


def inference_run(cfg: RunConfig, stores: list[str] | None = None, annotations: str | None = None,
                  split: str = "test") -> Run:
    """A run for inference: the config's ``split`` (``train``, ``val``, ``test``: the videos that
    training evaluated) or ``all`` videos of ``stores`` (default: the config's ``features``
    stream), with the training's class list; durations from ``annotations`` where known, else
    from the grid."""
    if stores:
        if len(cfg.data.streams) != 1:
            raise ConfigError(f"--store replaces a single stream; this model reads {sorted(cfg.data.streams)}")
        cfg.data.streams = {next(iter(cfg.data.streams)): list(stores)}
    streams = StreamSet.open(cfg.data.streams)
    cfg.data.annotations = str(annotations or cfg.data.annotations)  # messages name the file in use
    known = load_annotations(cfg.data.annotations)
    if split == "all":
        ids = streams.ids
        database = {vid: known.database.get(vid) or VideoAnnotations(subset="", duration=None, fps=None)
                    for vid in ids}
        task = get_task(cfg.task.name)(cfg, AnnotationSet(database, known.classes), streams)
        if ids:
            check_stream_shapes(cfg, streams, ids[0])
        return Run(cfg, task, {"all": ids})
    run = Run(cfg, get_task(cfg.task.name)(cfg, known, streams), resolve_splits(cfg.data, known))
    check_stream_shapes(cfg, streams, run.video_ids(split)[0])  # no videos, or the wrong shapes: before any model runs
    return run