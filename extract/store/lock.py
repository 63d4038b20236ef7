"""Writer locks (store shards, run folders): one writer each, released when it dies, never kept
alive by its children.

A writer ``flock``s ``locks/shard-S.lock`` and records ``pid P on HOST`` in it. Two things
could keep a lock after its writer dies:

* **Forked children.** ``flock`` belongs to the open file, which ``fork`` shares: DataLoader
  workers of an ``extract`` run killed by the OOM killer would hold every lock for as long as
  they live. So a forked child drops its copies at once (``os.register_at_fork``): the lock
  descriptors are pointed at ``/dev/null``, which releases nothing the parent holds.
* **Orphans of an older version.** If the lock is busy but its recorded writer is a dead process
  of this host, the lock is stale: the claimant replaces the lock *file* with a new one that it
  holds (holders of the old, unlinked file keep a lock on nothing). Reclaims are serialised by
  ``locks/reclaim.lock``, and a claimant re-opens the path after taking it, so two claimants
  cannot both win.
"""
from __future__ import annotations

import fcntl
import os
import socket
import weakref
from pathlib import Path

from .errors import ShardLockedError

_HELD: "weakref.WeakSet[WriterLock]" = weakref.WeakSet()


def _drop_in_child() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    for lock in list(_HELD):
        if lock.fd is not None:
            os.dup2(devnull, lock.fd)
    os.close(devnull)


os.register_at_fork(after_in_child=_drop_in_child)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode("utf-8", "replace").strip()


def _is_stale(holder: str) -> bool:
    """``pid P on HOST`` of a dead process on this host."""
    parts = holder.split()
    if len(parts) != 4 or parts[0] != "pid" or parts[2] != "on" or not parts[1].isdigit():
        return False
    return parts[3] == socket.gethostname() and not _pid_alive(int(parts[1]))


class WriterLock:
    """The exclusive lock of one writer of ``what`` (a shard, a run folder); ``close()`` releases it.
    ``hint`` ends the message when someone else holds it."""

    def __init__(self, path: Path, what: str, hint: str = "is a second run using the same rank?") -> None:
        self.path, self.what, self.hint, self.fd = path, what, hint, None
        fd = self._try(path)
        if fd is None:
            fd = self._reclaim()
        self.fd = fd
        _HELD.add(self)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    @staticmethod
    def _try(path: Path) -> int | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _reclaim(self) -> int:
        guard = os.open(self.path.with_name("reclaim.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            fd = self._try(self.path)  # its holder may have finished meanwhile
            if fd is not None:
                return fd
            probe = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            holder = _holder(probe) or "unknown"
            os.close(probe)
            if not _is_stale(holder):
                raise ShardLockedError(f"{self.what} is being written by another process ({holder}); {self.hint}")
            fresh = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            fd = self._try(fresh)
            if fd is None:
                raise ShardLockedError(f"{self.what}: cannot create {fresh}")
            os.replace(fresh, self.path)
            return fd
        finally:
            os.close(guard)

    def close(self) -> None:
        if self.fd is not None:
            _HELD.discard(self)
            os.close(self.fd)
            self.fd = None
