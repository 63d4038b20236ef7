"""Task datasets on named streams: channel concatenation, grid labels, aligned reproducible crops,
collate, grid and shape mismatches named."""
import numpy as np
import pytest
import torch
from planted import make_planted

from detect.data.dense import DenseDataset, collate_dense
from detect.metrics.frame_map import labels_at
from detect.data.segments import SegmentDataset, collate_segments
from detect.data.streams import DataError, StreamSet, VideoItem, pad_batch
from extract.annotations import load_annotations
from extract.store import SnippetGrid, StoreInfo, StoreWriter, VideoMeta, open_store


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted(tmp_path_factory.mktemp("planted"), n_train=6, n_test=2)


def _derived_store(src, dst, fn, grid=None):
    """A store with ``fn(features)`` per video, on the same grid (or ``grid(old)``)."""
    store = open_store(src)
    with StoreWriter(dst, StoreInfo(feature="part", dtype="float32", num_shards=2)) as w:
        for vid in store:
            meta = store.meta(vid)
            if grid is not None:
                meta = VideoMeta(grid=grid(meta.grid), fps=meta.fps, duration=meta.duration)
            w.write(vid, fn(store.read(vid)), meta)
    return dst


def _segments(streams, annotations, ids, **kw):
    return SegmentDataset(StreamSet.open(streams), annotations, ids, annotations.classes, **kw)


def test_stores_concatenate_on_channels_in_order(planted, tmp_path):
    store, ann = planted
    rgb = _derived_store(store, tmp_path / "rgb", lambda a: a[:, :10])
    flow = _derived_store(store, tmp_path / "flow", lambda a: a[:, 10:])
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    both = _segments({"features": [rgb, flow]}, annotations, [vid], training=False)[0]
    whole = _segments({"features": [store]}, annotations, [vid], training=False)[0]
    torch.testing.assert_close(both.streams["features"], whole.streams["features"])
    assert both.streams["features"].shape == (16, open_store(store).shape(vid)[0])


def test_streams_of_other_ranks_are_time_first_and_cropped_together(planted, tmp_path):
    store, ann = planted
    maps = _derived_store(store, tmp_path / "maps", lambda a: np.repeat(a[:, :, None], 3, axis=2))  # (T, 16, 3)
    annotations = load_annotations(ann)
    ids = sorted(annotations.subset("training"))
    data = _segments({"features": [store], "heatmaps": [maps]}, annotations, ids, training=True, max_seq_len=30)
    for i in range(len(ids)):
        item = data[i]
        feats, heat = item.streams["features"], item.streams["heatmaps"]
        assert heat.shape == (feats.shape[1], 16, 3)
        torch.testing.assert_close(heat[:, :, 0], feats.T)  # the same time window in both streams
    batch = collate_segments([data[0], data[1]], pad_to=None, multiple=4)
    assert batch["inputs"]["heatmaps"].shape[1] == batch["inputs"]["features"].shape[2] == batch["inputs"]["mask"].shape[1]


def test_stores_on_different_grids_are_an_error_naming_both(planted, tmp_path):
    store, ann = planted
    other = _derived_store(store, tmp_path / "other", lambda a: a,
                           grid=lambda g: SnippetGrid(window=g.window, stride=g.stride * 2, fps=g.fps,
                                                      num_snippets=g.num_snippets))
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    data = _segments({"features": [store], "heatmaps": [other]}, annotations, [vid], training=False)
    with pytest.raises(DataError, match=rf"{vid}.*store.*other.*different snippet grids.*stride 2 .*stride 4"):
        data[0]


def test_labels_sit_on_the_grid(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    item = _segments({"features": [store]}, annotations, [vid], training=False)[0]
    grid = open_store(store).grid(vid)
    for (s, e), ann_ in zip(item.targets["segments"].tolist(), annotations.database[vid].annotations):
        assert grid.index_to_seconds([s, e]) == pytest.approx(list(ann_.segment), abs=1e-4)


def test_crops_keep_labels_aligned_and_are_reproducible(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    ids = sorted(annotations.subset("training"))
    full = _segments({"features": [store]}, annotations, ids, training=False)
    crops = _segments({"features": [store]}, annotations, ids, training=True, max_seq_len=40, trunc_thresh=0.5)
    for i in range(len(ids)):
        whole, crop = full[i], crops[i]
        length = crop.length
        assert length <= 40
        torch.testing.assert_close(crop.streams["features"], whole.streams["features"][:, crop.offset:crop.offset + length])
        for (s, e), label in zip(crop.targets["segments"].tolist(), crop.targets["labels"].tolist()):
            assert 0 <= s <= e <= length
            # the cropped segment is a clipped piece of an original one with the same label
            assert any(label == wl and ws - 1e-4 <= s + crop.offset and e + crop.offset <= we + 1e-4
                       for (ws, we), wl in zip(whole.targets["segments"].tolist(), whole.targets["labels"].tolist()))
        assert crops[i].offset == crop.offset  # same (seed, epoch, index), same crop
    epoch0 = [(crops[i].offset, crops[i].length) for i in range(len(ids))]
    crops.set_epoch(1)
    assert [(crops[i].offset, crops[i].length) for i in range(len(ids))] != epoch0


def test_pad_batch_pads_every_stream_and_masks():
    grid = SnippetGrid(window=1, stride=1, fps=1.0, num_snippets=9)
    items = [VideoItem("v", {"features": torch.ones(3, n), "frames": torch.ones(n, 2, 2, 3, dtype=torch.uint8)}, grid, 9.0)
             for n in (5, 9)]
    inputs = pad_batch(items, 12)
    assert inputs["features"].shape == (2, 3, 12) and inputs["mask"].sum(1).tolist() == [5, 9]
    assert inputs["features"][0, :, 5:].abs().sum() == 0
    assert inputs["frames"].shape == (2, 12, 2, 2, 3) and inputs["frames"].dtype == torch.uint8
    assert inputs["frames"][0, 5:].sum() == 0 and inputs["frames"][1].sum() == 9 * 12


def test_dense_targets_mark_the_steps_inside_segments(planted):
    centres = np.array([0.5, 1.5, 2.5, 3.5])
    target = labels_at(centres, [(1.0, 2.5, 0), (3.0, 9.0, 1), (0.0, 0.2, 1)], 2)
    assert target.tolist() == [[0, 0], [1, 0], [1, 0], [0, 1]]  # boundaries inclusive
    store, ann = planted
    annotations = load_annotations(ann)
    ids = sorted(annotations.subset("training"))
    data = DenseDataset(StreamSet.open({"features": [store]}), annotations, ids, annotations.classes, training=True,
                        max_seq_len=50)
    item = data[0]
    assert item.length <= 50 and item.targets["frames"].shape == (item.length, 3)
    full = DenseDataset(StreamSet.open({"features": [store]}), annotations, ids, annotations.classes, training=False)[0]
    torch.testing.assert_close(item.targets["frames"], full.targets["frames"][item.offset:item.offset + item.length])
    batch = collate_dense([data[0], data[1]], pad_to=64, multiple=1)
    assert batch["frames"].shape == (2, 64, 3) and batch["frames"][~batch["inputs"]["mask"]].sum() == 0


def test_missing_features_are_named(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    with pytest.raises(DataError, match="no features.*nope"):
        _segments({"features": [store]}, annotations, ["nope"], training=False)
