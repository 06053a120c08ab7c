"""The writer's lock: ``<store>.lock`` and the helpers around it.

One writer at a time holds an exclusive ``flock`` on ``<store>.lock`` (with its pid
in the file) for as long as its :class:`~entprobe.store.ResultStore` is open
(:class:`_LockFile`); writers in the same process are counted in ``_OPEN_WRITERS``.
:func:`writer_pid` tells others (``entprobe status``) who is writing, and
:func:`_retry` retries a DuckDB call while another process has the DuckDB file open.
Kept apart from the store so that the locking rules can be read in one place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLockedError

__all__ = ["lock_path", "writer_pid"]

# DuckDB lets one process open a file several times and shares the database between
# the connections; writers are counted here so a second writer in the same process
# is refused like one in another process.
_OPEN_WRITERS: dict[str, int] = {}
_OPEN_LOCK = threading.Lock()


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "different configuration" in text


def _retry(call: Callable[[], Any], path: Path, wait: float, what: str) -> Any:
    """``call()``, retried with backoff while another process has the DuckDB file
    open (a writer inside a transaction, or a reader copying it)."""
    import duckdb

    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            return call()
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open results store {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise StoreLockedError(
                    f"results store {path} stayed busy for {wait:.0f} s (another process has it "
                    f"open) while trying to {what} it: {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The writer's lock file of a store: ``<store>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def writer_pid(path: str | os.PathLike[str]) -> int | None:
    """The pid of the process writing the store now, or None (read from its lock
    file; a stale file left by a killed process gives None)."""
    lp = lock_path(path)
    try:
        pid = int(lp.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _lock_is_held(lp) else None


def _lock_is_held(lp: Path) -> bool:
    # Not probed with flock: a probe would make a writer starting at that instant
    # fail. The pid in the file is checked instead (the file is removed on a clean
    # exit; a killed writer leaves it with a dead pid).
    try:
        pid = int(lp.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


class _LockFile:
    """An exclusive ``flock`` on ``<store>.lock``, held by one writer. The file is
    removed on release; an acquirer checks that the file it locked is still the one
    at the path, so removal cannot let two writers in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, store: Path) -> _LockFile:
        lp = lock_path(store)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: DuckDB's own lock only
            return cls(lp, -1)
        for _ in range(100):
            try:
                fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreError(f"cannot create the lock file {lp} of results store {store}: {exc}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                pid = writer_pid(store)
                who = f"process {pid}" if pid is not None else "another process"
                raise StoreLockedError(
                    f"results store {store} is being written by {who} (lock file {lp}); wait for "
                    f"it to finish, or use another --store. `entprobe status --store {store}` "
                    f"shows its progress"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lp).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(lp, fd)
            os.close(fd)  # the previous holder removed it between our open and lock
        raise StoreLockedError(f"cannot take the lock file {lp} of results store {store}")

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        finally:
            os.close(self.fd)
            self.fd = -1
