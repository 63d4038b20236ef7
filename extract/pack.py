"""``extract pack``: turn a folder of per-video feature files into a store.

Public feature releases ship one file per video (``.npy``, ``.npz``, ``.pt`` or ``.pkl``)
holding a ``(T, C)`` array (sometimes ``(T, 1, 1, C)``) and say the grid in a README. Packing
records that grid with every video so that ``detect`` converts indices to seconds correctly.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .cli_types import COUNT, NON_NEGATIVE, POSITIVE
from .feature_files import FORMATS, FeatureFileError, collect_files, load_feature_file
from .store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta
from .store.errors import StoreError

FpsLookup = Callable[[str], "tuple[float, float | None]"]  # video id -> (fps, duration or None)


@dataclass
class PackSpec:
    """How to read the files and which grid they follow."""

    fmt: str
    window: int
    stride: int
    tail: str = "drop"
    offset: int = 0
    key: str | None = None
    allow_pickle: bool = False
    feature: str = "features"
    model: str | None = None
    dtype: str = "keep"
    shards: int = 16
    compression: str | None = None
    workers: int = 4
    retry_failed: bool = False
    grid_fps_note: Any = None
    preprocessing: dict[str, Any] = field(default_factory=dict)


def fps_from_annotations(path: str | Path) -> FpsLookup:
    """``video id -> (fps, duration)`` from an ActivityNet-style JSON (a 'database' of videos)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    database = data.get("database", data) if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise StoreError(f"{path} has no 'database' mapping of video ids")

    def lookup(vid: str) -> tuple[float, float | None]:
        entry = database.get(vid)
        if not isinstance(entry, dict) or entry.get("fps") is None:
            raise FeatureFileError(f"video {vid!r}: no 'fps' in {path}")
        duration = entry.get("duration")
        return float(entry["fps"]), (None if duration is None else float(duration))

    return lookup


def _first_array(by_id: dict[str, Path], spec: PackSpec) -> tuple[str, list[int]]:
    """dtype (what ``dtype="keep"`` stores) and per-step shape of the first readable file: every
    other file must have that per-step shape."""
    errors = []
    for path in list(by_id.values())[:10]:
        try:
            array = load_feature_file(path, spec.fmt, spec.key, spec.allow_pickle)
            return array.dtype.name, list(array.shape[1:])
        except FeatureFileError as exc:
            errors.append(str(exc))
    raise StoreError("cannot learn the dtype, no file could be read:\n  " + "\n  ".join(errors))


def pack_files(by_id: dict[str, Path], out: str | Path, spec: PackSpec, fps_of: FpsLookup) -> dict[str, Any]:
    """Write ``by_id``'s files into the store ``out`` (this rank's share), resuming.

    Unreadable, empty or non-finite files become recorded failures. Returns a summary:
    ``{"store", "written", "skipped", "failed": {id: error}}``.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    dtype, step_shape = _first_array(by_id, spec)
    info = StoreInfo(
        feature=spec.feature, dtype=spec.dtype if spec.dtype != "keep" else dtype, step_shape=step_shape,
        num_shards=spec.shards, compression=spec.compression, model={"name": spec.model, "sha256": None},
        preprocessing={"imported_from": spec.fmt, "key": spec.key, **spec.preprocessing},
        grid={"window": spec.window, "stride": spec.stride, "tail": spec.tail, "offset": spec.offset,
              "fps": spec.grid_fps_note},
        recipe={"extractor": "unknown", "source": f"feature set {spec.feature!r} imported by extract pack from "
                                                  f"{spec.fmt} files; model {spec.model or 'not named'}"})

    def load_one(vid: str) -> tuple[str, Any]:
        try:
            fps, duration = fps_of(vid)
            array = load_feature_file(by_id[vid], spec.fmt, spec.key, spec.allow_pickle)
            grid = SnippetGrid(window=spec.window, stride=spec.stride, fps=fps, num_snippets=array.shape[0],
                               offset=spec.offset, tail=spec.tail)
            return vid, (array, VideoMeta(grid=grid, source=str(by_id[vid]), fps=fps, duration=duration))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recorded as that video's failure
            return vid, exc

    with StoreWriter(out, info, retry_failed=spec.retry_failed) as writer:
        todo = writer.todo(by_id)
        skipped = sum(writer.owns(v) for v in by_id) - len(todo)
        jobs = Parallel(n_jobs=spec.workers, prefer="threads", return_as="generator")(
            delayed(load_one)(vid) for vid in todo)
        written = 0
        for vid, result in tqdm(jobs, total=len(todo), desc="pack", unit="video", disable=None):
            if isinstance(result, Exception):
                writer.fail(vid, f"{type(result).__name__}: {result}")
                continue
            try:
                writer.write(vid, *result)
                written += 1
            except StoreError as exc:
                writer.fail(vid, f"{by_id[vid]}: {exc}")
        failed = writer.failed
    return {"store": str(out), "written": written, "skipped": skipped, "failed": failed}


def print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"packed {summary['written']} videos into {summary['store']} ({summary['skipped']} already there, "
          f"{len(summary['failed'])} failed)")
    for vid, error in summary["failed"].items():
        print(f"  failed {vid}: {error}", file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pack", help="convert a folder of per-video feature files into a store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__ + """
examples:
  python -m extract pack --from thumos_i3d/ --format npy --out stores/thumos_i3d \\
      --window 16 --stride 4 --fps-from thumos14.json
  python -m extract pack --from iv2/ --format pt --strip-suffix _spatial_feature \\
      --out stores/thumos_iv2 --window 16 --stride 4 --fps 30
""")
    p.add_argument("--from", dest="src", required=True, type=Path, help="folder of feature files (searched recursively)")
    p.add_argument("--format", required=True, choices=FORMATS, help="file format of the features")
    p.add_argument("--out", required=True, type=Path, help="store directory to create or resume")
    p.add_argument("--window", required=True, type=COUNT, help="snippet length in frames")
    p.add_argument("--stride", required=True, type=COUNT, help="snippet stride in frames")
    fps = p.add_mutually_exclusive_group(required=True)
    fps.add_argument("--fps", type=POSITIVE, help="frame rate of the grid, the same for every video")
    fps.add_argument("--fps-from", help="annotation JSON (ActivityNet-like 'database') with per-video fps")
    p.add_argument("--tail", default="drop", choices=("drop", "pad", "truncate"), help="tail policy of the release")
    p.add_argument("--offset", type=NON_NEGATIVE, default=0, help="start frame of the first snippet (default 0)")
    p.add_argument("--key", help="array name inside .npz / dict-valued .pt / .pkl files")
    p.add_argument("--strip-prefix", default="", help="file-name prefix to drop from video ids, e.g. v_")
    p.add_argument("--strip-suffix", default="", help="file-name suffix to drop from video ids, e.g. _spatial_feature")
    p.add_argument("--feature", help="feature name recorded in the store (default: the folder name)")
    p.add_argument("--model", help="model that produced the features, recorded in the store")
    p.add_argument("--dtype", default="keep", help="storage dtype, e.g. float16 (default: that of the files)")
    p.add_argument("--shards", type=COUNT, default=16, help="number of shards of a new store (default 16)")
    p.add_argument("--compression", default="none", choices=("none", "lzf", "gzip"), help="HDF5 compression")
    p.add_argument("--allow-pickle", action="store_true", help="trust .pkl files (unpickling runs code)")
    p.add_argument("--workers", type=NON_NEGATIVE, default=4, help="threads loading files (default 4)")
    p.add_argument("--retry-failed", action="store_true", help="try again videos that failed in an earlier run")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.src.is_dir():
        raise SystemExit(f"error: --from {args.src} is not a directory")
    try:
        by_id = collect_files(args.src, args.format, args.strip_prefix, args.strip_suffix)
        if not by_id:
            raise SystemExit(f"error: no *.{args.format} files under {args.src}")
        fps_of: FpsLookup = ((lambda vid: (args.fps, None)) if args.fps is not None
                             else fps_from_annotations(args.fps_from))
        spec = PackSpec(fmt=args.format, window=args.window, stride=args.stride, tail=args.tail,
                        offset=args.offset, key=args.key, allow_pickle=args.allow_pickle,
                        feature=args.feature or args.src.resolve().name, model=args.model, dtype=args.dtype,
                        shards=args.shards, compression=None if args.compression == "none" else args.compression,
                        workers=args.workers, retry_failed=args.retry_failed,
                        grid_fps_note=args.fps if args.fps is not None else "per video, from annotations")
        summary = pack_files(by_id, args.out, spec, fps_of)
    except (FeatureFileError, StoreError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print_summary(summary, args.json)
    return 1 if summary["failed"] and not args.keep_going else 0
