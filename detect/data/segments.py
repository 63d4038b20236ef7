"""Videos for segment detection: ground-truth segments on the feature grid.

Segments are converted from seconds to fractional grid indices through the store's snippet
grid (:meth:`SnippetGrid.seconds_to_index`). Training items are randomly cropped to at most
``max_seq_len`` steps, keeping at least one action that overlaps the crop by ``trunc_thresh``
(ActionFormer's ``truncate_feats``); every stream is cut at the same window.
"""
from __future__ import annotations

import numpy as np
import torch

from extract.store import SnippetGrid

from ..errors import DataError
from .streams import StreamDataset, VideoItem, pad_batch, padded_length, slice_time


class SegmentDataset(StreamDataset):
    def __init__(self, *args, max_seq_len: int = 2304, trunc_thresh: float = 0.5,
                 crop_ratio: tuple[float, float] | None = (0.9, 1.0), downsample_rate: int = 1,
                 resize_to: int | None = None, class_agnostic: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Class-agnostic training (ActivityNet, HACS): every class is "an action", id 0.
        self.class_index = {name: 0 if class_agnostic else i for i, name in enumerate(self.classes)}
        self.max_seq_len, self.trunc_thresh, self.crop_ratio = max_seq_len, trunc_thresh, crop_ratio
        self.downsample_rate, self.resize_to = downsample_rate, resize_to

    def __getitem__(self, index: int) -> VideoItem:
        item = self.read(index)
        segs, labels = [], []
        for ann in self.annotations.database[item.video_id].annotations:
            if ann.segment is None or ann.label not in self.class_index:
                continue
            start, end = ann.segment
            if self.training and end - start <= 0:  # zero-length ground truth: no positive to learn
                continue
            segs.append(item.grid.seconds_to_index([start, end]))
            labels.append(self.class_index[ann.label])
        item.targets = {"segments": torch.tensor(np.asarray(segs, dtype=np.float32).reshape(-1, 2)),
                        "labels": torch.tensor(labels, dtype=torch.int64)}
        if self.resize_to:
            return self._resized(item)
        r = self.downsample_rate
        if r > 1:
            item.streams = {k: v.contiguous() for k, v in slice_time(item.streams, 0, None, r).items()}
            item.targets["segments"] = item.targets["segments"] / r
            item.downsample = r
        return self._crop(item, index) if self.training else item

    def _resized(self, item: VideoItem) -> VideoItem:
        """Linear resize to ``resize_to`` steps (ActionFormer's ``force_upsampling``): the grid's
        window and stride both become ``((T - 1) * stride + window) / resize_to`` frames."""
        grid, n = item.grid, self.resize_to
        not_features = [name for name, x in item.streams.items() if x.ndim != 2]
        if not_features:
            raise DataError(f"task.resize_to resizes (C, T) features only, not streams {not_features}")
        step = ((item.length - 1) * grid.stride + grid.window) / n
        resized = SnippetGrid(window=step, stride=step, fps=grid.fps, num_snippets=n, offset=grid.offset)
        segments = item.targets["segments"]
        segments = torch.tensor(resized.seconds_to_index(grid.index_to_seconds(segments.numpy().astype(np.float64))),
                                dtype=torch.float32).reshape(-1, 2)
        labels = item.targets["labels"]
        if self.training:  # drop actions that lie mostly outside the resized span
            inside = segments.clamp(0, n)[:, 1] - segments.clamp(0, n)[:, 0]
            keep = inside / (segments[:, 1] - segments[:, 0]).clamp(min=1e-6) >= 0.5
            segments, labels = segments[keep], labels[keep]
        streams = {k: torch.nn.functional.interpolate(v[None], size=n, mode="linear", align_corners=False)[0]
                   for k, v in item.streams.items()}
        return VideoItem(item.video_id, streams, resized, item.duration, {"segments": segments, "labels": labels})

    def _crop(self, item: VideoItem, index: int) -> VideoItem:
        rng = self.rng(index)
        length = item.length
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
        gs, ge = item.targets["segments"][:, 0], item.targets["segments"][:, 1]
        for _ in range(200):
            start = int(rng.integers(0, length - crop + 1))
            overlap = (torch.clamp(ge, max=start + crop) - torch.clamp(gs, min=start)).clamp(min=0)
            keep = overlap / (ge - gs).clamp(min=1e-6) >= self.trunc_thresh
            if len(gs) == 0 or keep.any():
                break
        segments = torch.stack([gs[keep].clamp(min=start), ge[keep].clamp(max=start + crop)], dim=1) - start
        return VideoItem(item.video_id, slice_time(item.streams, start, start + crop), item.grid, item.duration,
                         {"segments": segments, "labels": item.targets["labels"][keep]}, start, item.downsample)


def collate_segments(items: list[VideoItem], pad_to: int | None, multiple: int) -> dict:
    """Pad a batch: to ``pad_to`` steps (training), else to the longest item, rounded up to a
    multiple of ``multiple`` (the detector's largest stride). ``inputs`` holds the padded
    streams and ``mask (B, T)``; ``segments`` and ``labels`` are per-video lists."""
    return {"inputs": pad_batch(items, padded_length(items, pad_to, multiple)),
            "segments": [it.targets["segments"] for it in items], "labels": [it.targets["labels"] for it in items],
            "items": items}
