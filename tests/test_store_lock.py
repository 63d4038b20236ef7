"""Shard locks: forked children never keep them; a stale lock of a dead writer is reclaimed; a
live writer's lock is not."""
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from store_fixtures import store_info, video_ids, write_videos

from extract.store import ShardLockedError, StoreWriter, open_store
from extract.store.writer import recover_store

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.pwrite(fd, sys.argv[2].encode(), 0)
print("held", flush=True)
time.sleep(60)
"""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _hold(lock_file, holder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file), holder], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _store_with_a_lock_file(tmp_path):
    with StoreWriter(tmp_path / "s", store_info(num_shards=1)) as w:
        write_videos(w, video_ids(2))
    return tmp_path / "s" / "locks" / "shard-00000.lock"


def test_a_stale_lock_of_a_dead_writer_is_reclaimed(tmp_path):
    lock_file = _store_with_a_lock_file(tmp_path)
    # an orphan (alive) holds the lock that its dead parent recorded
    orphan = _hold(lock_file, f"pid {_dead_pid()} on {socket.gethostname()}\n")
    try:
        with StoreWriter(tmp_path / "s", store_info(num_shards=1)) as w:
            write_videos(w, video_ids(4)[2:])
        assert recover_store(tmp_path / "s") == []
        assert len(open_store(tmp_path / "s")) == 4
    finally:
        orphan.kill()


def test_a_live_writers_lock_is_not_reclaimed(tmp_path):
    lock_file = _store_with_a_lock_file(tmp_path)
    for holder in (f"pid {os.getpid()} on {socket.gethostname()}\n", f"pid {_dead_pid()} on another-host\n"):
        proc = _hold(lock_file, holder)
        try:
            with pytest.raises(ShardLockedError, match=r"shard 0 of .* is being written by another process \(pid"):
                StoreWriter(tmp_path / "s", store_info(num_shards=1)).todo(video_ids(4))
        finally:
            proc.kill()
            proc.wait()


def test_forked_children_do_not_keep_the_lock(tmp_path):
    w = StoreWriter(tmp_path / "s", store_info(num_shards=1))
    write_videos(w, video_ids(2))
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # a DataLoader worker, say: lives on after the writer
        os.write(ready_w, b"x")  # fork has returned here, so the at-fork handlers have run
        time.sleep(30)
        os._exit(0)
    os.read(ready_r, 1)
    try:
        w.close()
        lock_file = tmp_path / "s" / "locks" / "shard-00000.lock"
        fd = os.open(lock_file, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free although the child still runs
        os.close(fd)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
