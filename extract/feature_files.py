"""Per-video feature files as public releases ship them: ``.npy``, ``.npz``, ``.pt``, ``.pkl``.

Each holds one ``(T, C)`` array (sometimes ``(T, 1, 1, C)``, sometimes inside a mapping).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExtractError

FORMATS = ("npy", "npz", "pt", "pkl")


class FeatureFileError(ExtractError, ValueError):
    """A feature file that cannot be turned into a ``(T, ...)`` array."""


def _pick(obj: Any, key: str | None, path: Path) -> Any:
    """The array inside a loaded object: itself, or ``obj[key]``, or the only value of a mapping."""
    if hasattr(obj, "keys") and not isinstance(obj, np.ndarray):
        keys = list(obj.keys())
        if key is None:
            if len(keys) != 1:
                raise FeatureFileError(f"{path}: holds several arrays {keys}; choose one with --key")
            key = keys[0]
        if key not in keys:
            raise FeatureFileError(f"{path}: has no key {key!r} (keys: {keys})")
        return obj[key]
    if key is not None:
        raise FeatureFileError(f"{path}: holds a single array, not a mapping; drop --key")
    return obj


def _read(path: Path, fmt: str, key: str | None) -> Any:
    """The array-like object in one file (``key`` picks it from a mapping)."""
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(_pick(npz, key, path))
    if fmt == "npy":
        obj = np.load(path, allow_pickle=False)
    elif fmt == "pt":
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True)
    else:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)  # noqa: S301 - the caller passed allow_pickle
    return _pick(obj, key, path)


def load_feature_file(path: Path, fmt: str, key: str | None = None, allow_pickle: bool = False) -> np.ndarray:
    """Load one per-video feature file as a numpy array of rank >= 2, rows first.

    ``.pt`` files are read with ``torch.load(weights_only=True)``, which refuses arbitrary
    code. ``.pkl`` files can run arbitrary code when unpickled and are refused unless
    ``allow_pickle`` says the caller trusts their source.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if fmt == "pkl" and not allow_pickle:
        raise FeatureFileError(f"{path}: unpickling runs arbitrary code; pass --allow-pickle only if you "
                               "trust where these files come from")
    try:
        obj = _read(path, fmt, key)
    except FeatureFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy/torch/pickle raise many types for a bad file
        raise FeatureFileError(f"{path}: cannot be read as .{fmt} ({type(exc).__name__}: {exc})") from exc
    if hasattr(obj, "detach"):  # a torch tensor; bfloat16 has no numpy dtype
        obj = obj.detach().cpu()
        obj = (obj.float() if str(obj.dtype) == "torch.bfloat16" else obj).numpy()
    array = np.asarray(obj)
    if array.dtype == object:
        raise FeatureFileError(f"{path}: holds Python objects, not a numeric array")
    if array.ndim == 4 and array.shape[1:3] == (1, 1):
        array = array.reshape(array.shape[0], array.shape[3])
    if array.ndim < 2 or array.shape[0] == 0:
        raise FeatureFileError(f"{path}: expected a (T, C) array, got shape {array.shape}")
    return array


def collect_files(root: Path, fmt: str, prefix: str = "", suffix: str = "", flat: bool = False) -> dict[str, Path]:
    """Video id -> file for every ``*.fmt`` under ``root``.

    The id is the path relative to ``root`` (``sub/dir/name``), or the file name alone with
    ``flat``, without the extension, ``prefix`` and ``suffix``: unique, stable, readable.
    Raises :class:`FeatureFileError` when two files map to one id.
    """
    by_id: dict[str, Path] = {}
    for path in sorted(p for p in root.rglob(f"*.{fmt}") if p.is_file()):
        rel = (path.name if flat else path.relative_to(root).as_posix())[: -len(fmt) - 1]
        head, _, name = rel.rpartition("/")
        if prefix and name.startswith(prefix):
            name = name[len(prefix):]
        if suffix and name.endswith(suffix):
            name = name[: -len(suffix)]
        vid = f"{head}/{name}" if head else name
        if vid in by_id:
            raise FeatureFileError(f"{path} and {by_id[vid]} both map to video id {vid!r}")
        by_id[vid] = path
    return by_id
