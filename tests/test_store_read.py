"""Reading a store: DataLoader workers, pickling, and clear errors for bad stores."""
import json
import pickle
import shutil

import h5py
import numpy as np
import pytest
from store_fixtures import StoreDataset, store_info, video_ids, write_videos

from extract.store import StoreError, StoreWriter, UnknownVideoError, open_store


@pytest.fixture
def store_path(tmp_path):
    with StoreWriter(tmp_path / "s", store_info(num_shards=4)) as w:
        write_videos(w, video_ids(10))
    return tmp_path / "s"


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_read_correctly(store_path, context):
    import torch

    store = open_store(store_path)
    expected = {vid: store.read(vid) for vid in store}
    # A handle is now open in the parent: fork must not reuse it in the children.
    loader = torch.utils.data.DataLoader(StoreDataset(store), batch_size=None, num_workers=2,
                                         multiprocessing_context=context)
    for _ in range(2):
        got = {vid: array.numpy() for vid, array in loader}
        assert sorted(got) == sorted(expected)
        for vid, array in got.items():
            np.testing.assert_array_equal(array, expected[vid])


def test_store_pickles_without_handles(store_path):
    store = open_store(store_path)
    first = store.read(store.ids[0])
    clone = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(clone.read(store.ids[0]), first)


def test_unknown_id_suggests_close_matches(store_path):
    store = open_store(store_path)
    with pytest.raises(UnknownVideoError, match=r"'video_test_000000' is not in store .*did you mean .*'video_test_0000001'"):
        store.read("video_test_000000")
    with pytest.raises(KeyError):
        store.meta("nope")
    assert "nope" not in store and store.ids[0] in store


def test_missing_and_foreign_stores(tmp_path, store_path):
    with pytest.raises(StoreError, match="not a directory"):
        open_store(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="store.json is missing"):
        open_store(tmp_path / "empty")
    (tmp_path / "empty" / "store.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        open_store(tmp_path / "empty")
    (tmp_path / "empty" / "store.json").write_text('{"format": "something-else"}')
    with pytest.raises(StoreError, match="does not describe a mamba-tad store"):
        open_store(tmp_path / "empty")


def test_newer_format_version_asks_for_an_upgrade(store_path):
    meta = json.loads((store_path / "store.json").read_text())
    meta["format_version"] = 99
    (store_path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="version 99; this mamba-tad reads version 1 .upgrade"):
        open_store(store_path)


def _a_segment(store_path):
    return sorted((store_path / "shards").glob("*.h5"))[0]


def test_truncated_segment_is_named(store_path):
    seg = _a_segment(store_path)
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    with pytest.raises(StoreError, match=f"{seg.name} cannot be read as a segment .truncated or corrupted"):
        open_store(store_path)
    lenient = open_store(store_path, strict=False)
    assert any(seg.name in p for p in lenient.problems)
    assert len(lenient) < 10


def test_garbage_and_foreign_hdf5_files_are_named(store_path):
    seg = _a_segment(store_path)
    seg.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(StoreError, match=f"{seg.name} cannot be read"):
        open_store(store_path)
    with h5py.File(seg, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(StoreError, match="not a mamba-tad segment"):
        open_store(store_path)


def test_segment_from_another_store_is_refused(tmp_path, store_path):
    with StoreWriter(tmp_path / "other", store_info(num_shards=4)) as w:
        write_videos(w, video_ids(2))
    shutil.copy(_a_segment(tmp_path / "other"), store_path / "shards" / "shard-00000-99999999999999999999-ffffffff.h5")
    with pytest.raises(StoreError, match="belongs to another store"):
        open_store(store_path)


def test_duplicate_video_is_reported(store_path):
    seg = _a_segment(store_path)
    shutil.copy(seg, seg.with_name(seg.name.replace("-", "-", 1)[:-3] + "0.h5"))
    store = open_store(store_path)
    assert len(store) == 10
    assert any("is in two segments" in p for p in store.problems)


def test_plain_h5py_reading_as_docs_format_describes(store_path):
    """The recipe in docs/FORMAT.md gives the same arrays, ids and times as the reader."""
    import glob
    import urllib.parse

    store = open_store(store_path)
    info = json.loads((store_path / "store.json").read_text())
    assert info["format"] == "mamba-tad-store" and info["format_version"] == 1
    seen = {}
    for path in sorted(glob.glob(str(store_path / "shards" / "shard-*.h5"))):
        with h5py.File(path, "r") as f:
            assert f.attrs["store_id"] == info["store_id"]
            for name, dset in f["videos"].items():
                video_id = urllib.parse.unquote(name)
                assert dset.attrs["video_id"] == video_id
                g = json.loads(dset.attrs["meta"])["grid"]
                starts = g["starts"] or g["offset"] + g["stride"] * np.arange(g["num_snippets"])
                centres = (np.asarray(starts) + g["window"] / 2) / g["fps"]
                seen[video_id] = (dset[()], centres)
    assert sorted(seen) == store.ids
    for vid, (array, centres) in seen.items():
        np.testing.assert_array_equal(array, store.read(vid))
        np.testing.assert_allclose(centres, store.grid(vid).centre_seconds())
