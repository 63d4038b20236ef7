"""The model registry: name -> typed config class, builder, task and input streams.

``create_model("actionmamba-dbm", num_classes=20)`` builds a model at its registered config;
``model_entry(name)`` tells what a model needs. A model module registers itself with
:func:`register_model`; ``detect/models/__init__.py`` imports every model module.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from extract.registry import Registry


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: type                        # a dataclass; its ``name`` field holds the registry name
    build: Callable[[Any], nn.Module]
    task: str                           # the task it solves (see detect.tasks)
    streams: tuple[str, ...]            # input streams, by name: ``model(**streams, mask=mask)``
    description: str
    example: dict[str, Any] = field(default_factory=dict)  # the required fields, for `detect models`
    input_channels: Callable[[Any], dict[str, tuple[str, int]]] | None = None  # stream -> (config key, channels)


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, *, config: type, task: str, streams: tuple[str, ...], description: str,
                   example: dict[str, Any] | None = None,
                   input_channels: Callable[[Any], dict[str, tuple[str, int]]] | None = None) -> Callable:
    """Class or function decorator: ``build(cfg) -> nn.Module`` under ``name``. ``input_channels``
    tells, per ``(C, T)`` stream, the config key and the channels the model expects, so that a
    mismatch with the stores is a config error before training starts."""
    return MODELS.register(name, lambda build: ModelEntry(name, config, build, task, tuple(streams), description,
                                                          dict(example or {}), input_channels))


def model_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def model_config(name: str, **fields: Any) -> Any:
    """The config dataclass of model ``name`` with ``fields`` set (dicts for nested sections)."""
    return model_entry(name).config(name=name, **fields)


def create_model(cfg_or_name: Any, **fields: Any) -> nn.Module:
    """A model from its config dataclass, or from a registry name and config fields."""
    cfg = model_config(cfg_or_name, **fields) if isinstance(cfg_or_name, str) else cfg_or_name
    return model_entry(cfg.name).build(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_models() -> list[dict[str, Any]]:
    """Each registered model: name, task, streams, description and parameter count at its
    default config (with the example's required fields)."""
    rows = []
    for name, entry in MODELS.items():
        cfg = model_config(name, **entry.example)
        rows.append({"name": name, "task": entry.task, "streams": list(entry.streams),
                     "parameters": count_parameters(entry.build(cfg)), "description": entry.description,
                     "defaults": dataclasses.asdict(cfg)})
    return rows
