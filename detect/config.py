"""Run configs: YAML files mapped onto typed dataclasses, with ``key=value`` overrides.

``model.name`` picks a registered model and with it the dataclass the rest of ``model`` must
fit (:mod:`detect.models`); ``data.streams`` names the stores each input stream reads; the
dataset card's ``task`` (or ``data.task``) picks the task, and a model that does not solve it
is an error here. Every key must exist in the dataclasses: a misspelt or unused key is an
error, never silently ignored. Overrides use dotted paths and YAML values: ``optim.lr=2e-4``,
``model.backbone.drop_path=0.2``, ``data.streams.features=[a,b]``.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from extract.registry import RegistryError

from .errors import ConfigError
from .models import model_entry


def _at_least(cfg: Any, **bounds: float) -> None:
    for name, low in bounds.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be at least {low}, got {getattr(cfg, name)}")


@dataclass
class DataConfig:
    streams: dict[str, list[str]]           # stream name -> stores (features of several are concatenated)
    annotations: str
    dataset: str | None = None              # card id: task, default splits, evaluation protocol
    task: str | None = None                 # None: the card's, else the model's
    train_split: str | None = None          # None: the card's
    val_split: str | None = None
    val_holdout: float | None = None        # validate on this fraction of train_split (fixed by video id)
    test_split: str | None = None
    max_seq_len: int = 2304
    trunc_thresh: float = 0.5
    crop_ratio: list[float] | None = field(default_factory=lambda: [0.9, 1.0])
    downsample_rate: int = 1
    resize_to: int | None = None            # linearly resize every video to this many steps (ActivityNet: 192)
    class_agnostic: bool = False            # one "action" class; names come from eval.ext_score_file
    classes: list[str] | None = None        # keep only these classes (training and evaluation), e.g. [AllTime]
    num_workers: int = 4
    skip_corrupt: bool = False              # training replaces a video failing its checksum by the next, loudly

    def __post_init__(self) -> None:
        example = "e.g. streams: {features: [stores/rgb, stores/flow]}"
        if not isinstance(self.streams, dict) or not self.streams:
            raise ValueError(f"streams must map stream names to stores, {example}")
        streams = {}
        for name, paths in self.streams.items():
            paths = [paths] if isinstance(paths, str) else paths
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
                raise ValueError(f"streams.{name} must be a store path or a list of them, got {paths!r} ({example})")
            streams[name] = list(paths)
        self.streams = streams
        _at_least(self, max_seq_len=1, num_workers=0, downsample_rate=1)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.05
    epochs: int = 35                        # epochs that run, warm-up included
    warmup_epochs: int = 5                  # linear warm-up, then cosine decay over the rest
    eta_min: float = 1e-8
    batch_size: int = 2
    accumulate: int = 1                     # micro-batches per optimiser step
    clip_grad: float = 1.0
    ema_decay: float = 0.999
    amp: str = "bf16"                       # bf16 autocast on CUDA; "none" for fp32

    def __post_init__(self) -> None:
        _at_least(self, epochs=1, warmup_epochs=0, batch_size=1, accumulate=1, clip_grad=0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs}), "
                             f"which counts them")
        if not self.lr > 0 or not 0 <= self.ema_decay < 1:
            raise ValueError(f"need lr > 0 and 0 <= ema_decay < 1, got lr={self.lr}, ema_decay={self.ema_decay}")
        if self.amp not in ("bf16", "none"):
            raise ValueError(f"amp must be 'bf16' or 'none', got {self.amp!r}")


@dataclass
class EvalConfig:
    tiou: list[float] | None = None         # segments: None is the card's
    clean_gt: bool | None = None            # None: the card's protocol
    every: int = 1
    start_epoch: int = 0
    batch_size: int = 4
    ext_score_file: str | None = None       # video-level class probabilities to label class-agnostic segments
    fusion_topk: int = 2
    fusion_mode: str = "sqrt"               # sqrt(p_cls * p_seg) (ActionMamba) or product (ActionFormer)
    frame_map: str | None = None            # dense: "full" or "sampled-25"; None is the card's mode
    aux_weight: float = 0.5                 # dense: weight of each deep-supervision output's loss
    action_conditional: list[int] = field(default_factory=list)  # dense: MLAD offsets tau, e.g. [0, 20, 40]
    label_smoothing: float = 0.0            # clips: cross-entropy label smoothing

    def __post_init__(self) -> None:
        _at_least(self, every=1, batch_size=1, fusion_topk=1, aux_weight=0, label_smoothing=0)
        if self.frame_map not in (None, "full", "sampled-25"):
            raise ValueError(f"frame_map must be 'full' or 'sampled-25', got {self.frame_map!r}")
        if self.fusion_mode not in ("sqrt", "product"):
            raise ValueError(f"fusion_mode must be 'sqrt' or 'product', got {self.fusion_mode!r}")


@dataclass
class RunConfig:
    model: Any                              # the registered model's config dataclass (model.name)
    data: DataConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: str = "runs/default"
    seed: int = 0
    log_every: int = 20


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """YAML 1.1 reads ``1e-4`` as a string: convert numbers (and lists of them) per the type hint."""
    if isinstance(value, str):
        for kind in (int, float):
            if hint is kind or kind in typing.get_args(hint):
                try:
                    return kind(value) if kind is float else int(value)
                except ValueError:
                    if kind is float or float not in typing.get_args(hint):
                        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        return value
    if isinstance(value, list):
        args = [a for a in typing.get_args(hint) if typing.get_origin(a) in (list, tuple)] or [hint]
        inner = typing.get_args(args[0])
        if inner and inner[0] in (int, float):
            return [_coerce(inner[0], v, where) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and (hint is float or float in typing.get_args(hint)):
        return float(value)
    return value


_SCALARS = (bool, int, float, str)


def _check_type(hint: Any, value: Any, where: str) -> None:
    """Scalars (and lists of them) must have their field's type: ``epochs: 2.5`` is an error, not
    2.5 epochs; a field's other types (dicts, nested tuples) are checked by their class."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) not in options and any(o in _SCALARS for o in options):
            raise ConfigError(f"{where}: a value is required")
        return
    scalars = [o for o in options if o in _SCALARS]
    lists = [typing.get_args(o)[0] for o in options if typing.get_origin(o) is list and typing.get_args(o)
             and typing.get_args(o)[0] in _SCALARS]
    if isinstance(value, list) and lists:
        for item in value:
            _check_type(lists[0], item, where)
        return
    if not scalars or len(scalars) + len(lists) < len([o for o in options if o is not type(None)]):
        return
    ok = any(isinstance(value, kind) and not (kind is int and isinstance(value, bool)) for kind in scalars)
    if not ok:
        names = " or ".join(k.__name__ for k in scalars) + (" or a list" if lists else "")
        raise ConfigError(f"{where}: expected {names}, got {value!r}")


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    if not dataclasses.is_dataclass(cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown keys {sorted(unknown)} (known: {sorted(names)})")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if cls is RunConfig and name == "model":
            hint = _model_class(value)
        target = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
        at = f"{where}.{name}".lstrip(".")
        if dataclasses.is_dataclass(target):
            kwargs[name] = _build(target, value, at)
        else:
            kwargs[name] = _coerce(hint, value, at)
            _check_type(hint, kwargs[name], at)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None


OLD_BACKBONES = {"transformer": "actionformer", "mamba-dbm": "actionmamba-dbm", "mamba-vim": "actionmamba-vim",
                 "conv": "actionformer-conv"}


def _model_class(section: Any) -> type:
    """The config dataclass of the model that ``section`` names."""
    if not isinstance(section, dict):
        raise ConfigError(f"model: expected a mapping, got {section!r}")
    if "name" not in section:
        raise ConfigError("model.name is missing (see `python -m detect models`)")
    try:
        return model_entry(section["name"]).config
    except RegistryError as exc:
        raise ConfigError(f"model.name: {exc}") from None


def _check_layout(data: dict[str, Any]) -> None:
    """Refuse a config of the layout before the model registry, saying what to change."""
    model, section = data.get("model"), data.get("data")
    backbone = model.get("backbone") if isinstance(model, dict) else None
    old = backbone.get("name") if isinstance(backbone, dict) and "name" not in model else None
    stores = isinstance(section, dict) and "stores" in section
    if not old and not stores:
        return
    edits = []
    if old:
        edits.append(f"replace model.backbone.name: {old} by model.name: {OLD_BACKBONES.get(old, '...')} and move "
                     f"model.backbone.mamba.* up into model.backbone")
    if stores:
        edits.append("write data.stores: [...] as data.streams: {features: [...]} (stores of one stream are "
                     "concatenated on channels)")
    raise ConfigError(f"this config has the layout before the model registry: {'; '.join(edits)}. A checkpoint of "
                      f"that layout converts with `python -m detect upgrade OLD.pt NEW.pt`")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return data


def load_config(path: str | Path | None, overrides: list[str] = (), base: dict[str, Any] | None = None) -> RunConfig:
    """A :class:`RunConfig` from a YAML file (or ``base``), with ``key=value`` overrides."""
    data = dict(base or {})
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    data = apply_overrides(data, list(overrides))
    _check_layout(data)
    cfg = _build(RunConfig, data, "")
    check_task(cfg)
    return cfg


def task_name(cfg: RunConfig) -> str:
    """The run's task: ``data.task``, else the dataset card's, else the model's."""
    if cfg.data.task:
        return cfg.data.task
    if cfg.data.dataset:
        from extract.cards import load_card

        from .tasks import task_for_card

        return task_for_card(load_card(cfg.data.dataset).task)
    return model_entry(cfg.model.name).task


def check_task(cfg: RunConfig) -> None:
    """The model must solve the run's task and find the streams it reads; options of other
    tasks must keep their defaults (they would be silently ignored)."""
    from .tasks import TASKS

    entry, task = model_entry(cfg.model.name), task_name(cfg)
    if task not in TASKS:
        raise ConfigError(f"data.task: unknown task {task!r}; known: {', '.join(TASKS)}")
    if entry.task != task:
        source = f"dataset {cfg.data.dataset!r}" if cfg.data.dataset and not cfg.data.task else "data.task"
        raise ConfigError(f"model {entry.name!r} solves the {entry.task!r} task, but {source} is a {task!r} task")
    missing = [s for s in entry.streams if s not in cfg.data.streams]
    if missing:
        raise ConfigError(f"model {entry.name!r} reads streams {list(entry.streams)}, but data.streams has no "
                          f"{missing} (it has {sorted(cfg.data.streams)})")
    defaults = {"data": DataConfig(streams={"x": ["x"]}, annotations=""), "eval": EvalConfig()}
    for other, task_class in TASKS.items():
        for key in sorted(task_class.options - TASKS.get(task).options):
            section, name = key.split(".")
            if getattr(getattr(cfg, section), name) != getattr(defaults[section], name):
                raise ConfigError(f"{key} applies to the {other!r} task only; this run is a {task!r} task")


def to_dict(cfg: Any) -> Any:
    return dataclasses.asdict(cfg)
