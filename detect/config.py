"""Run configs: YAML files mapped onto typed dataclasses, with ``key=value`` overrides.

``model.name`` picks a registered model and with it the dataclass the rest of ``model`` must
fit (:mod:`detect.models`); ``task.name`` (default: the dataset card's task, else the model's)
picks the task and with it the dataclass of the ``task:`` section (:mod:`detect.tasks`);
``data.streams`` names the stores each input stream reads. A model must return the task's
output type. Every key must exist in the dataclasses: a misspelt or unused key is an error,
never silently ignored. Overrides use dotted paths and YAML values: ``optim.lr=2e-4``,
``model.backbone.drop_path=0.2``, ``task.postprocess.max_seg_num=100``.

The dataset card (``data.dataset``) is read here and only here: it fills the task's
evaluation protocol, the splits and the class list the annotations are checked against,
wherever the config leaves them unset.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract.registry import RegistryError
from extract.typed_config import FieldError, build, parse_yaml, read_yaml

from .errors import ConfigError
from .models import model_entry
from .tasks import get_task, task_for_card


def _at_least(cfg: Any, **bounds: float) -> None:
    for name, low in bounds.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"{name} must be at least {low}, got {getattr(cfg, name)}")


@dataclass
class DataConfig:
    streams: dict[str, list[str]]           # stream name -> stores (features of several are concatenated)
    annotations: str
    dataset: str | None = None              # card id: the task, its protocol, splits and class list
    train_split: str | None = None          # None: the card's
    val_split: str | None = None
    val_holdout: float | None = None        # validate on this fraction of train_split (fixed by video id)
    test_split: str | None = None
    card_classes: list[str] | None = None   # labels the annotations may use; None: the card's (if it lists them)
    max_seq_len: int = 2304
    classes: list[str] | None = None        # keep only these classes (training and evaluation), e.g. [AllTime]
    trained_classes: list[str] | None = None  # set when a checkpoint is loaded: its classes, matched by name
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
        _at_least(self, max_seq_len=1, num_workers=0)


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
    cuda_graph: bool = False                # segments/dense on one GPU, accumulate 1: replay each step from a CUDA graph

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
    """When and how validation runs; what it measures is the task's (``task:``)."""

    every: int = 1
    start_epoch: int = 0
    batch_size: int = 4

    def __post_init__(self) -> None:
        _at_least(self, every=1, batch_size=1)


@dataclass
class RunConfig:
    model: Any                              # the registered model's config dataclass (model.name)
    data: DataConfig
    task: Any = None                        # the task's config dataclass (task.name); load_config fills it
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: str = "runs/default"
    seed: int = 0
    log_every: int = 20


def _named_section(cls: type, name: str, hint: Any, value: Any) -> tuple[Any, Any]:
    """The run config's ``model``/``task`` sections: their ``name`` picks the dataclass."""
    if cls is RunConfig and name in NAMED:
        return NAMED[name](value), {k: v for k, v in value.items() if k != "name"}
    return hint, value


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively build dataclass ``cls`` from a mapping, rejecting unknown keys."""
    try:
        return build(cls, data, where, _named_section)
    except FieldError as exc:
        raise ConfigError(str(exc)) from None


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


def _task_class(section: Any) -> type:
    """The config dataclass of the task that ``section`` names (load_config has named it)."""
    if not isinstance(section, dict):
        raise ConfigError(f"task: expected a mapping, got {section!r}")
    try:
        return get_task(section["name"]).config
    except RegistryError as exc:
        raise ConfigError(f"task.name: {exc}") from None


NAMED = {"model": _model_class, "task": _task_class}   # sections whose ``name`` picks their dataclass

OLD_BACKBONES = {"transformer": "actionformer", "mamba-dbm": "actionmamba-dbm", "mamba-vim": "actionmamba-vim",
                 "conv": "actionformer-conv"}
# Before the task had a section of its own (commit c3ce18b), each task read its settings from
# these keys of the model, data and eval sections (and data.task named the task).
MOVED_TO_TASK = {
    "segments": {"model": ("center_sample_radius", "loss_weight", "init_loss_norm", "label_smoothing", "postprocess"),
                 "data": ("trunc_thresh", "crop_ratio", "downsample_rate", "resize_to", "class_agnostic"),
                 "eval": ("tiou", "clean_gt", "ext_score_file", "fusion_topk", "fusion_mode")},
    "dense": {"eval": ("frame_map", "aux_weight", "action_conditional")},
    "clips": {"eval": ("label_smoothing",)},
}


def moved_keys(data: dict[str, Any]) -> list[str]:
    """The keys of ``data`` (a raw config) that belong in its ``task:`` section today."""
    keys = {("data", "task")} | {(section, key) for sections in MOVED_TO_TASK.values()
                                 for section, names in sections.items() for key in names}
    return [f"{section}.{key}" for section, key in sorted(keys)
            if isinstance(data.get(section), dict) and key in data[section]]


def _check_layout(data: dict[str, Any]) -> None:
    """Refuse a config of an earlier layout, saying what to change."""
    model, section = data.get("model"), data.get("data")
    backbone = model.get("backbone") if isinstance(model, dict) else None
    old = backbone.get("name") if isinstance(backbone, dict) and "name" not in model else None
    stores = isinstance(section, dict) and "stores" in section
    upgrade = "`python -m detect upgrade OLD NEW` converts a config (.yaml) or a checkpoint (.pt)"
    if old or stores:
        edits = []
        if old:
            edits.append(f"replace model.backbone.name: {old} by model.name: {OLD_BACKBONES.get(old, '...')} and "
                         f"move model.backbone.mamba.* up into model.backbone")
        if stores:
            edits.append("write data.stores: [...] as data.streams: {features: [...]} (stores of one stream are "
                         "concatenated on channels)")
        raise ConfigError(f"this config has the layout before the model registry: {'; '.join(edits)}. {upgrade}")
    moved = moved_keys(data)
    if moved:
        raise ConfigError(f"this config has the layout before the task section: {', '.join(moved)} moved to task.* "
                          f"(data.task to task.name). {upgrade}")


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
        node[parts[-1]] = parse_yaml(value)
    return data


def read_card(dataset: str | None):
    """The dataset card ``dataset`` (None without one); the one place ``detect`` reads cards."""
    if not dataset:
        return None
    from extract.cards import CardError, load_card

    try:
        return load_card(dataset)
    except CardError as exc:
        raise ConfigError(f"data.dataset: {exc}") from None


def task_section(name: str | None, card, given: dict[str, Any], default: str | None = None) -> dict[str, Any]:
    """A ``task:`` section: ``given`` on top of what the card says for its task. The task is
    ``name``, else the card's, else ``default`` (the model's)."""
    if name is None:
        name = task_for_card(card.task) if card is not None else default
    try:
        task = get_task(name)
    except RegistryError as exc:
        raise ConfigError(f"task.name: {exc}") from None
    from_card = task.config.card_defaults(card.evaluation) if card and card.task == task.card_task else {}
    return {"name": name, **from_card, **given}


def task_settings(name: str | None, dataset: str | None, given: dict[str, Any]) -> Any:
    """A task's config dataclass from its card and ``given`` settings (``detect evaluate``)."""
    section = task_section(name, read_card(dataset), given)
    return _build(_task_class(section), {k: v for k, v in section.items() if k != "name"}, "task")


def _fill_from_card(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the task section named and, where unset, the card's protocol, splits and classes."""
    _model_class(data.get("model"))  # a missing or unknown model is named before anything else
    section = data.get("data")
    card = read_card(section.get("dataset")) if isinstance(section, dict) else None
    given = data.get("task") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"task: expected a mapping, got {given!r}")
    given = dict(given)
    model_task = model_entry(data["model"]["name"]).task if "name" not in given and card is None else None
    out = {**data, "task": task_section(given.pop("name", None), card, given, model_task)}
    if card is not None:
        filled = dict(section)
        for split in ("train", "val", "test"):
            if filled.get(f"{split}_split") is None:
                filled[f"{split}_split"] = card.splits[split]
        if filled.get("val_holdout") is None and card.splits.get("val_holdout") is not None:
            filled["val_holdout"] = card.splits["val_holdout"]
        if filled.get("card_classes") is None and card.classes:
            filled["card_classes"] = list(card.classes)
        out["data"] = filled
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw sections of a YAML config file; unreadable or not a mapping is a :class:`ConfigError`."""
    try:
        data = read_yaml(path) or {}
    except FieldError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None, overrides: list[str] = (), base: dict[str, Any] | None = None) -> RunConfig:
    """A :class:`RunConfig` from a YAML file (or ``base``), with ``key=value`` overrides."""
    data = read_config_file(path) if path is not None else dict(base or {})
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(data).__name__}")
    data = apply_overrides(data, list(overrides))
    _check_layout(data)
    data = _fill_from_card(data)
    check_contract(data["model"]["name"], data["task"]["name"], (data.get("data") or {}).get("dataset"))
    cfg = _build(RunConfig, data, "")
    check_streams(cfg)
    return cfg


def check_contract(model: str, task_name: str, dataset: str | None = None) -> None:
    """Model ``model`` keeps the contract of task ``task_name``: it returns the task's output
    type and its config has the fields the task reads. Checked before any section is built, so
    a mismatch is named as such, not as a key the other task's section lacks."""
    entry, task = model_entry(model), get_task(task_name)
    source = f"dataset {dataset!r}" if dataset else "task.name"
    solves = entry.task  # a model that does not say what it returns is named here
    if not issubclass(entry.output, task.output):
        raise ConfigError(f"model {entry.name!r} solves the {solves!r} task (it returns {entry.output.__name__}), "
                          f"but {source} is a {task.name!r} task, which reads {task.output.__name__}")
    fields = {f.name for f in dataclasses.fields(entry.config)}
    lacking = [f for f in task.model_fields if f not in fields]
    if lacking:
        raise ConfigError(f"model {entry.name!r}: its config has no {', '.join(lacking)}, which the {task.name!r} "
                          f"task reads")


def check_streams(cfg: RunConfig) -> None:
    """The streams the model reads are in ``data.streams``."""
    entry = model_entry(cfg.model.name)
    missing = [s for s in entry.streams if s not in cfg.data.streams]
    if missing:
        raise ConfigError(f"model {entry.name!r} reads streams {list(entry.streams)}, but data.streams has no "
                          f"{missing} (it has {sorted(cfg.data.streams)})")


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as plain data (checkpoints, ``config.yaml``): what :func:`load_config` reads back."""
    out = dataclasses.asdict(cfg)
    for section in NAMED:
        out[section] = {"name": getattr(cfg, section).name, **out[section]}
    return out
