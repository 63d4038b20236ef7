"""Named input streams: each a list of stores on one snippet grid, read per video.

A stream's stores hold one array per video. ``(T, C)`` arrays are *features*: served
channel-first ``(C, T)`` float32, several stores concatenated on channels in order (RGB‖flow).
Any other rank is served time-first as stored, one store per stream: ``(T, H, W)`` heatmaps,
``(T, K, 3)`` keypoints, ``(N, H, W, 3)`` uint8 frames. Every stream of a video must sit on
the same grid, so that a crop cuts all of them at the same time window. The one exception: a
per-frame store (window 1, stride 1, e.g. skeleton heatmaps) beside snippet features at the
same frame rate is cut into the features' windows, ``(T, window, ...)``, frames past its end
repeating its last (the extractors' ``pad`` tail).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from extract.annotations import AnnotationSet
from extract.store import CorruptVideoError, FeatureStore, SnippetGrid, open_store

from ..errors import DataError


def time_axis(x: torch.Tensor) -> int:
    """Features ``(C, T)`` run along the last axis; every other stream along the first."""
    return 1 if x.ndim == 2 else 0


def slice_time(streams: dict[str, torch.Tensor], start: int, stop: int | None = None,
               step: int = 1) -> dict[str, torch.Tensor]:
    """Every stream cut to steps ``start:stop:step`` of its time axis."""
    out = {}
    for name, x in streams.items():
        index = [slice(None)] * x.ndim
        index[time_axis(x)] = slice(start, stop, step)
        out[name] = x[tuple(index)]
    return out


def _grid_key(grid: SnippetGrid) -> tuple:
    return (grid.window, grid.stride, round(grid.fps, 6), grid.offset, grid.starts)


def _describe(grid: SnippetGrid) -> str:
    return f"window {grid.window} stride {grid.stride} fps {grid.fps:g} offset {grid.offset}"


class StreamSet:
    """Streams by name, e.g. ``{"features": [rgb_store, flow_store], "heatmaps": [skeleton_store]}``."""

    def __init__(self, stores: dict[str, list[FeatureStore]]) -> None:
        if not stores or any(not s for s in stores.values()):
            raise DataError(f"every stream needs at least one store, got {stores}")
        self.stores = stores

    @classmethod
    def open(cls, paths: dict[str, list[str]]) -> "StreamSet":
        return cls({name: [open_store(p) for p in group] for name, group in paths.items()})

    @property
    def ids(self) -> list[str]:
        """The videos of the first store of the first stream."""
        return next(iter(self.stores.values()))[0].ids

    def recipes(self) -> dict[str, list[dict[str, Any]]]:
        """What made each store of each stream (``extract.recipe``), as a checkpoint records it."""
        return {name: [{"store": str(s.path), "feature": s.info.feature, "recipe": s.info.recipe or
                        {"extractor": "unknown", "source": "a store made before recipes were recorded"},
                        "model": s.info.model, "grid": s.info.grid, "preprocessing": s.info.preprocessing,
                        "dtype": s.info.dtype, "step_shape": s.info.step_shape} for s in group]
                for name, group in self.stores.items()}

    def require(self, video_ids: list[str]) -> None:
        missing = [v for v in video_ids if any(v not in s for group in self.stores.values() for s in group)]
        if missing:
            paths = [str(s.path) for group in self.stores.values() for s in group]
            raise DataError(f"{len(missing)} videos have no features in {paths}, e.g. {missing[:3]}; "
                            f"run `python -m extract annotations check` with --store")

    def step_shapes(self, vid: str) -> dict[str, tuple[int, ...]]:
        """The shape of one step of each stream of video ``vid`` as :meth:`read` gives it, from the
        stores' shapes and grids (no data read): ``(C,)`` for (T, C) features (concatenated
        stores add up), ``(window, ...)`` for a per-frame store cut into the features' windows,
        else the store's own step shape."""
        grids = {store.path: store.grid(vid) for group in self.stores.values() for store in group}
        reference = next((g for g in grids.values() if not _per_frame(g)), None)
        out = {}
        for name, group in self.stores.items():
            shapes = [s.shape(vid) for s in group]
            if reference is not None and len(group) == 1 and _per_frame(grids[group[0].path]):
                out[name] = (int(reference.window), *shapes[0][1:])
            elif all(len(shape) == 2 for shape in shapes):
                out[name] = (sum(shape[1] for shape in shapes),)
            else:
                out[name] = tuple(shapes[0][1:])
        return out

    def read(self, vid: str) -> tuple[dict[str, torch.Tensor], SnippetGrid]:
        """The video's streams, cut to the length they share, and their common grid."""
        arrays, grids = {}, []
        store_grids = {store.path: store.grid(vid) for group in self.stores.values() for store in group}
        # per-frame stores are cut into the windows of the first store that is not per-frame
        reference = next((g for g in store_grids.values() if not _per_frame(g)), None)
        for name, group in self.stores.items():
            parts = [s.read(vid) for s in group]
            own = store_grids[group[0].path]
            if reference is not None and len(group) == 1 and _per_frame(own):
                arrays[name] = window_frames(parts[0], reference, f"video {vid!r}: {group[0].path}", own.fps)
                continue
            grids += [(s, store_grids[s.path]) for s in group]
            if all(p.ndim == 2 for p in parts):
                length = min(p.shape[0] for p in parts)
                if max(p.shape[0] for p in parts) - length > 2:
                    raise DataError(f"video {vid!r}: the stores of stream {name!r} disagree on its length "
                                    f"{[p.shape[0] for p in parts]}")
                arrays[name] = np.concatenate([p[:length] for p in parts], axis=1).astype(np.float32).T
            elif len(parts) == 1:
                arrays[name] = parts[0]
            else:
                raise DataError(f"video {vid!r}: stream {name!r} concatenates {len(parts)} stores, but only "
                                f"(T, C) features concatenate; shapes {[p.shape for p in parts]}")
        (first, grid), *rest = grids
        for store, other in rest:
            if _grid_key(other) != _grid_key(grid):
                raise DataError(f"video {vid!r}: {first.path} and {store.path} use different snippet grids "
                                f"({_describe(grid)} vs {_describe(other)})")
        tensors = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
        length = min(x.shape[time_axis(x)] for x in tensors.values())
        return slice_time(tensors, 0, length), grid


def _per_frame(grid: SnippetGrid) -> bool:
    return grid.window == 1 and grid.stride == 1


def window_frames(frames: np.ndarray, grid: SnippetGrid, where: str, fps: float) -> np.ndarray:
    """Per-frame ``(F, ...)`` -> ``(T, window, ...)`` at ``grid``'s snippet start frames."""
    if not np.isclose(fps, grid.fps, rtol=1e-6):
        raise DataError(f"{where}: its frames are at {fps:g} fps, the features' grid at {grid.fps:g} fps")
    starts = grid.start_frames()
    if len(frames) <= starts[-1]:
        raise DataError(f"{where}: {len(frames)} frames, but the features' last snippet starts at frame {starts[-1]}")
    index = np.minimum(starts[:, None] + np.arange(int(grid.window)), len(frames) - 1)
    return frames[index]


@dataclass
class VideoItem:
    """One video (or a crop of it) with its streams and task targets."""

    video_id: str
    streams: dict[str, torch.Tensor]
    grid: SnippetGrid
    duration: float
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    offset: int = 0              # first step of a crop, on the (downsampled) grid
    downsample: int = 1

    @property
    def length(self) -> int:
        x = next(iter(self.streams.values()))
        return x.shape[time_axis(x)]


class StreamDataset(torch.utils.data.Dataset):
    """Videos of ``video_ids``: their streams, annotations and duration. Random choices (crops)
    draw on :meth:`rng`, seeded by (seed, epoch, index): runs and resumed runs see the same."""

    def __init__(self, streams: StreamSet, annotations: AnnotationSet, video_ids: list[str], classes: list[str], *,
                 training: bool, seed: int = 0, skip_corrupt: bool = False) -> None:
        streams.require(video_ids)
        self.streams, self.annotations, self.video_ids = streams, annotations, list(video_ids)
        self.classes, self.training, self.seed, self.epoch = list(classes), training, seed, 0
        self.skip_corrupt = skip_corrupt and training

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.video_ids)

    def steps(self, index: int) -> int:
        """Video ``index``'s length on its grid, from the stores' metadata (no array is read)."""
        return next(iter(self.streams.stores.values()))[0].grid(self.video_ids[index]).num_snippets

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def read(self, index: int) -> VideoItem:
        """Video ``index``; with ``skip_corrupt`` (training only), a video failing its checksum is
        replaced by the next one of the split, with a warning naming it."""
        for step in range(len(self.video_ids)):
            vid = self.video_ids[(index + step) % len(self.video_ids)]
            try:
                streams, grid = self.streams.read(vid)
                break
            except CorruptVideoError as exc:
                if not self.skip_corrupt:
                    raise
                warnings.warn(f"skipping a corrupt video (data.skip_corrupt): {exc}", stacklevel=2)
        else:
            raise DataError(f"every video of the split failed its checksum, e.g. {vid!r}")
        video = self.annotations.database[vid]
        duration = video.duration if video.duration is not None else float(grid.index_to_seconds(grid.num_snippets))
        return VideoItem(vid, streams, grid, duration)


def pad_batch(items: list[VideoItem], length: int) -> dict[str, torch.Tensor]:
    """Every stream padded with zeros to ``length`` steps, stacked, plus ``mask (B, T)``."""
    inputs = {}
    for name, first in items[0].streams.items():
        axis = time_axis(first)
        shape = list(first.shape)
        shape[axis] = length
        out = first.new_zeros((len(items), *shape))
        for i, item in enumerate(items):
            x = item.streams[name]
            index = [i] + [slice(None)] * x.ndim
            index[1 + axis] = slice(0, x.shape[axis])
            out[tuple(index)] = x
        inputs[name] = out
    mask = torch.zeros(len(items), length, dtype=torch.bool)
    for i, item in enumerate(items):
        mask[i, : item.length] = True
    inputs["mask"] = mask
    return inputs


def padded_length(items: list[VideoItem], pad_to: int | None, multiple: int) -> int:
    """``pad_to`` (training) when every item fits, else the longest item; rounded up to ``multiple``."""
    longest = max(it.length for it in items)
    length = pad_to if pad_to is not None and pad_to >= longest else longest
    return -(-length // multiple) * multiple
