"""Metadata records of a store (``store.json``) and of each video in it."""
from __future__ import annotations

import datetime as _dt
import json
import math
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from .grid import SnippetGrid

FORMAT_NAME = "mamba-tad-store"
FORMAT_VERSION = 1

# Fields that must agree between writers joining the same store; the rest (who created it,
# when, the store's random id) describes one particular store and is ignored when comparing.
_IDENTITY_FIELDS = ("feature", "dtype", "num_shards", "compression", "model", "preprocessing", "grid")


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mamba-tad {version('mamba-tad')}"
    except PackageNotFoundError:
        return "mamba-tad (not installed)"


@dataclass(frozen=True)
class StoreInfo:
    """Per-store metadata, saved as ``store.json``.

    ``model`` identifies the weights (``{"name": ..., "sha256": ...}``; sha256 may be null for
    imported features of unknown provenance). ``grid`` holds the store-wide grid parameters
    (``window``, ``stride``, ``tail``, ``fps`` or ``"native"``); each video carries its own
    full :class:`SnippetGrid`.
    """

    feature: str
    dtype: str
    num_shards: int = 64
    compression: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, Any] = field(default_factory=dict)
    step_shape: list[int] | None = None   # every array is (T, *step_shape); None: not fixed up front
    extra: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)   # how to make these features again (extract.recipe)
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    store_id: str = ""
    created_by: str = ""
    created_at: str = ""
    meta_checksums: bool = False          # every video's metadata has a checksum (stores made since 2026-12)
    checksum: str = ""                    # of every other field (layout.info_checksum); "" in older stores

    def __post_init__(self) -> None:
        np.dtype(self.dtype)  # raises TypeError on a bad dtype name
        if self.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
        if self.compression not in (None, "lzf") and not str(self.compression).startswith("gzip"):
            raise ValueError(f"compression must be None, 'lzf' or 'gzip[:LEVEL]', got {self.compression!r}")

    def stamped(self) -> "StoreInfo":
        """A copy with a fresh store id, the creating tool and the creation time filled in."""
        from .layout import info_checksum

        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        stamped = replace(self, store_id=uuid.uuid4().hex, created_by=tool_version(), created_at=now,
                          meta_checksums=True, checksum="")
        return replace(stamped, checksum=info_checksum(asdict(stamped)))

    def identity_differences(self, other: "StoreInfo") -> list[str]:
        """Human-readable list of identity fields in which ``other`` differs from this store."""
        out = [f"{name}: store has {getattr(self, name)!r}, writer asked for {getattr(other, name)!r}"
               for name in _IDENTITY_FIELDS if getattr(self, name) != getattr(other, name)]
        if None not in (self.step_shape, other.step_shape) and list(self.step_shape) != list(other.step_shape):
            out.append(f"step_shape: store holds arrays of (T, {', '.join(map(str, self.step_shape))}), writer "
                       f"asked for (T, {', '.join(map(str, other.step_shape))})")
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StoreInfo":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class VideoMeta:
    """Per-video metadata stored beside its array.

    ``fps`` and ``num_frames`` describe the decoded source (not the container header);
    ``None`` means unknown (e.g. features imported from a public release). ``duration`` is
    in seconds. ``decoder`` names the decoder and version that produced the frames.
    """

    grid: SnippetGrid
    source: str = ""
    fps: float | None = None
    num_frames: int | None = None
    duration: float | None = None
    decoder: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("fps", "duration"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")

    def to_json(self) -> str:
        d = asdict(self)
        d["grid"] = self.grid.to_dict()
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "VideoMeta":
        d = json.loads(text)
        d["grid"] = SnippetGrid.from_dict(d["grid"])
        return cls(**d)
