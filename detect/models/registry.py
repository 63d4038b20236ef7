"""The model registry: name -> typed config class, builder, output type and input streams.

``create_model("actionmamba-dbm", num_classes=20)`` builds a model at its registered config;
``model_entry(name)`` tells what a model needs. A model module registers itself with
:func:`register_model`; ``detect/models/__init__.py`` imports every model module. The registry
names the model: registering sets ``name`` on the config class (not a field, not repeated).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from extract.registry import Registry

from ..errors import ConfigError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config: type                        # a dataclass: the fields a YAML ``model:`` section may hold
    build: Callable[[Any], nn.Module]
    output: type | None                 # what ``forward`` returns (detect.outputs); it picks the task
    streams: tuple[str, ...]            # input streams, by name: ``model(**streams, mask=mask)``
    description: str
    example: dict[str, Any] = field(default_factory=dict)  # the required fields, for `detect models`
    input_shapes: Callable[[Any], dict[str, tuple]] | None = None  # stream -> (key, step shape[, dtype])
    tiny: dict[str, Any] = field(default_factory=dict)     # fields for a CPU-sized instance (registry-wide tests)

    @property
    def task(self) -> str:
        """The task whose output this model produces."""
        from ..tasks import task_for_output

        if self.output is None:
            raise ConfigError(f"model {self.name!r} does not say what it returns: register it with output=... "
                              f"(a type of detect.outputs)")
        return task_for_output(self.output)


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(name: str, *, config: type, output: type | None, streams: tuple[str, ...], description: str,
                   example: dict[str, Any] | None = None,
                   input_shapes: Callable[[Any], dict[str, tuple]] | None = None,
                   tiny: dict[str, Any] | None = None) -> Callable:
    """Class or function decorator: ``build(cfg) -> nn.Module`` under ``name``. ``output`` is the
    output type ``forward`` returns (its task checks it when a config is loaded);
    ``input_shapes`` tells, per stream, the config key that sets it and the shape of one step as
    the model takes it (``(C,)`` for a ``(B, C, T)`` stream, else ``(B, T, *shape)``; ``None``
    for a size the model adapts to, e.g. frames it resizes), and optionally the dtype the store
    must hold (``"uint8"`` pixels), so that a mismatch with the stores is a config error before
    training starts;
    ``tiny`` holds config fields that make the model small enough for a CPU test."""
    if "name" in {f.name for f in dataclasses.fields(config)}:
        raise TypeError(f"{config.__name__} declares a 'name' field: the registry names the model")

    def entry(build: Callable) -> ModelEntry:
        config.name = name
        return ModelEntry(name, config, build, output, tuple(streams), description, dict(example or {}),
                          input_shapes, dict(tiny or {}))
    return MODELS.register(name, entry)


def model_entry(name: str) -> ModelEntry:
    return MODELS.get(name)


def model_config(name: str, **fields: Any) -> Any:
    """The config dataclass of model ``name`` with ``fields`` set (dicts for nested sections)."""
    return model_entry(name).config(**fields)


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
        rows.append({"name": name, "task": entry.task, "output": entry.output.__name__, "streams": list(entry.streams),
                     "parameters": count_parameters(entry.build(cfg)), "description": entry.description,
                     "defaults": dataclasses.asdict(cfg)})
    return rows
