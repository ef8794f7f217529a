"""What an experiment directory must satisfy before a writer touches it: the store agrees with the checkpoint,
and the hidden stages left by killed creations are recognised (and removed by the next creation).

The loop (:mod:`nas.runtime.experiment`) writes in this order: ``store.submitted`` for the trials just asked, then
the checkpoint; for each result, ``strategy.tell``, ``store.finished``, then the checkpoint. So at any instant
(a kill included) the finished trials of the store are those the checkpoint's strategy was told, plus at most some
it still lists as pending (finished after its last checkpoint); the checkpoint's ``loop.done`` counts the former.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.storage.lock import ExperimentLock
from nas.storage.store import RUNNING, TrialStore
from nas.trials.protocols import Strategy

__all__ = ["STAGE_INFIX", "OLD_INFIX", "check_store_against_checkpoint", "stale_stages", "remove_stale_stages"]

#: ``.<name><infix><random>``: a new experiment being staged beside ``<name>``, and an experiment being replaced
STAGE_INFIX, OLD_INFIX = ".stage-", ".old-"


def _next_id(state: dict[str, Any]) -> int | None:
    """The next trial id of a strategy snapshot (a wrapper's is its inner strategy's), None if it has none."""
    while isinstance(state, dict):
        if isinstance(state.get("next_id"), int):
            return int(state["next_id"])
        state = state.get("inner")  # type: ignore[assignment]  # a wrapper's snapshot holds the inner one
    return None


def check_store_against_checkpoint(store: TrialStore, state: dict[str, Any], strategy: Strategy,
                                   checkpoint: Path) -> None:
    """Raise :class:`ConfigError` naming both files when the store (read-only) and the checkpoint ``state`` (with
    ``strategy`` restored from it) cannot come from the same experiment at the same moment: an empty store, fewer
    or other finished trials than the checkpoint records (``loop.done``, the strategy's told count), finished
    trials the strategy never asked, or a pending trial whose stored architecture differs. Reads only."""
    done = int(state["loop"]["done"])
    fix = (f"nothing was changed. Restore the lost file from a backup (the store and the checkpoint must be of the "
           f"same moment), or start a new search elsewhere (`nas search CONFIG --out NEW_DIR`); `nas status "
           f"{checkpoint.parent}` reads what the store holds")
    if not store.has_tables():
        raise ConfigError(f"{str(store.path)!r} is empty (no trial table) while {checkpoint.name} records {done} "
                          f"finished trials: {fix}")
    rows = {t.id: t for t in store.trials()}
    finished = {i for i, t in rows.items() if t.status != RUNNING}
    pending = {t.id: t for t in strategy.pending}
    told = finished - pending.keys()
    problems = []
    if len(told) != done:
        problems.append(f"the store holds {len(told)} finished trials the strategy was told, {checkpoint.name} "
                        f"records {done}")
    n_told = getattr(strategy, "n_told", None)
    skipped = getattr(strategy, "skipped", 0)  # a de-duplicating wrapper tells its inner strategy duplicates too
    if isinstance(n_told, int) and isinstance(skipped, int) and not done <= n_told <= done + skipped:
        problems.append(f"the strategy in {checkpoint.name} was told {n_told} results"
                        + (f" ({skipped} of them duplicates)" if skipped else "") + f" for {done} done trials")
    next_id = _next_id(state["strategy"])
    unasked = sorted(i for i in finished if next_id is not None and i >= next_id)
    if unasked:
        problems.append(f"the store has finished trials the checkpoint's strategy never asked (ids from "
                        f"{unasked[0]}, it asked {next_id})")
    changed = [i for i, t in pending.items() if i in rows and rows[i].hash != t.arch.canonical_hash()]
    if changed:
        problems.append(f"trial {changed[0]} has another architecture in the store than in {checkpoint.name}")
    if problems:
        raise ConfigError(f"{str(store.path)!r} and {checkpoint.name} disagree ({'; '.join(problems)}): {fix}")


def stale_stages(path: Path) -> list[Path]:
    """The hidden siblings ``.<name>.stage-*`` / ``.<name>.old-*`` of ``path`` that creations of an experiment at
    ``path`` made (live or left by a killed process)."""
    parent = path.absolute().parent
    prefixes = (f".{path.name}{STAGE_INFIX}", f".{path.name}{OLD_INFIX}")
    try:
        return sorted(p for p in parent.iterdir() if p.name.startswith(prefixes) and p.is_dir())
    except OSError:
        return []


def remove_stale_stages(path: Path) -> list[Path]:
    """Remove the stages of :func:`stale_stages` no live process holds (a stage is locked from its creation to its
    rename), and return them. A replaced experiment's ``.old-*`` holds the old experiment one level down, locked."""
    removed = []
    for stage in stale_stages(path):
        inner = [stage] + [p for p in stage.iterdir() if p.is_dir()] if stage.name.startswith(
            f".{path.name}{OLD_INFIX}") else [stage]
        locks: list[ExperimentLock] = []
        try:
            for directory in inner:
                locks.append(ExperimentLock.acquire(directory))
        except ConfigError:  # a live creation: leave it alone
            for lock in locks:
                lock.release()
            continue
        shutil.rmtree(stage, ignore_errors=True)
        for lock in locks:
            with contextlib.suppress(OSError):
                lock.release()
        removed.append(stage)
    return removed
