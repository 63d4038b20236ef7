"""Reading a store: random access by video id, safe in DataLoader workers (fork and spawn).

The index (video id -> segment file) is built once when the store is opened and pickles
with the store object; HDF5 handles are opened lazily, per process, on first read, and are
dropped when the object is pickled or used in a forked child. A handle opened before
``fork`` and reused in the child corrupts reads, which is the classic h5py + DataLoader bug.
"""
from __future__ import annotations

import difflib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .errors import CorruptStoreError, CorruptVideoError, StoreError, UnknownVideoError
from .grid import SnippetGrid
from .layout import (FAILURES, SEGMENT_FORMAT, SHARDS, STAGING, STORE_JSON, VIDEOS_GROUP, checksum, dataset_name,
                     info_checksum, meta_checksum, parse_segment_name, video_id_of)
from .meta import FORMAT_NAME, FORMAT_VERSION, StoreInfo, VideoMeta

_MAX_OPEN_FILES = 64


def load_store_info(path: str | os.PathLike) -> StoreInfo:
    """Read and validate ``store.json`` of the store at ``path``."""
    path = Path(path)
    target = path / STORE_JSON
    if not path.is_dir():
        raise StoreError(f"no store at {path}: not a directory")
    if not target.exists():
        raise StoreError(f"{path} is not a mamba-tad store: {STORE_JSON} is missing")
    try:
        d = json.loads(target.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{target} is not valid JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT_NAME:
        raise StoreError(f"{target} does not describe a mamba-tad store (format is {d.get('format')!r}"
                         if isinstance(d, dict) else f"{target} does not describe a mamba-tad store")
    version = d.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise StoreError(f"{path} has store format version {version}; this mamba-tad reads version "
                         f"{FORMAT_VERSION}" + (" (upgrade mamba-tad)" if newer else ""))
    if d.get("checksum") and d["checksum"] != info_checksum(d):
        raise CorruptStoreError(f"{target} does not match its checksum (changed by hand or damaged); the store's "
                                f"parameters cannot be trusted")
    try:
        return StoreInfo.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{target} has invalid fields: {exc}") from None


@dataclass(frozen=True)
class Segment:
    """A sealed segment file and the videos it holds."""

    path: Path
    shard: int
    video_ids: tuple[str, ...]
    size: int


def _index_segment(file: Path, info: StoreInfo) -> Segment:
    try:
        with h5py.File(file, "r", locking=False) as f:
            attrs = dict(f.attrs)
            if attrs.get("format") != SEGMENT_FORMAT:
                raise StoreError(f"{file} is not a mamba-tad segment (its 'format' attribute is "
                                 f"{attrs.get('format')!r})")
            if attrs.get("store_id") != info.store_id:
                raise StoreError(f"{file} belongs to another store (store id {attrs.get('store_id')!r}, "
                                 f"this store is {info.store_id!r})")
            names = tuple(video_id_of(name) for name in f[VIDEOS_GROUP])
            shard = int(attrs["shard"])
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # h5py's errors on a damaged header
        raise CorruptStoreError(f"{file} cannot be read as a segment (truncated or corrupted?): "
                                f"{type(exc).__name__}: {exc}") from None
    return Segment(file, shard, names, file.stat().st_size)


class FeatureStore:
    """A read-only view of a store. Use :func:`open_store`.

    ``strict=False`` skips unreadable or foreign segment files instead of raising, and lists
    them in :attr:`problems` (``extract verify`` uses this to report everything at once).
    """

    def __init__(self, path: str | os.PathLike, *, strict: bool = True) -> None:
        self.path = Path(path)
        self.info = load_store_info(self.path)
        self.problems: list[str] = []
        self.segments: list[Segment] = []
        self._where: dict[str, Path] = {}
        for file in sorted((self.path / SHARDS).iterdir()) if (self.path / SHARDS).is_dir() else []:
            if parse_segment_name(file.name) is None:
                if not file.name.startswith("."):
                    self.problems.append(f"{file}: unexpected file in {SHARDS}/")
                continue
            try:
                seg = _index_segment(file, self.info)
            except StoreError as exc:
                if strict:
                    raise
                self.problems.append(str(exc))
                continue
            self.segments.append(seg)
            for vid in seg.video_ids:
                if vid in self._where:
                    self.problems.append(f"video {vid!r} is in two segments: {self._where[vid].name} and "
                                         f"{file.name} (reading the first)")
                    continue
                self._where[vid] = file
        self.ids: list[str] = sorted(self._where)
        self._handles: OrderedDict[Path, h5py.File] = OrderedDict()
        self._raw: dict[str, tuple[Path, int | None, tuple[int, ...], np.dtype, str]] = {}
        self._pid = os.getpid()

    # -- lazy, per-process HDF5 handles ----------------------------------------------------
    def _file(self, path: Path) -> h5py.File:
        if self._pid != os.getpid():  # forked: never touch the parent's handles
            self._handles = OrderedDict()
            self._pid = os.getpid()
        f = self._handles.get(path)
        if f is None:
            try:
                f = h5py.File(path, "r", locking=False)
            except OSError as exc:
                raise StoreError(f"{path} cannot be read as HDF5 (truncated or corrupted?): {exc}") from None
            self._handles[path] = f
            if len(self._handles) > _MAX_OPEN_FILES:
                self._handles.popitem(last=False)[1].close()
        else:
            self._handles.move_to_end(path)
        return f

    def _dataset(self, video_id: str) -> h5py.Dataset:
        where = self._where.get(video_id)
        if where is None:
            close = difflib.get_close_matches(video_id, self.ids, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownVideoError(f"video {video_id!r} is not in store {self.path} "
                                    f"({len(self.ids)} videos){hint}")
        return self._file(where)[VIDEOS_GROUP][dataset_name(video_id)]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = OrderedDict()
        return state

    def close(self) -> None:
        for f in self._handles.values():
            f.close()
        self._handles.clear()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def read(self, video_id: str, verify: bool = True) -> np.ndarray:
        """The stored array of ``video_id``, checked against its XXH3 checksum unless ``verify``
        is False (:class:`CorruptVideoError` names the store, segment file and video)."""
        raw = self._raw.get(video_id)
        if raw is None:
            dset = self._dataset(video_id)
            offset = dset.id.get_offset() if dset.chunks is None else None
            raw = (self._where[video_id], offset, dset.shape, dset.dtype, str(dset.attrs["checksum"]))
            if offset is not None:
                self._raw[video_id] = raw
        path, offset, shape, dtype, expected = raw
        out = np.empty(shape, dtype=dtype)
        if offset is None:  # chunked or compressed: HDF5 decodes
            self._dataset(video_id).read_direct(out)
        else:
            # Contiguous data sits at a fixed offset of a sealed (immutable) file: one pread into
            # the result, without HDF5's per-call overhead, makes random reads as fast as .npy.
            fd = self._file(path).id.get_vfd_handle()
            got = os.preadv(fd, [out.data.cast("B")], offset)
            if got != out.nbytes:
                raise StoreError(f"{path}: video {video_id!r} needs {out.nbytes} bytes at offset {offset}, "
                                 f"read {got} (truncated file?)")
        if verify and checksum(out) != expected:
            raise CorruptVideoError(f"store {self.path}, segment {path.name}: video {video_id!r} does not match its "
                                    f"checksum (stored {expected}, data {checksum(out)}); "
                                    f"`python -m extract verify {self.path}` lists every damaged video")
        return out

    __getitem__ = read

    def meta(self, video_id: str) -> VideoMeta:
        """Per-video metadata: source, fps, frame count, duration, grid, decoder; checked against
        its checksum, which binds it to the video's id and data (:class:`CorruptVideoError`)."""
        dset = self._dataset(video_id)  # one lookup: meta is read on every training step
        where = f"store {self.path}, segment {self._where[video_id].name}: video {video_id!r}"
        try:
            attrs = dset.attrs
            text, data_sum, stored = str(attrs["meta"]), str(attrs["checksum"]), attrs.get("meta_checksum")
        except (KeyError, OSError, RuntimeError) as exc:
            raise CorruptVideoError(f"{where}: unreadable attributes ({exc})") from None
        if stored is None and self.info.meta_checksums:
            raise CorruptVideoError(f"{where}: its metadata checksum is missing")
        if stored is not None and str(stored) != meta_checksum(video_id, data_sum, text):
            raise CorruptVideoError(f"{where}: metadata does not match its checksum (grid, duration or extra "
                                    f"changed or damaged); `python -m extract verify {self.path}` lists every "
                                    f"damaged video")
        try:
            return VideoMeta.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptVideoError(f"{where}: unreadable metadata ({type(exc).__name__}: {exc})") from None

    def grid(self, video_id: str) -> SnippetGrid:
        return self.meta(video_id).grid

    def checksum(self, video_id: str) -> str:
        return str(self._dataset(video_id).attrs["checksum"])

    def shape(self, video_id: str) -> tuple[int, ...]:
        return tuple(self._dataset(video_id).shape)

    def segment_of(self, video_id: str) -> Path:
        self._dataset(video_id)
        return self._where[video_id]

    @property
    def failures(self) -> dict[str, str]:
        """Videos whose last attempt failed and that are not in the store: id -> error."""
        out: dict[str, str] = {}
        for file in sorted((self.path / FAILURES).glob("*.jsonl")):
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record["id"] not in self._where:
                    out[record["id"]] = record["error"]
        return dict(sorted(out.items()))

    @property
    def unsealed(self) -> list[Path]:
        """Journals of segments still being written, or left by a killed writer."""
        return sorted((self.path / STAGING).glob("*.journal"))


def open_store(path: str | os.PathLike, *, strict: bool = True) -> FeatureStore:
    """Open the store at ``path`` for reading. See :class:`FeatureStore`."""
    return FeatureStore(path, strict=strict)
