"""Videos for dense (per-step, multi-label) detection: a ``(T, K)`` multi-hot target on the grid.

Step ``k`` is positive for class ``c`` when its centre time (:meth:`SnippetGrid.centre_seconds`)
lies inside a segment of ``c`` (boundaries included). Training items longer than
``max_seq_len`` are cropped at a random window, every stream and the target alike.
"""
from __future__ import annotations

import numpy as np
import torch

from extract.annotations import VideoAnnotations

from ..metrics.frame_map import labels_at
from .streams import StreamDataset, VideoItem, pad_batch, padded_length, slice_time


def segment_rows(video: VideoAnnotations, class_index: dict[str, int]) -> list[tuple[float, float, int]]:
    """``(start, end, class)`` of a video's segments of known classes (what :func:`~detect.metrics.frame_map.labels_at` takes)."""
    return [(a.segment[0], a.segment[1], class_index[a.label]) for a in video.annotations
            if a.segment is not None and a.label in class_index]


class DenseDataset(StreamDataset):
    def __init__(self, *args, max_seq_len: int = 2304, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_seq_len = max_seq_len
        self.class_index = {name: i for i, name in enumerate(self.classes)}

    def __getitem__(self, index: int) -> VideoItem:
        item = self.read(index)
        rows = segment_rows(self.annotations.database[item.video_id], self.class_index)
        centres = np.asarray(item.grid.centre_seconds(), dtype=np.float64)[: item.length]
        item.targets = {"frames": torch.from_numpy(labels_at(centres, rows, len(self.classes)))}
        if self.training and item.length > self.max_seq_len:
            start = int(self.rng(index).integers(0, item.length - self.max_seq_len + 1))
            stop = start + self.max_seq_len
            item = VideoItem(item.video_id, slice_time(item.streams, start, stop), item.grid, item.duration,
                             {"frames": item.targets["frames"][start:stop]}, start)
        return item


def collate_dense(items: list[VideoItem], pad_to: int | None, multiple: int) -> dict:
    """Padded streams and mask (``inputs``), ``frames (B, T, K)`` targets zero on padding."""
    inputs = pad_batch(items, padded_length(items, pad_to, multiple))
    frames = torch.zeros(len(items), inputs["mask"].shape[1], items[0].targets["frames"].shape[1])
    for i, item in enumerate(items):
        frames[i, : item.length] = item.targets["frames"]
    return {"inputs": inputs, "frames": frames, "items": items}
