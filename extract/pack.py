"""``extract pack``: turn a folder of per-video feature files into a store.

Public feature releases ship one file per video (``.npy``, ``.npz``, ``.pt`` or ``.pkl``)
holding a ``(T, C)`` array (sometimes ``(T, 1, 1, C)``) and say the grid in a README. Packing
records that grid with every video so that ``detect`` converts indices to seconds correctly.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta
from .store.errors import StoreError

FORMATS = ("npy", "npz", "pt", "pkl")


class FeatureFileError(ValueError):
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


def video_id_for(path: Path, root: Path, fmt: str, strip_suffix: str = "") -> str:
    """``sub/dir/name`` for ``ROOT/sub/dir/name<suffix>.<fmt>``: unique, stable, readable."""
    rel = path.relative_to(root).as_posix()[: -len(fmt) - 1]
    if strip_suffix and rel.endswith(strip_suffix):
        rel = rel[: -len(strip_suffix)]
    return rel


def _fps_lookup(args: argparse.Namespace) -> Callable[[str], tuple[float, float | None]]:
    """``video id -> (fps, duration or None)`` from --fps or --fps-from."""
    if args.fps is not None:
        return lambda vid: (args.fps, None)
    try:
        data = json.loads(Path(args.fps_from).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: cannot read --fps-from {args.fps_from}: {exc}") from None
    database = data.get("database", data) if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise SystemExit(f"error: {args.fps_from} has no 'database' mapping of video ids")

    def lookup(vid: str) -> tuple[float, float | None]:
        entry = database.get(vid)
        if not isinstance(entry, dict) or "fps" not in entry:
            raise FeatureFileError(f"video {vid!r}: no 'fps' in {args.fps_from}")
        return float(entry["fps"]), (float(entry["duration"]) if "duration" in entry else None)

    return lookup


def _first_dtype(by_id: dict[str, Path], load: Callable[[str], np.ndarray]) -> str:
    """dtype of the first readable file: what ``--dtype keep`` stores."""
    errors = []
    for vid in by_id:
        try:
            return load(vid).dtype.name
        except FeatureFileError as exc:
            errors.append(str(exc))
            if len(errors) == 10:
                break
    raise SystemExit("error: cannot learn the dtype, no file could be read:\n  " + "\n  ".join(errors))


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
    p.add_argument("--window", required=True, type=int, help="snippet length in frames")
    p.add_argument("--stride", required=True, type=int, help="snippet stride in frames")
    fps = p.add_mutually_exclusive_group(required=True)
    fps.add_argument("--fps", type=float, help="frame rate of the grid, the same for every video")
    fps.add_argument("--fps-from", help="annotation JSON (ActivityNet-like 'database') with per-video fps")
    p.add_argument("--tail", default="drop", choices=("drop", "pad", "truncate"), help="tail policy of the release")
    p.add_argument("--offset", type=int, default=0, help="start frame of the first snippet (default 0)")
    p.add_argument("--key", help="array name inside .npz / dict-valued .pt / .pkl files")
    p.add_argument("--strip-suffix", default="", help="file-name suffix to drop from video ids, e.g. _spatial_feature")
    p.add_argument("--feature", help="feature name recorded in the store (default: the folder name)")
    p.add_argument("--model", help="model that produced the features, recorded in the store")
    p.add_argument("--dtype", default="keep", help="storage dtype, e.g. float16 (default: that of the files)")
    p.add_argument("--shards", type=int, default=16, help="number of shards of a new store (default 16)")
    p.add_argument("--compression", default="none", choices=("none", "lzf", "gzip"), help="HDF5 compression")
    p.add_argument("--allow-pickle", action="store_true", help="trust .pkl files (unpickling runs code)")
    p.add_argument("--workers", type=int, default=4, help="threads loading files (default 4)")
    p.add_argument("--retry-failed", action="store_true", help="try again videos that failed in an earlier run")
    p.add_argument("--keep-going", action="store_true", help="exit 0 even if some videos failed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from joblib import Parallel, delayed
    from tqdm import tqdm

    src = args.src
    if not src.is_dir():
        raise SystemExit(f"error: --from {src} is not a directory")
    files = sorted(p for p in src.rglob(f"*.{args.format}") if p.is_file())
    if not files:
        raise SystemExit(f"error: no *.{args.format} files under {src}")
    by_id: dict[str, Path] = {}
    for f in files:
        vid = video_id_for(f, src, args.format, args.strip_suffix)
        if vid in by_id:
            raise SystemExit(f"error: {f} and {by_id[vid]} both map to video id {vid!r}")
        by_id[vid] = f
    fps_of = _fps_lookup(args)

    def load(vid: str) -> np.ndarray:
        return load_feature_file(by_id[vid], args.format, args.key, args.allow_pickle)

    dtype = args.dtype if args.dtype != "keep" else _first_dtype(by_id, load)
    info = StoreInfo(
        feature=args.feature or src.resolve().name, dtype=dtype, num_shards=args.shards,
        compression=None if args.compression == "none" else args.compression,
        model={"name": args.model, "sha256": None},
        preprocessing={"imported_from": args.format, "key": args.key},
        grid={"window": args.window, "stride": args.stride, "tail": args.tail, "offset": args.offset,
              "fps": args.fps if args.fps is not None else "per video, from annotations"},
    )
    try:
        writer = StoreWriter(args.out, info, retry_failed=args.retry_failed)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from None

    def load_one(vid: str) -> tuple[str, Any]:
        try:
            fps, duration = fps_of(vid)
            array = load(vid)
            grid = SnippetGrid(window=args.window, stride=args.stride, fps=fps, num_snippets=array.shape[0],
                               offset=args.offset, tail=args.tail)
            return vid, (array, VideoMeta(grid=grid, source=str(by_id[vid]), fps=fps, duration=duration))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recorded as that video's failure
            return vid, exc

    with writer:
        todo = writer.todo(by_id)
        skipped = len([v for v in by_id if writer.owns(v)]) - len(todo)
        jobs = Parallel(n_jobs=args.workers, prefer="threads", return_as="generator")(
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
                writer.fail(vid, str(exc))
        failed = writer.failed
    summary = {"store": str(args.out), "written": written, "skipped": skipped, "failed": failed}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"packed {written} videos into {args.out} ({skipped} already there, {len(failed)} failed)")
        for vid, error in failed.items():
            print(f"  failed {vid}: {error}", file=sys.stderr)
    return 1 if failed and not args.keep_going else 0
