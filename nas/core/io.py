"""Files written whole or not at all: a temp file in the same folder, fsynced, then ``os.replace``.

A reader sees the previous content or the new one, never half; a failed write removes its temp file and leaves
the previous content in place, and only an interrupted process can leave a hidden ``.<name>.*.tmp`` file beside
the target. Every file this framework writes for a user (checkpoints, exports, reports, results) goes through
:func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "ordinary_dir_mode", "ordinary_mode",
           "remove_stray_temps", "DirectoryFiles"]


_TEMP_SUFFIX = ".tmp"


def ordinary_mode() -> int:
    """The permissions of an ordinary new file under the current umask (``mkstemp`` makes owner-only ones)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def ordinary_dir_mode() -> int:
    """The permissions of an ordinary new directory under the current umask (``mkdtemp`` makes owner-only ones)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Produce ``path`` atomically with ``write(tmp)``, a function writing the whole file at ``tmp`` (e.g.
    ``lambda tmp: torch.save(obj, tmp)``).

    ``tmp`` is a new empty file beside ``path`` (same folder, so the final ``os.replace`` is atomic). After
    ``write`` returns, the file is fsynced, given the permissions of an ordinary new file (:func:`ordinary_mode`)
    and moved over ``path``. If ``write`` (or anything after it) raises, the temp file is removed, ``path`` keeps
    its previous content (or stays absent) and the error propagates.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, ordinary_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`), encoded as ``encoding``."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def remove_stray_temps(directory: str | Path) -> list[Path]:
    """Remove the temp files interrupted atomic writes left in ``directory`` (hidden ``.<name>.*.tmp`` regular
    files, not recursing) and return their paths; a missing directory has none.

    Only call it while no other process writes into ``directory`` (the experiment's writer lock held): a live
    writer's temp file looks the same."""
    removed: list[Path] = []
    try:
        entries = list(Path(directory).iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        name = entry.name
        if name.startswith(".") and name.endswith(_TEMP_SUFFIX) and name.count(".") >= 3 and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


class DirectoryFiles:
    """Files by name in a local ``directory`` (made on the first write), each written atomically: the
    :class:`nas.trials.protocols.JobFiles` of a job whose directory is on the node it runs on."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def read(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.directory / name, data)

    def where(self, name: str) -> str:
        return str(self.directory / name)
