"""One segment: an HDF5 file of videos that is filled under ``staging/`` and then sealed.

HDF5 files are not crash-safe while open for writing: a process killed mid-write can leave
the file's metadata (the group B-tree, the superblock) half updated and the whole file
unreadable. A segment therefore never becomes visible until it is closed and renamed into
``shards/`` (an atomic ``os.replace``), and while it is open, every completed video is
recorded in a journal beside it: one JSON line with the video's metadata, checksum and the
byte extents where HDF5 put its raw data. HDF5 never moves raw data once written, so after a
crash :func:`recover_segment` rebuilds a fresh segment from those extents, verifying each
checksum, without trusting the crashed file's metadata at all. Writes stay single-pass; the
journal costs one short line per video.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .layout import SEGMENT_FORMAT, SHARDS, STAGING, VIDEOS_GROUP, checksum, dataset_name, meta_checksum
from .meta import FORMAT_VERSION

# Rows per chunk of compressed datasets: big enough for the compressor, small enough that
# reading a random crop of a long video does not inflate the whole array.
_CHUNK_ROWS = 256


def _dataset_options(shape: tuple[int, ...], compression: str | None) -> dict[str, Any]:
    if compression is None:
        return {}
    chunks = (min(shape[0], _CHUNK_ROWS), *shape[1:])
    if compression == "lzf":
        return {"chunks": chunks, "compression": "lzf"}
    level = int(compression.split(":", 1)[1]) if ":" in compression else 4
    return {"chunks": chunks, "compression": "gzip", "compression_opts": level}


def _raw_extents(dset: h5py.Dataset) -> list[list[Any]]:
    """``[[file_offset, nbytes, filter_mask, chunk_coords], ...]`` of a dataset's raw data."""
    if dset.chunks is None:
        return [[int(dset.id.get_offset()), int(dset.id.get_storage_size()), 0, None]]
    extents = []
    for i in range(dset.id.get_num_chunks()):
        info = dset.id.get_chunk_info(i)
        extents.append([int(info.byte_offset), int(info.size), int(info.filter_mask), list(info.chunk_offset)])
    return extents


def _open_segment_file(path: Path, mode: str, store_id: str, shard: int) -> h5py.File:
    f = h5py.File(path, mode, locking=False)
    f.attrs["format"] = SEGMENT_FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["store_id"] = store_id
    f.attrs["shard"] = shard
    f.create_group(VIDEOS_GROUP)
    return f


def _set_video_attrs(dset: h5py.Dataset, video_id: str, digest: str, meta_json: str) -> None:
    dset.attrs["video_id"] = video_id
    dset.attrs["checksum"] = digest
    dset.attrs["meta"] = meta_json
    dset.attrs["meta_checksum"] = meta_checksum(video_id, digest, meta_json)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    """Fills ``staging/STEM.h5.tmp`` and its journal; :meth:`seal` publishes it to ``shards/``.

    ``durable=True`` also fsyncs after every video, protecting against power loss and not just
    process death, at the price of waiting for the disk.
    """

    def __init__(self, store: Path, stem: str, store_id: str, shard: int,
                 compression: str | None = None, durable: bool = False) -> None:
        self.store, self.stem, self.compression, self.durable = store, stem, compression, durable
        self.tmp_path = store / STAGING / f"{stem}.h5.tmp"
        self.journal_path = store / STAGING / f"{stem}.journal"
        self.sealed_path = store / SHARDS / f"{stem}.h5"
        self.nbytes = 0
        self.count = 0
        # The journal exists before the HDF5 file, so a tmp file is never left without one.
        self._journal = open(self.journal_path, "x", encoding="utf-8")
        self._file = _open_segment_file(self.tmp_path, "x", store_id, shard)
        self._videos = self._file[VIDEOS_GROUP]

    def add(self, video_id: str, array: np.ndarray, digest: str, meta_json: str) -> None:
        """Write one video and journal it. When this returns the video survives a crash."""
        name = dataset_name(video_id)
        dset = self._videos.create_dataset(name, data=array, **_dataset_options(array.shape, self.compression))
        _set_video_attrs(dset, video_id, digest, meta_json)
        self._file.flush()
        record = {"id": video_id, "name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                  "checksum": digest, "meta": meta_json, "chunks": list(dset.chunks) if dset.chunks else None,
                  "compression": self.compression, "extents": _raw_extents(dset)}
        if self.durable:
            _fsync_path(self.tmp_path)
        self._journal.write(json.dumps(record) + "\n")
        self._journal.flush()
        if self.durable:
            os.fsync(self._journal.fileno())
        self.nbytes += array.nbytes
        self.count += 1

    def seal(self) -> Path:
        """Close the HDF5 file and move it into ``shards/``; the journal is then dropped."""
        self._file.close()
        if self.durable:
            _fsync_path(self.tmp_path)
        os.replace(self.tmp_path, self.sealed_path)
        self._journal.close()
        self.journal_path.unlink()
        return self.sealed_path

    def abandon(self) -> None:
        """Close without sealing (the journal stays, so the next writer recovers the segment)."""
        self._journal.close()
        try:
            self._file.close()
        except Exception:  # noqa: BLE001 - the file may be broken; recovery does not need it closed cleanly
            pass


@dataclass
class Recovery:
    """What :func:`recover_segment` made of one crashed segment."""

    journal: Path
    sealed: Path | None = None
    recovered: list[str] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)  # (video id, why)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Journal records, stopping at a torn last line (the process died while appending it)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not line.endswith("\n"):
                break
            records.append(record)
    return records


def _read_extent(fd: int, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError(f"expected {size} bytes at offset {offset}, file ends after {len(data)}")
    return data


def _rebuild_video(videos: h5py.Group, record: dict[str, Any], fd: int) -> None:
    dtype, shape = np.dtype(record["dtype"]), tuple(record["shape"])
    if record["chunks"] is None:
        (offset, size, _, _), = record["extents"]
        array = np.frombuffer(_read_extent(fd, offset, size), dtype=dtype).reshape(shape)
        dset = videos.create_dataset(record["name"], data=array)
    else:
        options = _dataset_options(shape, record["compression"])
        options["chunks"] = tuple(record["chunks"])
        dset = videos.create_dataset(record["name"], shape=shape, dtype=dtype, **options)
        for offset, size, filter_mask, coords in record["extents"]:
            dset.id.write_direct_chunk(tuple(coords), _read_extent(fd, offset, size), filter_mask)
    got = checksum(dset[()])
    if got != record["checksum"]:
        del videos[record["name"]]
        raise ValueError(f"checksum mismatch: journal says {record['checksum']}, data gives {got}")
    _set_video_attrs(dset, record["id"], record["checksum"], record["meta"])


def recover_segment(journal: Path, store_id: str, shard: int) -> Recovery:
    """Turn the journal (and raw data) of a crashed segment into a sealed segment.

    Idempotent: a crash during recovery leaves the journal in place and the next call
    redoes it; if the segment was already sealed (crash between rename and cleanup), only
    the leftovers are removed. The caller must hold the shard's lock.
    """
    store = journal.parent.parent
    stem = journal.name[: -len(".journal")]
    tmp = journal.with_name(f"{stem}.h5.tmp")
    sealed = store / SHARDS / f"{stem}.h5"
    result = Recovery(journal=journal)
    records = read_journal(journal)
    if sealed.exists():
        result.sealed, result.recovered = sealed, [r["id"] for r in records]
    elif records:
        rebuilt = journal.with_name(f"{stem}.rec.tmp")
        fd = os.open(tmp, os.O_RDONLY) if tmp.exists() else None
        try:
            with _open_segment_file(rebuilt, "w", store_id, shard) as out:
                for record in records:
                    if fd is None:
                        result.lost.append((record["id"], f"segment data file {tmp.name} is missing"))
                        continue
                    try:
                        _rebuild_video(out[VIDEOS_GROUP], record, fd)
                        result.recovered.append(record["id"])
                    except (OSError, ValueError) as exc:
                        result.lost.append((record["id"], str(exc)))
        finally:
            if fd is not None:
                os.close(fd)
        if result.recovered:
            os.replace(rebuilt, sealed)
            result.sealed = sealed
        else:
            rebuilt.unlink()
    tmp.unlink(missing_ok=True)
    journal.unlink()
    return result
