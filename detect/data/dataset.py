"""Videos for detection: features from one or more stores, labels on the feature grid.

Each item is one video: features ``(C, T)`` (stores concatenated on channels, e.g. RGB then
flow), ground-truth segments converted from seconds to fractional feature indices through the
store's snippet grid (:meth:`SnippetGrid.seconds_to_index`), and class ids. Training items are
randomly cropped to at most ``max_seq_len`` steps, keeping at least one action that overlaps the
crop by ``trunc_thresh`` (ActionFormer's ``truncate_feats``); crops are drawn from a generator
seeded by (seed, epoch, index), so runs and resumed runs see the same crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from extract.annotations import AnnotationSet
from extract.store import FeatureStore, SnippetGrid


class DataError(ValueError):
    """Inconsistent stores or annotations; the message names the video."""


@dataclass
class VideoItem:
    video_id: str
    feats: torch.Tensor          # (C, T) float32
    segments: torch.Tensor       # (M, 2) feature-index units, relative to ``offset``
    labels: torch.Tensor         # (M,) int64
    grid: SnippetGrid
    duration: float
    offset: int = 0              # first feature index of a crop
    downsample: int = 1


def _grid_key(grid: SnippetGrid) -> tuple:
    return (grid.window, grid.stride, round(grid.fps, 6), grid.offset, grid.starts)


class DetectionDataset(torch.utils.data.Dataset):
    def __init__(self, stores: list[FeatureStore], annotations: AnnotationSet, video_ids: list[str],
                 classes: list[str], *, training: bool, max_seq_len: int = 2304, trunc_thresh: float = 0.5,
                 crop_ratio: tuple[float, float] | None = (0.9, 1.0), downsample_rate: int = 1,
                 resize_to: int | None = None, class_agnostic: bool = False, seed: int = 0) -> None:
        missing = [vid for vid in video_ids if any(vid not in s for s in stores)]
        if missing:
            raise DataError(f"{len(missing)} videos have no features in {[str(s.path) for s in stores]}, "
                            f"e.g. {missing[:3]}; run `python -m extract annotations check` with --store")
        self.stores, self.annotations, self.video_ids = stores, annotations, list(video_ids)
        # Class-agnostic training (ActivityNet, HACS): every class is "an action", id 0.
        self.class_index = {name: 0 if class_agnostic else i for i, name in enumerate(classes)}
        self.resize_to = resize_to
        self.training, self.max_seq_len, self.trunc_thresh = training, max_seq_len, trunc_thresh
        self.crop_ratio, self.downsample_rate, self.seed = crop_ratio, downsample_rate, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.video_ids)

    def _features(self, vid: str) -> tuple[np.ndarray, SnippetGrid]:
        arrays = [s.read(vid) for s in self.stores]
        grids = [s.grid(vid) for s in self.stores]
        if len({_grid_key(g) for g in grids}) > 1:
            raise DataError(f"video {vid!r}: the stores use different snippet grids {[_grid_key(g) for g in grids]}")
        for a, s in zip(arrays, self.stores):
            if a.ndim != 2:
                raise DataError(f"video {vid!r}: {s.path} holds shape {a.shape}, detection needs (T, C) features")
        length = min(a.shape[0] for a in arrays)
        if max(a.shape[0] for a in arrays) - length > 2:
            raise DataError(f"video {vid!r}: the stores disagree on its length {[a.shape[0] for a in arrays]}")
        feats = np.concatenate([a[:length] for a in arrays], axis=1).astype(np.float32)
        return feats.T, grids[0]

    def __getitem__(self, index: int) -> VideoItem:
        vid = self.video_ids[index]
        feats, grid = self._features(vid)
        video = self.annotations.database[vid]
        duration = video.duration if video.duration is not None else float(grid.index_to_seconds(grid.num_snippets))
        segs, labels = [], []
        for ann in video.annotations:
            if ann.segment is None or ann.label not in self.class_index:
                continue
            start, end = ann.segment
            if self.training and end - start <= 0:  # zero-length ground truth: no positive to learn
                continue
            segs.append(grid.seconds_to_index([start, end]))
            labels.append(self.class_index[ann.label])
        segments = torch.tensor(np.asarray(segs, dtype=np.float32).reshape(-1, 2))
        labels = torch.tensor(labels, dtype=torch.int64)
        if self.resize_to:
            return self._resized(vid, torch.from_numpy(feats), grid, segments, labels, duration)
        r = self.downsample_rate
        item = VideoItem(vid, torch.from_numpy(np.ascontiguousarray(feats[:, ::r])), segments / r, labels, grid,
                         duration, 0, r)
        return self._crop(item, index) if self.training else item

    def _resized(self, vid, feats, grid, segments, labels, duration) -> VideoItem:
        """Linear resize to ``resize_to`` steps (ActionFormer's ``force_upsampling``): the grid's
        window and stride both become ``((T - 1) * stride + window) / resize_to`` frames."""
        length = feats.shape[1]
        step = ((length - 1) * grid.stride + grid.window) / self.resize_to
        resized = SnippetGrid(window=step, stride=step, fps=grid.fps, num_snippets=self.resize_to, offset=grid.offset)
        segments = torch.tensor(resized.seconds_to_index(grid.index_to_seconds(segments.numpy().astype(np.float64))),
                                dtype=torch.float32).reshape(-1, 2)
        feats = torch.nn.functional.interpolate(feats[None], size=self.resize_to, mode="linear", align_corners=False)[0]
        if self.training:  # drop actions that lie mostly outside the resized span
            inside = (segments.clamp(0, self.resize_to)[:, 1] - segments.clamp(0, self.resize_to)[:, 0])
            keep = inside / (segments[:, 1] - segments[:, 0]).clamp(min=1e-6) >= 0.5
            segments, labels = segments[keep], labels[keep]
        return VideoItem(vid, feats, segments, labels, resized, duration)

    def _crop(self, item: VideoItem, index: int) -> VideoItem:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        length = item.feats.shape[1]
        if length <= self.max_seq_len:
            if self.crop_ratio is None:
                return item
            lo = max(round(self.crop_ratio[0] * length), 1)
            hi = min(round(self.crop_ratio[1] * length), length)
            crop = int(rng.integers(lo, hi + 1))
            if crop == length:
                return item
        else:
            crop = self.max_seq_len
        gs, ge = item.segments[:, 0], item.segments[:, 1]
        for _ in range(200):
            start = int(rng.integers(0, length - crop + 1))
            overlap = (torch.clamp(ge, max=start + crop) - torch.clamp(gs, min=start)).clamp(min=0)
            keep = overlap / (ge - gs).clamp(min=1e-6) >= self.trunc_thresh
            if len(gs) == 0 or keep.any():
                break
        segments = torch.stack([gs[keep].clamp(min=start), ge[keep].clamp(max=start + crop)], dim=1) - start
        return VideoItem(item.video_id, item.feats[:, start:start + crop], segments, item.labels[keep],
                         item.grid, item.duration, start, item.downsample)


def collate(items: list[VideoItem], pad_to: int | None, multiple: int) -> dict[str, Any]:
    """Pad a batch: to ``pad_to`` steps (training), else to the longest item rounded up to a
    multiple of ``multiple`` (the detector's largest stride). Returns feats ``(B, C, T)``,
    mask ``(B, T)`` and the per-video lists."""
    longest = max(it.feats.shape[1] for it in items)
    length = pad_to if pad_to is not None and pad_to >= longest else longest
    length = -(-length // multiple) * multiple
    feats = items[0].feats.new_zeros(len(items), items[0].feats.shape[0], length)
    mask = torch.zeros(len(items), length, dtype=torch.bool)
    for i, it in enumerate(items):
        feats[i, :, : it.feats.shape[1]] = it.feats
        mask[i, : it.feats.shape[1]] = True
    return {"feats": feats, "mask": mask, "segments": [it.segments for it in items],
            "labels": [it.labels for it in items], "items": items}
