"""Names and places inside a store directory, and the per-array checks every writer applies.

::

    STORE/store.json                          per-store metadata (StoreInfo)
    STORE/shards/shard-SSSSS-UID.h5           sealed segments: immutable HDF5 files
    STORE/staging/shard-SSSSS-UID.h5.tmp      the segment a writer is filling
    STORE/staging/shard-SSSSS-UID.journal     its journal (one JSON line per completed video)
    STORE/failures/shard-SSSSS.jsonl          failed videos of a shard
    STORE/locks/shard-SSSSS.lock              flock()ed by the one process writing that shard
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import xxhash

STORE_JSON = "store.json"
SHARDS, STAGING, FAILURES, LOCKS = "shards", "staging", "failures", "locks"
SEGMENT_FORMAT = "mamba-tad-segment"
VIDEOS_GROUP = "videos"

_SEGMENT_RE = re.compile(r"^shard-(\d{5})-([0-9a-z-]+)\.h5$")


def shard_of(video_id: str, num_shards: int) -> int:
    """Shard of a video: the first 8 bytes of ``blake2b(utf-8 id)``, big-endian, mod ``num_shards``.

    Stable across machines, processes and Python versions (unlike ``hash()``).
    """
    digest = hashlib.blake2b(video_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def owner_rank(shard: int, world_size: int) -> int:
    """The one rank of a ``world_size``-process run that writes ``shard``."""
    return shard % world_size


def dataset_name(video_id: str) -> str:
    """HDF5 name of a video: the id percent-encoded, so ids may hold ``/`` (relative paths)."""
    if not video_id:
        raise ValueError("video id must be a non-empty string")
    return quote(video_id, safe="")


def video_id_of(name: str) -> str:
    return unquote(name)


def new_segment_stem(shard: int) -> str:
    """``shard-SSSSS-UID``: the UID sorts by creation time, then random to stay unique."""
    return f"shard-{shard:05d}-{time.time_ns():020d}-{secrets.token_hex(4)}"


def parse_segment_name(name: str) -> int | None:
    """Shard number of a sealed segment file name, or None for anything else."""
    m = _SEGMENT_RE.match(name)
    return int(m.group(1)) if m else None


def shard_file(store: Path, kind: str, shard: int, suffix: str) -> Path:
    return store / kind / f"shard-{shard:05d}{suffix}"


def checksum(array: np.ndarray) -> str:
    """Checksum of an array's C-order bytes, e.g. ``xxh3_64:0123456789abcdef``."""
    return "xxh3_64:" + xxhash.xxh3_64_hexdigest(np.ascontiguousarray(array).data)


def meta_checksum(video_id: str, data_checksum: str, meta_json: str) -> str:
    """Checksum binding a video's metadata to its id and data: XXH3-64 of
    ``utf-8(video_id) NUL data_checksum NUL utf-8(meta_json)``."""
    payload = b"\0".join(part.encode("utf-8") for part in (video_id, data_checksum, meta_json))
    return "xxh3_64:" + xxhash.xxh3_64_hexdigest(payload)


def info_checksum(fields: dict) -> str:
    """Checksum of ``store.json``'s fields (``checksum`` itself left out), as canonical JSON."""
    import json

    body = json.dumps({k: v for k, v in fields.items() if k != "checksum"}, sort_keys=True, separators=(",", ":"))
    return "xxh3_64:" + xxhash.xxh3_64_hexdigest(body.encode("utf-8"))


def has_nonfinite(array: np.ndarray) -> bool:
    """True if a floating-point array holds NaN or +-Inf.

    Looks at the IEEE exponent bits instead of calling ``np.isfinite``: numpy's float16
    arithmetic is emulated and ``isfinite`` on float16 runs at ~1 GB/s, the bit test at ~25.
    """
    if array.dtype.kind == "c":
        return has_nonfinite(array.real) or has_nonfinite(array.imag)
    if array.dtype.kind != "f" or array.size == 0:
        return False
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}.get(array.dtype.itemsize)
    if bits is None:  # long double: rare enough for the slow path
        return not bool(np.isfinite(array).all())
    info = np.finfo(array.dtype)
    exponent_mask = ((1 << info.iexp) - 1) << info.nmant
    magnitude = np.ascontiguousarray(array).view(bits) & bits((1 << (8 * array.dtype.itemsize - 1)) - 1)
    return bool(magnitude.max() >= exponent_mask)
