"""Writing a store: one process per rank, each the only writer of the shards it owns.

A video's shard is ``crc32(id) % num_shards`` and shard ``s`` belongs to rank
``s % world_size``. Under ``torchrun`` every rank opens the same store with its ``RANK`` and
``WORLD_SIZE`` (read from the environment by default) and calls :meth:`StoreWriter.todo` on
the full list of videos: it gets back its own share, minus what is done. No two processes
ever write the same file; an ``flock`` on ``locks/shard-S.lock`` turns an accidental second
writer (two runs started with the same rank) into a clear error instead of a corrupt shard,
and is released by the kernel when its holder dies, even by SIGKILL (see :mod:`.lock`: forked
children never keep it, and a stale lock of a dead writer is reclaimed).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from .errors import BadArrayError, StoreError
from .grid import count_snippets
from .layout import (FAILURES, LOCKS, SHARDS, STAGING, STORE_JSON, VIDEOS_GROUP, checksum, has_nonfinite,
                     new_segment_stem, owner_rank, parse_segment_name, shard_file, shard_of, video_id_of)
from .lock import WriterLock
from .meta import StoreInfo, VideoMeta
from .reader import load_store_info
from .segment import SegmentWriter, recover_segment


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def create_or_join(path: Path, info: StoreInfo) -> StoreInfo:
    """Create the store at ``path`` with ``info``, or join the existing one if it agrees.

    Safe when every rank calls it at once: ``store.json`` is published with ``os.link``,
    which fails if the name exists, so exactly one creator wins and the rest compare.
    """
    for sub in (SHARDS, STAGING, FAILURES, LOCKS):
        (path / sub).mkdir(parents=True, exist_ok=True)
    target = path / STORE_JSON
    if not target.exists():
        stamped = info.stamped()
        tmp = path / f".{STORE_JSON}.{os.getpid()}.{secrets.token_hex(4)}.tmp"  # pids repeat across nodes
        tmp.write_text(stamped.to_json())
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    existing = load_store_info(path)
    differences = existing.identity_differences(info)
    if differences:
        raise StoreError(f"store {path} exists with other parameters; use another --out or match them:\n  "
                         + "\n  ".join(differences))
    return existing


class _ShardState:
    """What one writer knows about a shard it owns: its lock, done and failed ids, open segment."""

    def __init__(self, lock: WriterLock, done: set[str], failed: dict[str, str],
                 recovered: list[str], lost: list[tuple[str, str]]) -> None:
        self.lock, self.done, self.failed = lock, done, failed
        self.recovered, self.lost = recovered, lost
        self.segment: SegmentWriter | None = None


def _claim_shard(path: Path, info: StoreInfo, shard: int) -> _ShardState:
    """Lock a shard for writing, seal what crashed writers left of it, and load its done/failed ids."""
    lock = WriterLock(shard_file(path, LOCKS, shard, ".lock"), f"shard {shard} of {path}")
    recovered: list[str] = []
    lost: list[tuple[str, str]] = []
    for journal in sorted((path / STAGING).glob(f"shard-{shard:05d}-*.journal")):
        result = recover_segment(journal, info.store_id, shard)
        recovered += result.recovered
        lost += result.lost
        for vid, why in result.lost:
            warnings.warn(f"video {vid!r} could not be recovered from {journal.name} ({why}); "
                          "it will be written again", stacklevel=4)
    done = set()
    for seg in (path / SHARDS).glob(f"shard-{shard:05d}-*.h5"):
        if parse_segment_name(seg.name) == shard:
            with h5py.File(seg, "r", locking=False) as f:
                done.update(video_id_of(name) for name in f[VIDEOS_GROUP])
    failed = {}
    failures = shard_file(path, FAILURES, shard, ".jsonl")
    if failures.exists():
        text = failures.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):  # a writer died mid-line: end it so appends stay whole
            with open(failures, "a", encoding="utf-8") as fh:
                fh.write("\n")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed writer
            failed[record["id"]] = record["error"]
    return _ShardState(lock, done, {k: v for k, v in failed.items() if k not in done}, recovered, lost)


class StoreWriter:
    """Writes videos into a store, resuming where an earlier (possibly killed) run stopped.

    Example::

        with StoreWriter("feats/thumos_i3d", StoreInfo(feature="i3d_rgb", dtype="float16")) as w:
            for vid in w.todo(all_ids):
                try:
                    w.write(vid, features(vid), VideoMeta(grid=..., fps=..., num_frames=...))
                except DecodeError as exc:
                    w.fail(vid, str(exc))

    ``retry_failed=True`` hands videos that failed in earlier runs back out of :meth:`todo`.
    A segment is sealed (made visible to readers) when it reaches ``max_segment_bytes`` and
    when the writer closes; until then a crash is repaired by the next writer from the journal.
    """

    def __init__(self, path: str | os.PathLike, info: StoreInfo, *, rank: int | None = None,
                 world_size: int | None = None, retry_failed: bool = False,
                 max_segment_bytes: int = 2 << 30, durable: bool = False) -> None:
        self.path = Path(path)
        self.rank = _env_int("RANK", 0) if rank is None else rank
        self.world_size = _env_int("WORLD_SIZE", 1) if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise StoreError(f"rank {self.rank} is outside a world of {self.world_size} processes")
        self.info = create_or_join(self.path, info)
        # One per-step shape per store: the store's, else the one asked for, else the first written.
        declared = self.info.step_shape if self.info.step_shape is not None else info.step_shape
        self.step_shape = None if declared is None else list(declared)
        if self.world_size > self.info.num_shards:
            warnings.warn(f"{self.world_size} processes but only {self.info.num_shards} shards in {self.path}: "
                          f"ranks >= {self.info.num_shards} get no videos", stacklevel=2)
        self.retry_failed = retry_failed
        self.max_segment_bytes = max_segment_bytes
        self.durable = durable
        self.recovered: list[str] = []
        self.lost: list[tuple[str, str]] = []
        self._shards: dict[int, _ShardState] = {}
        self._closed = False

    # -- ownership and resume -------------------------------------------------------------
    def shard(self, video_id: str) -> int:
        return shard_of(video_id, self.info.num_shards)

    def owns(self, video_id: str) -> bool:
        return owner_rank(self.shard(video_id), self.world_size) == self.rank

    def todo(self, video_ids: Iterable[str]) -> list[str]:
        """This rank's videos among ``video_ids`` that still need work, in the given order."""
        out = []
        for vid in dict.fromkeys(video_ids):
            if not self.owns(vid):
                continue
            state = self._state(self.shard(vid))
            if vid in state.done or (vid in state.failed and not self.retry_failed):
                continue
            out.append(vid)
        return out

    def _state(self, shard: int) -> _ShardState:
        if shard in self._shards:
            return self._shards[shard]
        if self._closed:
            raise StoreError(f"writer for {self.path} is closed")
        if owner_rank(shard, self.world_size) != self.rank:
            raise StoreError(f"shard {shard} of {self.path} belongs to rank {owner_rank(shard, self.world_size)}, "
                             f"this is rank {self.rank} of {self.world_size}")
        state = _claim_shard(self.path, self.info, shard)
        self.recovered += state.recovered
        self.lost += state.lost
        self._shards[shard] = state
        return state

    # -- writing --------------------------------------------------------------------------
    def _check_array(self, video_id: str, array: np.ndarray, meta: VideoMeta) -> np.ndarray:
        array = np.asarray(array)
        want = np.dtype(self.info.dtype)
        if array.dtype != want:
            if not np.can_cast(array.dtype, want, casting="same_kind"):
                raise BadArrayError(f"video {video_id!r}: array dtype {array.dtype} cannot be stored as "
                                    f"the store's {want} ({self.path})")
            with np.errstate(over="ignore"):  # overflow shows up as Inf, refused just below
                array = array.astype(want)
        if array.ndim == 0 or array.shape[0] == 0 or array.size == 0:
            raise BadArrayError(f"video {video_id!r}: refusing to store an empty array of shape {array.shape}")
        if has_nonfinite(array):
            raise BadArrayError(f"video {video_id!r}: array holds NaN or Inf values (after conversion to {want})")
        step = list(array.shape[1:])
        if self.step_shape is None:
            self.step_shape = step
        elif step != self.step_shape:
            per_step = ", ".join(map(str, self.step_shape))
            raise BadArrayError(f"video {video_id!r}: arrays of {self.path} are (T, {per_step}), this one is "
                                f"{array.shape}")
        grid = meta.grid
        if array.shape[0] != grid.num_snippets:
            raise BadArrayError(f"video {video_id!r}: array has {array.shape[0]} rows but its grid says "
                                f"{grid.num_snippets} snippets")
        if meta.num_frames is not None and grid.starts is None:
            expected = count_snippets(meta.num_frames, grid.window, grid.stride, grid.tail, grid.offset)
            if expected != grid.num_snippets:
                raise BadArrayError(
                    f"video {video_id!r}: a {grid.window}/{grid.stride} grid (tail {grid.tail!r}) over "
                    f"{meta.num_frames} frames gives {expected} snippets, not {grid.num_snippets}")
        return np.ascontiguousarray(array)

    def write(self, video_id: str, array: np.ndarray, meta: VideoMeta) -> None:
        """Store one video. When this returns, the video survives the process being killed."""
        shard = self.shard(video_id)
        state = self._state(shard)
        if video_id in state.done:
            raise StoreError(f"video {video_id!r} is already in {self.path}")
        array = self._check_array(video_id, array, meta)
        if state.segment is None:
            state.segment = SegmentWriter(self.path, new_segment_stem(shard), self.info.store_id, shard,
                                          self.info.compression, self.durable)
        try:
            state.segment.add(video_id, array, checksum(array), meta.to_json())
        except BaseException:
            # The segment may now hold a half-written dataset: publish only what its journal
            # vouches for, and start a fresh segment on the next write.
            segment, state.segment = state.segment, None
            segment.abandon()
            recover_segment(segment.journal_path, self.info.store_id, shard)
            raise
        state.done.add(video_id)
        state.failed.pop(video_id, None)
        if state.segment.nbytes >= self.max_segment_bytes:
            state.segment.seal()
            state.segment = None

    def fail(self, video_id: str, error: str) -> None:
        """Record that ``video_id`` failed; resume skips it unless ``retry_failed``."""
        state = self._state(self.shard(video_id))
        record = {"id": video_id, "error": str(error),
                  "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        with open(shard_file(self.path, FAILURES, self.shard(video_id), ".jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        state.failed[video_id] = str(error)

    @property
    def failed(self) -> dict[str, str]:
        """Failed videos (id -> error) of the shards this writer has touched."""
        return {vid: err for state in self._shards.values() for vid, err in state.failed.items()}

    def close(self) -> None:
        """Seal open segments and release shard locks."""
        if self._closed:
            return
        self._closed = True
        for state in self._shards.values():
            if state.segment is not None:
                state.segment.seal()
                state.segment = None
            state.lock.close()

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recover_store(path: str | os.PathLike) -> list[str]:
    """Seal what crashed writers left in ``staging/`` without writing anything new.

    Returns the recovered video ids. Fails with :class:`WriterLockedError` if a live writer
    still holds one of those shards.
    """
    path = Path(path)
    info = load_store_info(path)
    shards = sorted({int(j.name.split("-")[1]) for j in (path / STAGING).glob("shard-*.journal")})
    recovered = []
    for shard in shards:
        state = _claim_shard(path, info, shard)
        state.lock.close()
        recovered += state.recovered
    return recovered
