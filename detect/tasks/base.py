"""What a task provides to the task-agnostic engine.

A task owns the path from a video's streams to a number: its dataset and collate (targets on
the grid), its loss, how raw outputs become predictions, and the metric that selects models.
The engine (:mod:`detect.engine.trainer`) only calls the methods below.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from extract.annotations import AnnotationSet

from ..data.streams import StreamDataset, StreamSet
from ..data.workers import loader_workers
from ..errors import ConfigError, DataError, DetectError


def read_json(path: Path) -> Any:
    """A JSON file (treat it as read-only); unreadable or invalid is a :class:`DataError` naming
    it. The last file read is kept while it is unchanged: telling a predictions file's task
    (:meth:`Task.claims`) and scoring it would otherwise parse a large detections file thrice."""
    try:
        stat = Path(path).stat()
        return _parsed(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None


@lru_cache(maxsize=1)
def _parsed(path: str, mtime_ns: int, size: int) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def keep_classes(annotations: AnnotationSet, keep: list[str], source: str) -> AnnotationSet:
    """``annotations`` with only the ``keep`` classes, in that order (``data.classes``)."""
    unknown = [c for c in keep if c not in annotations.classes]
    if unknown:
        raise ConfigError(f"data.classes: {unknown} are not classes of {source} ({', '.join(annotations.classes)})")
    database = {vid: dataclasses.replace(v, annotations=[dataclasses.replace(a, label_id=keep.index(a.label))
                                                         for a in v.annotations if a.label in keep])
                for vid, v in annotations.database.items()}
    return AnnotationSet(database, list(keep))


def match_trained_classes(annotations: AnnotationSet, trained: list[str], source: str) -> AnnotationSet:
    """``annotations`` with the classes of a trained checkpoint, in the checkpoint's order: the
    model's output ``k`` is class ``trained[k]`` whatever order ``source`` lists them in (a
    warning says so); a different set of classes is a :class:`ConfigError` naming the difference."""
    missing = [c for c in trained if c not in annotations.classes]
    extra = [c for c in annotations.classes if c not in trained]
    if missing or extra:
        parts = ([f"{len(missing)} of the checkpoint's classes are not in it: {missing[:5]}"] if missing else []) + \
                ([f"{len(extra)} of its classes are not the checkpoint's: {extra[:5]}"] if extra else [])
        raise ConfigError(f"{source} does not have the classes the checkpoint was trained on: {'; '.join(parts)}")
    if list(annotations.classes) != list(trained):
        warnings.warn(f"{source} lists the checkpoint's {len(trained)} classes in another order; they are matched "
                      f"by name", stacklevel=2)
        return keep_classes(annotations, list(trained), source)
    return annotations


class Task:
    """A task, registered in :data:`detect.tasks.TASKS` (which sets ``name``). Its settings are
    the dataclass ``config``: a run's ``task:`` section (:attr:`settings`), which
    :func:`detect.config.load_config` fills from the dataset card through the config's
    ``card_defaults(evaluation) -> dict`` static method. Models that return ``output`` solve it."""

    name: ClassVar[str]                   # set by the registry
    config: ClassVar[type]                # the ``task:`` section's dataclass
    output: ClassVar[type]                # what its models return (detect.outputs)
    model_fields: ClassVar[tuple[str, ...]] = ("num_classes",)  # model config fields the task reads
    card_task: ClassVar[str]              # the dataset cards' name of the task
    card_metric: ClassVar[str]            # the metric such a card names in ``evaluation.metric``
    metric: ClassVar[str]                 # key of :meth:`evaluate`'s result that selects models; higher is better
    collate_fn: ClassVar[Callable]        # ``(items, pad_to, multiple) -> batch``, batch["inputs"] feeds the model
    prediction_suffix: ClassVar[str]      # predictions of split s are written to ``{s}{suffix}``

    def __init__(self, cfg, annotations: AnnotationSet, streams: StreamSet) -> None:
        if cfg.data.classes:
            annotations = keep_classes(annotations, cfg.data.classes, cfg.data.annotations)
        if cfg.data.trained_classes:
            annotations = match_trained_classes(annotations, cfg.data.trained_classes, cfg.data.annotations)
        self.cfg, self.annotations, self.streams = cfg, annotations, streams
        self.settings = cfg.task
        self.classes = list(annotations.classes)
        expected = self.num_model_classes()
        if cfg.model.num_classes != expected:
            raise ConfigError(f"model.num_classes is {cfg.model.num_classes} but the {self.name!r} task on "
                             f"{cfg.data.annotations} needs {expected}")

    def num_model_classes(self) -> int:
        return len(self.classes)

    # data
    def dataset(self, video_ids: list[str], *, training: bool) -> StreamDataset:
        raise NotImplementedError

    def loader(self, dataset: StreamDataset, batch_size: int, *, training: bool, multiple: int = 1, epoch: int = 0,
               sampler: Any = None) -> torch.utils.data.DataLoader:
        """Batches of ``dataset``; training ones padded to ``data.max_seq_len``, shuffled by a
        generator seeded per epoch (reproducible and resumable); inference ones of videos of
        similar length (sorted by length), so a batch pads little (outputs do not depend on the
        batch: padding is exact)."""
        generator = torch.Generator().manual_seed(self.cfg.seed * 1000003 + epoch) if training else None
        pad_to = self.cfg.data.max_seq_len if training else None
        if not training and sampler is None and batch_size > 1 and hasattr(dataset, "steps"):
            sampler = sorted(range(len(dataset)), key=dataset.steps)
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=training and sampler is None, sampler=sampler,
            generator=generator, num_workers=loader_workers(self.cfg.data.num_workers), drop_last=training,
            collate_fn=partial(type(self).collate_fn, pad_to=pad_to, multiple=multiple))

    # training
    def criterion(self, model: nn.Module) -> nn.Module:
        """``criterion(outputs, batch) -> {"final_loss": ..., ...}``; its state is checkpointed."""
        raise NotImplementedError

    # inference and evaluation
    def predict(self, model: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device,
                amp: bool = False) -> dict[str, Any]:
        """Predictions per video id, in the task's output format."""
        raise NotImplementedError

    def evaluate(self, predictions: dict[str, Any], video_ids: list[str], split: str) -> dict[str, Any]:
        """Scores of ``predictions`` against the annotations of ``video_ids``: ``self.metric``,
        ``protocol`` and whatever else the task reports."""
        return self.score(self.settings, predictions, self.classes, self.annotations, video_ids, split)

    def write_predictions(self, predictions: dict[str, Any], path: Path,
                          result: dict[str, Any] | None = None) -> list[Path]:
        """Save ``predictions`` to ``path`` (and plots of their evaluation ``result`` beside it);
        returns the files written."""
        raise NotImplementedError

    # prediction files (``detect evaluate``, ``detect plot``): no run, only the task's settings
    @classmethod
    def claims(cls, path: Path) -> bool:
        """Whether ``path`` looks like this task's predictions file (when no card says the task)."""
        return Path(path).name.endswith(cls.prediction_suffix)

    @classmethod
    def read_predictions(cls, path: Path) -> tuple[dict[str, Any], list[str] | None]:
        """What :meth:`write_predictions` wrote: predictions per video and the class names
        (None where the format has none); a bad file is a :class:`DataError` naming it."""
        raise NotImplementedError

    @classmethod
    def score(cls, settings: Any, predictions: dict[str, Any], classes: list[str] | None,
              annotations: AnnotationSet, video_ids: list[str], split: str) -> dict[str, Any]:
        """Scores of ``predictions`` (class names ``classes``) against ``annotations`` of
        ``video_ids``, under the task's ``settings``: ``cls.metric``, ``protocol`` and the rest."""
        raise NotImplementedError

    @classmethod
    def plot(cls, video_id: str, ground_truth: dict[str, Any], prediction: Any, classes: list[str] | None,
             out: Path, top: int = 30) -> Path:
        """A picture of one video's ``prediction`` (None: the video has none) over its
        ``ground_truth`` (its annotation entry, ``{}`` if unannotated); ``detect plot``."""
        raise DetectError(f"the {cls.name!r} task draws no per-video plot")

    @classmethod
    def report(cls, result: dict[str, Any]) -> str:
        """What ``detect evaluate`` prints: the headline unless the task shows more."""
        return cls.headline(result)

    @classmethod
    def headline(cls, result: dict[str, Any]) -> str:
        """One line for people: the metric and its protocol."""
        return f"{cls.metric} {100 * result[cls.metric]:.2f} ({result['protocol']})"


def move_inputs(batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """The model's keyword arguments: the padded streams and ``mask``, on ``device``."""
    return {k: v.to(device, non_blocking=True) for k, v in batch["inputs"].items()}
