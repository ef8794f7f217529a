"""Files written whole or not at all: a temp file in the same folder, fsynced, then ``os.replace``.

A reader sees the previous content or the new one, never half; an interrupted write leaves at most a
hidden ``.<name>.*.tmp`` file beside the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_text", "ordinary_mode"]


def ordinary_mode() -> int:
    """The permissions of an ordinary new file under the current umask (``mkstemp`` makes owner-only ones)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + fsync + ``os.replace``), with the permissions of an
    ordinary new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), ordinary_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
