"""Config files onto typed dataclasses: YAML read with YAML 1.2 numbers, values checked against
the fields' types, unknown keys refused. ``detect`` run configs, dataset cards and extractor
``--model-config`` files all go through here, so ``init_values: 1e-05`` is a float everywhere.

PyYAML implements YAML 1.1, where a float needs a dot (``1e-05`` is the string ``"1e-05"``);
:class:`Loader` adds YAML 1.2's float form on top of the safe loader.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable

import yaml


class FieldError(ValueError):
    """A config value or file that does not fit; the message names the file or the field."""


class Loader(yaml.SafeLoader):
    """The safe loader, with YAML 1.2 floats (``1e-05``, ``1E5``, ``.5``) resolved as floats."""


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=Loader)


def read_yaml(path: str | Path) -> Any:
    """A YAML (or JSON) file's contents; unreadable or invalid is one :class:`FieldError` line."""
    try:
        return parse_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FieldError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FieldError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None


def coerce(hint: Any, value: Any, where: str) -> Any:
    """Numbers written as strings (quoted, or ``1e-4`` read by another YAML 1.1 loader) and ints
    for float fields become the field's type, lists of numbers too."""
    if isinstance(value, str):
        for kind in (int, float):
            if hint is kind or kind in typing.get_args(hint):
                try:
                    return kind(value) if kind is float else int(value)
                except ValueError:
                    if kind is float or float not in typing.get_args(hint):
                        raise FieldError(f"{where}: expected a number, got {value!r}") from None
        return value
    if isinstance(value, list):
        args = [a for a in typing.get_args(hint) if typing.get_origin(a) in (list, tuple)] or [hint]
        inner = typing.get_args(args[0])
        if inner and inner[0] in (int, float):
            return [coerce(inner[0], v, where) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and (hint is float or float in typing.get_args(hint)):
        return float(value)
    return value


_SCALARS = (bool, int, float, str)


def check_type(hint: Any, value: Any, where: str) -> None:
    """Scalars (and lists of them) must have their field's type: ``epochs: 2.5`` is an error, not
    2.5 epochs; a field's other types (dicts, nested tuples) are checked by their class."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) not in options and any(o in _SCALARS for o in options):
            raise FieldError(f"{where}: a value is required")
        return
    scalars = [o for o in options if o in _SCALARS]
    lists = [typing.get_args(o)[0] for o in options if typing.get_origin(o) is list and typing.get_args(o)
             and typing.get_args(o)[0] in _SCALARS]
    if isinstance(value, list) and lists:
        for item in value:
            check_type(lists[0], item, where)
        return
    if not scalars or len(scalars) + len(lists) < len([o for o in options if o is not type(None)]):
        return
    ok = any(isinstance(value, kind) and not (kind is int and isinstance(value, bool)) for kind in scalars)
    if not ok:
        names = " or ".join(k.__name__ for k in scalars) + (" or a list" if lists else "")
        raise FieldError(f"{where}: expected {names}, got {value!r}")


# (class, field name, hint, value) -> (hint, value): lets a caller pick a field's class from its value
FieldHook = Callable[[type, str, Any, Any], tuple[Any, Any]]


def typed_fields(cls: type, data: Any, where: str = "", hook: FieldHook | None = None) -> dict[str, Any]:
    """The fields ``data`` sets on dataclass ``cls``, each converted to its type (nested
    dataclasses built): unknown keys and values of the wrong type are one :class:`FieldError`
    naming ``where`` and the field. Fields ``data`` leaves out are left out."""
    if not isinstance(data, dict):
        raise FieldError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise FieldError(f"{where or 'config'}: unknown keys {sorted(unknown)} (known: {sorted(names)})")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if hook is not None:
            hint, value = hook(cls, name, hint, value)
        target = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
        at = f"{where}.{name}".lstrip(".")
        if dataclasses.is_dataclass(target):
            kwargs[name] = build(target, value, at, hook)
        else:
            kwargs[name] = coerce(hint, value, at)
            check_type(hint, kwargs[name], at)
    return kwargs


def build(cls: type, data: Any, where: str = "", hook: FieldHook | None = None) -> Any:
    """Dataclass ``cls`` from a mapping (:func:`typed_fields`); the class's own
    ``ValueError``/``TypeError`` is a :class:`FieldError` naming ``where`` too."""
    kwargs = typed_fields(cls, data, where, hook)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise FieldError(f"{where or 'config'}: {exc}") from None
