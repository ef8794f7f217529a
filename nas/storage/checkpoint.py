"""Checkpoints: an atomic, versioned JSON snapshot of the strategy and the loop, written after every change.

Written to a temporary file in the same directory, flushed and fsynced, then moved over the old one with
``os.replace``: a reader (or a resumed run) sees either the previous snapshot or the new one, never half.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.core.io import atomic_write
from nas.storage.faults import fault_point

__all__ = ["write_checkpoint", "read_checkpoint", "write_text_with_faults", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1


def write_text_with_faults(path: str | Path, text: str, point: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`~nas.core.io.atomic_write`), passing the testing hook's
    ``<point>.before`` once the temp file is written and ``<point>.after`` once it replaced ``path``
    (:mod:`nas.storage.faults`)."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")
        fault_point(f"{point}.before")

    atomic_write(path, write)
    fault_point(f"{point}.after")


def write_checkpoint(path: str | Path, strategy_state: dict[str, Any], loop_state: dict[str, Any]) -> None:
    write_text_with_faults(path, json.dumps({"version": CHECKPOINT_VERSION, "strategy": strategy_state,
                                             "loop": loop_state}), "checkpoint")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no checkpoint at {str(path)!r}: is this an experiment directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"checkpoint {path.name} is corrupt ({err}); it cannot be resumed") from None
    if not isinstance(data, dict):
        raise ConfigError(f"checkpoint {path.name} is corrupt (holds {type(data).__name__}, not an object); "
                          "it cannot be resumed")
    if data.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"checkpoint {path.name} has version {data.get('version')!r}; "
                          f"this version reads {CHECKPOINT_VERSION}")
    if not {"strategy", "loop"} <= data.keys():
        raise ConfigError(f"checkpoint {path.name} is corrupt (no 'strategy' or 'loop' entry); it cannot be resumed")
    return data
