"""Tasks, by name: ``segments`` (segment detection), ``dense`` (per-step multi-label detection),
``clips`` (clip classification). Each import below is a task module's registry line; everything
else asks this registry (by task name, dataset-card task, model output type or predictions file)."""
from __future__ import annotations

from pathlib import Path

from extract.registry import Registry

from ..errors import ConfigError
from .base import Task

TASKS: Registry[type[Task]] = Registry("task")


def register_task(name: str):
    """Class decorator: the task under ``name``; names the task and its config class."""
    def decorate(cls: type[Task]) -> type[Task]:
        TASKS.register(name)(cls)
        cls.config.name = name
        return cls
    return decorate


from . import clips, dense, segments  # noqa: E402,F401  (they register themselves)


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def task_for_card(card_task: str) -> str:
    """The task of a dataset card's ``task`` field (``segment-detection`` -> ``segments``)."""
    for name, task in TASKS.items():
        if task.card_task == card_task:
            return name
    raise ConfigError(f"no task handles dataset cards of task {card_task!r}; known: "
                      f"{', '.join(t.card_task for _, t in TASKS.items())}")


def task_for_output(output: type) -> str:
    """The task whose models return ``output`` (a model registry entry's output type)."""
    for name, task in TASKS.items():
        if issubclass(output, task.output):
            return name
    raise ConfigError(f"no task takes {output.__name__} outputs; tasks take "
                      f"{', '.join(f'{t.output.__name__} ({n})' for n, t in TASKS.items())}")


def task_for_predictions(path: str | Path) -> str:
    """The task whose predictions file ``path`` is, by its name (``*_detections.json``, ...) or,
    failing that, by what it holds."""
    for name, task in TASKS.items():
        if task.claims(Path(path)):
            return name
    raise ConfigError(f"cannot tell which task {path} belongs to: name --task or --dataset "
                      f"(files end in {', '.join(t.prediction_suffix for _, t in TASKS.items())})")


__all__ = ["TASKS", "Task", "get_task", "register_task", "task_for_card", "task_for_output", "task_for_predictions"]
