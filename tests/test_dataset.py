"""The detection dataset: stores concatenated on channels, grid labels, crops that keep labels aligned."""
import numpy as np
import pytest
import torch
from planted import make_planted

from detect.data.dataset import DataError, DetectionDataset, collate
from extract.annotations import load_annotations
from extract.store import StoreInfo, StoreWriter, open_store


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return make_planted(tmp_path_factory.mktemp("planted"), n_train=6, n_test=2)


def _split_store(src, dst, columns):
    store = open_store(src)
    with StoreWriter(dst, StoreInfo(feature="part", dtype="float32", num_shards=2)) as w:
        for vid in store:
            w.write(vid, store.read(vid)[:, columns], store.meta(vid))


def test_stores_concatenate_on_channels_in_order(planted, tmp_path):
    store, ann = planted
    _split_store(store, tmp_path / "rgb", slice(0, 10))
    _split_store(store, tmp_path / "flow", slice(10, 16))
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    both = DetectionDataset([open_store(tmp_path / "rgb"), open_store(tmp_path / "flow")], annotations, [vid],
                            annotations.classes, training=False)[0]
    whole = DetectionDataset([open_store(store)], annotations, [vid], annotations.classes, training=False)[0]
    torch.testing.assert_close(both.feats, whole.feats)
    assert both.feats.shape == (16, open_store(store).shape(vid)[0])


def test_labels_sit_on_the_grid(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    vid = sorted(annotations.database)[0]
    item = DetectionDataset([open_store(store)], annotations, [vid], annotations.classes, training=False)[0]
    grid = open_store(store).grid(vid)
    for (s, e), ann_ in zip(item.segments.tolist(), annotations.database[vid].annotations):
        assert grid.index_to_seconds([s, e]) == pytest.approx(list(ann_.segment), abs=1e-4)


def test_crops_keep_labels_aligned_and_are_reproducible(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    ids = sorted(annotations.subset("training"))
    full = DetectionDataset([open_store(store)], annotations, ids, annotations.classes, training=False)
    crops = DetectionDataset([open_store(store)], annotations, ids, annotations.classes, training=True,
                             max_seq_len=40, trunc_thresh=0.5)
    for i in range(len(ids)):
        whole, crop = full[i], crops[i]
        length = crop.feats.shape[1]
        assert length <= 40
        torch.testing.assert_close(crop.feats, whole.feats[:, crop.offset:crop.offset + length])
        for (s, e), label in zip(crop.segments.tolist(), crop.labels.tolist()):
            assert 0 <= s <= e <= length
            # the cropped segment is a clipped piece of an original one with the same label
            assert any(label == wl and ws - 1e-4 <= s + crop.offset and e + crop.offset <= we + 1e-4
                       for (ws, we), wl in zip(whole.segments.tolist(), whole.labels.tolist()))
        assert crops[i].offset == crop.offset  # same (seed, epoch, index), same crop
    epoch0 = [(crops[i].offset, crops[i].feats.shape[1]) for i in range(len(ids))]
    crops.set_epoch(1)
    assert [(crops[i].offset, crops[i].feats.shape[1]) for i in range(len(ids))] != epoch0


def test_collate_pads_and_masks():
    items = [type("I", (), {"feats": torch.ones(3, n), "segments": torch.zeros(0, 2),
                            "labels": torch.zeros(0, dtype=torch.long)})() for n in (5, 9)]
    batch = collate(items, pad_to=None, multiple=4)
    assert batch["feats"].shape == (2, 3, 12) and batch["mask"].sum(1).tolist() == [5, 9]
    assert batch["feats"][0, :, 5:].abs().sum() == 0
    assert collate(items, pad_to=16, multiple=4)["feats"].shape[-1] == 16


def test_missing_features_are_named(planted):
    store, ann = planted
    annotations = load_annotations(ann)
    with pytest.raises(DataError, match="no features.*nope"):
        DetectionDataset([open_store(store)], annotations, ["nope"], annotations.classes, training=False)
