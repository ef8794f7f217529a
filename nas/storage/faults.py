"""A testing hook: kill the process at a named write point, to prove a killed search resumes exactly.

Set ``NAS_FAULT_AT=<point>:<n>`` in a process's environment and the ``n``-th pass (counted from 1) of
:func:`fault_point` with that ``point`` sends the process ``SIGKILL``, as a crash or ``kill -9`` would, with no
clean-up. Without the variable (always, outside tests) :func:`fault_point` does nothing but one environment look-up.

The points (each passed before and after the write it names):

- ``store.before`` / ``store.after``: every write to the trial store (:mod:`nas.storage.store`);
- ``checkpoint.before`` / ``checkpoint.after``: the checkpoint's temp file is written and fsynced, before / after it
  replaces ``checkpoint.json`` (so ``before`` leaves a stray temp file);
- ``config.before`` / ``config.after``: the same for ``config.yaml``;
- ``stage.before`` / ``stage.after``: a new experiment, staged in a hidden sibling directory, before / after it is
  renamed into place.

And, with weight inheritance only (:data:`WEIGHT_POINTS`): ``weights.before`` / ``weights.after``: a trial's weights
are in their file, before / after their index row is written (:mod:`nas.storage.weights`).
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_ENV", "POINTS", "WEIGHT_POINTS", "fault_point"]

FAULT_ENV = "NAS_FAULT_AT"
POINTS = tuple(f"{kind}.{when}" for kind in ("store", "checkpoint", "config", "stage") for when in ("before", "after"))
WEIGHT_POINTS = ("weights.before", "weights.after")

_passes: dict[str, int] = {}


def fault_point(point: str) -> None:
    """Count a pass of ``point``; SIGKILL this process if ``NAS_FAULT_AT`` names this point and pass."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, _, count = spec.rpartition(":")
    if name != point:
        return
    _passes[point] = _passes.get(point, 0) + 1
    if str(_passes[point]) == count.strip():
        os.kill(os.getpid(), signal.SIGKILL)
