"""A name -> entry table, the extension point of both packages (extractors here; tasks and
models in ``detect``). Registering is a decorator on the thing registered, so adding one is a
new module plus the line that imports it."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import ExtractError

T = TypeVar("T")


class RegistryError(ExtractError, KeyError):
    """An unknown name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str, make_entry: Callable[[object], T] | None = None) -> Callable:
        """Decorator: registers ``make_entry(obj)`` (or ``obj`` itself) under ``name``; returns ``obj``.
        A class registered as itself is named here (``cls.name``), so it never spells its name twice."""
        def decorate(obj):
            if make_entry is None and isinstance(obj, type):
                obj.name = name
            self.add(name, make_entry(obj) if make_entry else obj)
            return obj
        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
