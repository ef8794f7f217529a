"""One writer per experiment: an exclusive lock on the experiment directory, held while an
:class:`~nas.runtime.experiment.Experiment` that can write is open.

The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the directory itself (an open descriptor of it), so it follows
the directory through a rename (a new experiment is staged elsewhere, locked, then renamed into place) and the
kernel releases it when the holder exits, however it dies: a lock left by a killed process is simply taken. Beside
it, ``lock.json`` names the holder (``host``, ``pid``, ``since`` in seconds since the epoch), written atomically
after the lock is taken and removed before it is released; it is only informative (a stale one, left by a killed
holder, is harmless: the flock decides). Read-only readers (status, report, export) take no lock.

The lock is advisory and per open file description: a second :class:`ExperimentLock` on the same directory is
refused in the same process too. It is as reliable as ``flock`` on the file system (local disks; not every
network file system).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.io import atomic_write_text

__all__ = ["ExperimentLock", "LOCK_FILE", "read_holder"]

LOCK_FILE = "lock.json"


def read_holder(directory: Path) -> dict[str, Any] | None:
    """The holder ``lock.json`` names (``host``, ``pid``, ``since``), or None when absent or unreadable."""
    try:
        data = json.loads((directory / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process (it has not written lock.json yet)"
    since = holder.get("since")
    when = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float))
            else "an unknown time")
    return f"process {holder.get('pid')} on host {holder.get('host')!r} since {when}"


class ExperimentLock:
    """The exclusive writer lock of one experiment directory; take it with :meth:`acquire`, give it back with
    :meth:`release` (idempotent; also when the process exits)."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: str | Path) -> ExperimentLock:
        """Lock ``directory`` (which must exist) for this process and write ``lock.json``; raise
        :class:`ConfigError` naming the holder (host, pid, since when) if another writer has it. Never waits."""
        path = Path(directory)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise ConfigError(f"cannot open the experiment directory {str(path)!r} to lock it ({err.strerror}); "
                              "check that it exists and is readable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_holder(path)
            if holder is None:  # the holder may be between taking the lock and writing lock.json
                time.sleep(0.2)
                holder = read_holder(path)
            raise ConfigError(f"experiment {str(path)!r} is in use by {_describe(holder)}: one search writes to an "
                              "experiment at a time; wait for it to finish (or stop it), then run the command "
                              "again; `nas status` can read it meanwhile") from None
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd)
        try:
            lock.write_holder()
        except BaseException:
            lock.release()
            raise
        return lock

    def write_holder(self) -> None:
        """(Re)write ``lock.json`` in the locked directory (after a rename, it is where the directory now is)."""
        atomic_write_text(self.directory / LOCK_FILE, json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))

    def moved(self, directory: Path) -> None:
        """Record that the locked directory was renamed to ``directory`` (the flock follows it)."""
        self.directory = directory

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove ``lock.json`` (while still holding the lock, so it is never another holder's), then unlock."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            (self.directory / LOCK_FILE).unlink()
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor releases the flock
