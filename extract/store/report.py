"""What ``extract inspect`` and ``extract verify`` compute about a store."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any, Callable, Iterable

import numpy as np

from .layout import checksum
from .reader import FeatureStore
from .segment import read_journal


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def summarize(store: FeatureStore) -> dict[str, Any]:
    """Everything ``inspect`` shows, as JSON-ready data."""
    lengths, trailing, grids, per_shard = [], Counter(), Counter(), defaultdict(lambda: [0, 0, 0])
    fps_values, warned = [], {}
    for seg in store.segments:
        row = per_shard[seg.shard]
        row[0] += 1
        row[1] += len(seg.video_ids)
        row[2] += seg.size
    for vid in store.ids:
        shape = store.shape(vid)
        lengths.append(shape[0])
        trailing[str(list(shape[1:]))] += 1
        grid = store.grid(vid)
        grids[f"window {grid.window}, stride {grid.stride}, offset {grid.offset}, tail {grid.tail}"] += 1
        fps_values.append(grid.fps)
        warnings = store.meta(vid).extra.get("warnings")
        if warnings:
            warned[vid] = warnings
    unsealed = {j.name: len(read_journal(j)) for j in store.unsealed}
    return {
        "path": str(store.path),
        "info": {k: v for k, v in store.info.__dict__.items()},
        "videos": {"ok": len(store.ids), "failed": len(store.failures),
                   "in_unsealed_segments": sum(unsealed.values())},
        "rows": _stats(lengths),
        "trailing_dims": dict(trailing),
        "grids": dict(grids),
        "grid_fps": _stats(fps_values),
        "size_bytes": sum(seg.size for seg in store.segments),
        "segments": len(store.segments),
        "shards": {str(s): {"segments": r[0], "videos": r[1], "bytes": r[2]} for s, r in sorted(per_shard.items())},
        "failures": store.failures,
        "warnings": warned,                 # e.g. decoded short of the container's length
        "unsealed": unsealed,
        "problems": list(store.problems),
    }


def verify(store: FeatureStore, progress: Callable[[Iterable[str]], Iterable[str]] = iter) -> list[str]:
    """Read every array and report every problem found (an empty list means a sound store)."""
    problems = list(store.problems)
    for vid in progress(store.ids):
        try:
            array = store.read(vid, verify=False)  # compared below, to report, not raise
            expected = store.checksum(vid)
            meta = store.meta(vid)  # checks the metadata's own checksum
        except Exception as exc:  # noqa: BLE001 - any read failure is a finding, not a crash
            problems.append(f"video {vid!r}: cannot be read: {exc}")
            continue
        got = checksum(array)
        if got != expected:
            problems.append(f"video {vid!r}: checksum mismatch (stored {expected}, data {got}) in "
                            f"{store.segment_of(vid).name}")
        if array.dtype.kind in "fc":
            bad = int(np.count_nonzero(~np.isfinite(array)))
            if bad:
                problems.append(f"video {vid!r}: {bad} NaN/Inf values")
        if array.shape[0] != meta.grid.num_snippets:
            problems.append(f"video {vid!r}: {array.shape[0]} rows but grid says {meta.grid.num_snippets}")
    for vid, error in store.failures.items():
        problems.append(f"video {vid!r} failed: {error}")
    for journal in store.unsealed:
        problems.append(f"{journal.name}: a writer is running or was killed; its {len(read_journal(journal))} "
                        f"videos are sealed when it finishes, when the extraction is resumed, or by "
                        f"`python -m extract recover {store.path}`")
    return problems


def _frames(meta) -> int | None:
    """Frames a video's features cover: the decoded count, else what a per-frame grid implies."""
    if meta.num_frames is not None:
        return meta.num_frames
    grid = meta.grid
    return grid.num_snippets if grid.window == 1 and grid.stride == 1 else None


def pair_problems(a: FeatureStore, b: FeatureStore) -> list[str]:
    """Why two stores of the same videos (e.g. appearance features and skeleton heatmaps) do not
    cover the same frames: videos in one only, different frame rates, different frame counts."""
    problems = [f"video {vid!r}: in {a.path} only" for vid in sorted(set(a.ids) - set(b.ids))]
    problems += [f"video {vid!r}: in {b.path} only" for vid in sorted(set(b.ids) - set(a.ids))]
    for vid in sorted(set(a.ids) & set(b.ids)):
        ma, mb = a.meta(vid), b.meta(vid)
        if not math.isclose(ma.grid.fps, mb.grid.fps, rel_tol=1e-6):
            problems.append(f"video {vid!r}: frame rates differ ({ma.grid.fps:g} vs {mb.grid.fps:g} fps)")
        fa, fb = _frames(ma), _frames(mb)
        if fa is not None and fb is not None and fa != fb:
            problems.append(f"video {vid!r}: frame counts differ ({fa} in {a.path.name} vs {fb} in {b.path.name})")
    return problems
