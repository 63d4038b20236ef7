"""Deterministic videos for store tests, shared by the tests and the writer subprocesses."""
from __future__ import annotations

import numpy as np

from extract.store import FeatureStore, SnippetGrid, StoreInfo, StoreWriter, VideoMeta, open_store


def video_ids(n: int) -> list[str]:
    """Ids that look like real ones: nested relative paths and plain stems, a space and a quote."""
    ids = []
    for i in range(n):
        if i % 3 == 0:
            ids.append(f"class_{i % 5}/clip {i:03d}.mp4")
        elif i % 3 == 1:
            ids.append(f"video_test_{i:07d}")
        else:
            ids.append(f"o'brien/take_{i}.mkv")
    return ids


def video_array(vid: str, dim: int = 256, dtype: str = "float16") -> np.ndarray:
    """A reproducible (T, dim) array whose length (40..3000 rows) depends on the id."""
    seed = sum(vid.encode())
    rng = np.random.default_rng(seed)
    rows = 40 + (seed * 7919) % 2960
    return rng.standard_normal((rows, dim)).astype(dtype)


def video_meta(vid: str, rows: int) -> VideoMeta:
    frames = (rows - 1) * 4 + 16 + (sum(vid.encode()) % 4)  # any tail of up to stride-1 frames
    grid = SnippetGrid.for_video(frames, window=16, stride=4, fps=29.97)
    return VideoMeta(grid=grid, source=f"/data/videos/{vid}", fps=29.97, num_frames=frames,
                     duration=frames / 29.97, decoder="synthetic")


def store_info(compression: str | None = None, num_shards: int = 8) -> StoreInfo:
    return StoreInfo(feature="synthetic", dtype="float16", num_shards=num_shards, compression=compression,
                     model={"name": "none", "sha256": None}, preprocessing={"kind": "test"},
                     grid={"window": 16, "stride": 4, "tail": "drop", "fps": "native"})


def write_videos(writer: StoreWriter, ids: list[str], on_done=None) -> None:
    for vid in writer.todo(ids):
        array = video_array(vid)
        writer.write(vid, array, video_meta(vid, array.shape[0]))
        if on_done is not None:
            on_done(vid)


def contents(path) -> dict[str, tuple[str, str, tuple]]:
    """``id -> (checksum of the data as read, metadata json, shape)``: what must match between stores."""
    from extract.store.layout import checksum

    with open_store(path) as store:
        return {vid: (checksum(store.read(vid)), store.meta(vid).to_json(), store.shape(vid)) for vid in store}


class StoreDataset:
    """A minimal map-style dataset over a store, as ``detect`` uses one (picklable for spawn)."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int):
        import torch

        vid = self.store.ids[i]
        return vid, torch.from_numpy(self.store.read(vid))
