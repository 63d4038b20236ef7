"""Tasks, by name: ``segments`` (segment detection), ``dense`` (per-step multi-label detection),
``clips`` (clip classification). Each import below is a task module's registry line."""
from __future__ import annotations

from extract.registry import Registry

from ..errors import ConfigError
from .base import Task

TASKS: Registry[type[Task]] = Registry("task")

from . import clips, dense, segments  # noqa: E402,F401  (they register themselves)


def get_task(name: str) -> type[Task]:
    return TASKS.get(name)


def task_for_card(card_task: str) -> str:
    """The task of a dataset card's ``task`` field (``segment-detection`` -> ``segments``)."""
    for name, task in TASKS.items():
        if task.card_task == card_task:
            return name
    raise ConfigError(f"no task handles dataset cards of task {card_task!r}")


__all__ = ["TASKS", "Task", "get_task", "task_for_card"]
