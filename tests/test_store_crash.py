"""Crash safety: SIGKILL at random moments, corrupted staging files, concurrent writers."""
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from store_fixtures import contents, store_info, video_ids, write_videos

from extract.store import StoreWriter, open_store, recover_store
from extract.store.report import verify

HERE = Path(__file__).parent
N_VIDEOS = 24


def _writer(store, *extra):
    return subprocess.Popen([sys.executable, str(HERE / "write_videos.py"), str(store), str(N_VIDEOS), *extra],
                            stdout=subprocess.PIPE, text=True)


def _finish(store, *extra):
    proc = _writer(store, *extra)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory):
    """The reference: an uninterrupted single-process run, and how long its writing takes."""
    path = tmp_path_factory.mktemp("clean") / "store"
    proc = _writer(path)
    assert proc.stdout.readline().strip() == "ready"
    start = time.monotonic()
    proc.communicate(timeout=120)
    return path, time.monotonic() - start


def test_sigkill_at_random_moments_then_resume_equals_a_clean_run(tmp_path, clean_store):
    reference, duration = clean_store
    expected = contents(reference)
    rng = random.Random(1234)
    for trial in range(20):
        store = tmp_path / f"trial{trial}"
        extra = ["--compression", "lzf"] if trial % 2 else []
        if trial % 4 >= 2:  # small segments: kills also land while sealing and renaming
            extra += ["--segment-bytes", str(2 << 20)]
        proc = _writer(store, *extra)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, duration * 1.2))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        reported_done = {line[5:] for line in out.splitlines() if line.startswith("done ")}

        # Nothing sealed is unreadable, and no video the writer reported done is lost.
        with open_store(store) as partial:
            assert not [p for p in verify(partial) if "checksum" in p or "cannot" in p]
        recover_store(store)
        with open_store(store) as recovered:
            assert reported_done <= set(recovered.ids), f"trial {trial} lost {reported_done - set(recovered.ids)}"
            assert verify(recovered) == []

        _finish(store, *extra)
        assert contents(store) == expected, f"trial {trial} differs from the clean run"
        assert not list((store / "staging").iterdir())


@pytest.mark.parametrize("compression", [None, "gzip:1"])
def test_recovery_does_not_trust_the_crashed_files_metadata(tmp_path, compression):
    ids = video_ids(8)
    w = StoreWriter(tmp_path / "s", store_info(compression, num_shards=1))
    write_videos(w, ids)
    state = w._shards[0]
    state.segment.abandon()  # the process "dies" with the segment unsealed
    state.lock.close()
    tmp = next((tmp_path / "s" / "staging").glob("*.h5.tmp"))
    with open(tmp, "r+b") as fh:  # wreck the superblock: h5py can no longer open the file
        fh.write(b"\0" * 512)
    with pytest.raises(OSError):
        h5py.File(tmp, "r")
    assert sorted(recover_store(tmp_path / "s")) == sorted(ids)
    with StoreWriter(tmp_path / "clean", store_info(compression, num_shards=1)) as clean:
        write_videos(clean, ids)
    assert contents(tmp_path / "s") == contents(tmp_path / "clean")


def test_recovery_drops_videos_whose_data_was_damaged(tmp_path):
    ids = video_ids(3)
    w = StoreWriter(tmp_path / "s", store_info(num_shards=1))
    write_videos(w, ids)
    seg = w._shards[0].segment
    with h5py.File(seg.tmp_path, "r", locking=False) as f:  # flushed, so readable while open
        offset = f["videos"][list(f["videos"])[0]].id.get_offset()
    seg.abandon()
    w._shards[0].lock.close()
    with open(seg.tmp_path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    with pytest.warns(UserWarning, match="could not be recovered.*checksum mismatch"):
        with StoreWriter(tmp_path / "s", store_info(num_shards=1)) as again:
            assert len(again.todo(ids)) == 1
            write_videos(again, ids)
    assert verify(open_store(tmp_path / "s")) == []


def test_two_concurrent_writer_processes(tmp_path, clean_store):
    reference, _ = clean_store
    procs = [_writer(tmp_path / "s", "--rank", str(r), "--world", "2") for r in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        assert out.count("done ") > 0
    assert contents(tmp_path / "s") == contents(reference)


def test_recover_refuses_a_shard_held_by_a_live_writer(tmp_path):
    from extract.store import ShardLockedError

    ids = video_ids(4)
    w = StoreWriter(tmp_path / "s", store_info(num_shards=1))
    write_videos(w, ids)
    with pytest.raises(ShardLockedError):
        recover_store(tmp_path / "s")
    w.close()
    assert recover_store(tmp_path / "s") == []
    assert len(open_store(tmp_path / "s")) == 4
    np.testing.assert_equal(len(list((tmp_path / "s" / "staging").iterdir())), 0)
