"""Writing a store: round trips of every array kind, resume, failures, and refused input."""
import json
import warnings

import numpy as np
import pytest
from store_fixtures import contents, store_info, video_array, video_ids, video_meta, write_videos

from extract.store import (BadArrayError, ShardLockedError, SnippetGrid, StoreError, StoreInfo, StoreWriter,
                           VideoMeta, open_store)


def _meta(rows, **kw):
    return VideoMeta(grid=SnippetGrid(window=1, stride=1, fps=25.0, num_snippets=rows), **kw)


ARRAY_KINDS = {
    "features_float16": ("float16", lambda rng: rng.standard_normal((37, 2048)).astype(np.float16)),
    "features_float32": ("float32", lambda rng: rng.standard_normal((5, 3)).astype(np.float32)),
    "heatmaps": ("float16", lambda rng: rng.random((12, 56, 56)).astype(np.float16)),
    "keypoints": ("float32", lambda rng: rng.random((9, 8, 3)).astype(np.float32)),
    "frames": ("uint8", lambda rng: rng.integers(0, 256, (4, 17, 31, 3), dtype=np.uint8)),
    "labels": ("int64", lambda rng: rng.integers(-5, 5, (20,))),
    "mask": ("bool", lambda rng: rng.random((7, 2)) > 0.5),
}


@pytest.mark.parametrize("compression", [None, "lzf", "gzip:1"])
@pytest.mark.parametrize("kind", sorted(ARRAY_KINDS))
def test_round_trip_every_array_kind(tmp_path, kind, compression):
    dtype, make = ARRAY_KINDS[kind]
    rng = np.random.default_rng(0)
    arrays = {f"dir/{kind} {i}.mp4": make(rng) for i in range(3)}
    info = StoreInfo(feature=kind, dtype=dtype, num_shards=2, compression=compression,
                     model={"name": "m", "sha256": "ab" * 32}, preprocessing={"size": 224})
    with StoreWriter(tmp_path / "s", info) as w:
        for vid, a in arrays.items():
            w.write(vid, a, _meta(a.shape[0], source=f"/v/{vid}", fps=25.0, num_frames=a.shape[0],
                                  duration=a.shape[0] / 25, decoder="decord 0.6.0", extra={"crop": [16, 58]}))
    store = open_store(tmp_path / "s")
    assert store.ids == sorted(arrays)
    for vid, a in arrays.items():
        got = store.read(vid)
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
        meta = store.meta(vid)
        assert meta.source == f"/v/{vid}" and meta.decoder == "decord 0.6.0" and meta.extra == {"crop": [16, 58]}
        assert meta.grid.num_snippets == a.shape[0] and meta.duration == pytest.approx(a.shape[0] / 25)
    assert store.info.model == {"name": "m", "sha256": "ab" * 32}
    assert store.info.preprocessing == {"size": 224}
    assert store.info.created_by.startswith("mamba-tad") and store.info.store_id


def test_resume_skips_completed_videos(tmp_path):
    ids = video_ids(12)
    with StoreWriter(tmp_path / "s", store_info()) as w:
        write_videos(w, ids[:5])
    with StoreWriter(tmp_path / "s", store_info()) as w:
        assert w.todo(ids) == ids[5:]
        write_videos(w, ids)
    with StoreWriter(tmp_path / "clean", store_info()) as w:
        write_videos(w, ids)
    assert contents(tmp_path / "s") == contents(tmp_path / "clean")


def test_failures_are_recorded_skipped_and_retried(tmp_path):
    ids = video_ids(4)
    with StoreWriter(tmp_path / "s", store_info()) as w:
        w.fail(ids[1], "decoder hung after 300 s")
        write_videos(w, [ids[0], ids[2], ids[3]])
        assert w.failed == {ids[1]: "decoder hung after 300 s"}
    store = open_store(tmp_path / "s")
    assert store.failures == {ids[1]: "decoder hung after 300 s"}
    with StoreWriter(tmp_path / "s", store_info()) as w:
        assert w.todo(ids) == []
    with StoreWriter(tmp_path / "s", store_info(), retry_failed=True) as w:
        assert w.todo(ids) == [ids[1]]
        write_videos(w, ids)
        assert w.failed == {}
    assert open_store(tmp_path / "s").failures == {}


def test_writing_a_video_twice_is_refused(tmp_path):
    vid = video_ids(1)[0]
    with StoreWriter(tmp_path / "s", store_info()) as w:
        write_videos(w, [vid])
        with pytest.raises(StoreError, match="already in"):
            w.write(vid, video_array(vid), video_meta(vid, video_array(vid).shape[0]))


def test_joining_with_other_parameters_is_refused(tmp_path):
    StoreWriter(tmp_path / "s", store_info()).close()
    other = StoreInfo(feature="synthetic", dtype="float32", num_shards=8)
    with pytest.raises(StoreError, match="dtype: store has 'float16', writer asked for 'float32'"):
        StoreWriter(tmp_path / "s", other)


def test_bad_arrays_are_refused_with_the_video_named(tmp_path):
    with StoreWriter(tmp_path / "s", store_info()) as w:
        good = np.zeros((3, 4), np.float32)
        with pytest.raises(BadArrayError, match="'v1'.*NaN"):
            w.write("v1", np.array([[0.0, np.nan]] * 3), _meta(3))
        with pytest.raises(BadArrayError, match="'v2'.*NaN or Inf"):
            w.write("v2", np.full((3, 4), 1e6, np.float32), _meta(3))  # overflows float16
        with pytest.raises(BadArrayError, match="'v3'.*empty"):
            w.write("v3", np.zeros((0, 4), np.float32), _meta(1))
        with pytest.raises(BadArrayError, match="'v4'.*cannot be stored"):
            w.write("v4", np.zeros((3, 4), np.complex64), _meta(3))
        with pytest.raises(BadArrayError, match="'v5'.*3 rows but its grid says 4"):
            w.write("v5", good, _meta(4))
        grid = SnippetGrid(window=16, stride=4, fps=30, num_snippets=3)
        with pytest.raises(BadArrayError, match="'v6'.*over 100 frames gives 22 snippets"):
            w.write("v6", good, VideoMeta(grid=grid, num_frames=100))
        w.write("v7", good.astype(np.float64), _meta(3))  # float64 -> float16 is a same-kind cast
    store = open_store(tmp_path / "s")
    assert store.ids == ["v7"] and store.read("v7").dtype == np.float16


def test_second_writer_of_a_shard_gets_a_clear_error(tmp_path):
    ids = video_ids(6)
    first = StoreWriter(tmp_path / "s", store_info(num_shards=1))
    first.todo(ids)
    with pytest.raises(ShardLockedError, match=r"shard 0 .* another process \(pid \d+"):
        StoreWriter(tmp_path / "s", store_info(num_shards=1)).todo(ids)
    first.close()
    with StoreWriter(tmp_path / "s", store_info(num_shards=1)) as again:  # released on close
        assert again.todo(ids) == ids


def test_ranks_split_the_videos_and_refuse_foreign_ones(tmp_path):
    ids = video_ids(30)
    shares = []
    for rank in range(3):
        with StoreWriter(tmp_path / "s", store_info(), rank=rank, world_size=3) as w:
            shares.append(w.todo(ids))
            write_videos(w, ids)
    assert sorted(sum(shares, [])) == sorted(ids)
    assert all(shares)
    with StoreWriter(tmp_path / "s", store_info(), rank=0, world_size=3) as w:
        foreign = shares[1][0]
        with pytest.raises(StoreError, match="belongs to rank 1"):
            w.write(foreign, video_array(foreign), video_meta(foreign, video_array(foreign).shape[0]))


def test_rank_and_world_come_from_torchrun_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = StoreWriter(tmp_path / "s", store_info())
    assert (w.rank, w.world_size) == (2, 4)
    w.close()


def test_segments_roll_over_at_the_size_limit(tmp_path):
    ids = video_ids(10)
    with StoreWriter(tmp_path / "s", store_info(num_shards=1), max_segment_bytes=3 << 20) as w:
        write_videos(w, ids)
    store = open_store(tmp_path / "s")
    assert len(store.segments) > 2
    with StoreWriter(tmp_path / "one", store_info(num_shards=1)) as w:
        write_videos(w, ids)
    assert contents(tmp_path / "s") == contents(tmp_path / "one")


def test_store_json_is_plain_and_complete(tmp_path):
    StoreWriter(tmp_path / "s", store_info("lzf")).close()
    d = json.loads((tmp_path / "s" / "store.json").read_text())
    for key in ("format", "format_version", "feature", "model", "preprocessing", "dtype", "created_by",
                "created_at", "num_shards", "compression", "grid", "store_id"):
        assert key in d
    assert d["compression"] == "lzf" and d["format"] == "mamba-tad-store"


def test_an_error_inside_a_write_keeps_the_completed_videos(tmp_path, monkeypatch):
    import extract.store.segment as segment

    ids = video_ids(4)
    real = segment._set_video_attrs
    calls = []

    def flaky(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")
        real(*args)

    monkeypatch.setattr(segment, "_set_video_attrs", flaky)
    with StoreWriter(tmp_path / "s", store_info(num_shards=1)) as w:
        with pytest.raises(OSError, match="disk full"):
            write_videos(w, ids)
        assert open_store(tmp_path / "s").ids == sorted(ids[:2])  # sealed at once
        write_videos(w, ids)  # the failed video can be written again
    with StoreWriter(tmp_path / "clean", store_info(num_shards=1)) as w:
        write_videos(w, ids)
    assert contents(tmp_path / "s") == contents(tmp_path / "clean")
