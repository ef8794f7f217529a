"""What a tracker is handed (:class:`TrackedTrial`), what it must do (:class:`Tracker`) and the fan-out the
experiment drives (:class:`Trackers`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nas.core.errors import InvalidArchitectureError
from nas.graph.architecture import Architecture
from nas.trials.protocols import Space
from nas.trials.trial import Status

__all__ = ["Scalar", "TrackedTrial", "Tracker", "Trackers", "decision_params", "finite"]

#: a value Optuna, TensorBoard and MLflow all take as a parameter value
Scalar = str | int | float | bool


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def decision_params(space: Space, arch: Architecture) -> dict[str, Scalar]:
    """The architecture's decisions by name, each as the value it stands for (an op name, an input node, ...:
    ``space.decision_choices()``); empty for an architecture that is not a member of ``space``."""
    try:
        decisions = space.encode(arch)
    except InvalidArchitectureError:
        return {}
    choices = space.decision_choices()
    return {name: choices[i][v] for i, (name, v) in enumerate(zip(space.decision_names(), decisions))}


@dataclass(frozen=True, kw_only=True)
class TrackedTrial:
    """A finished trial as trackers see it: ``n`` counts the trials finished so far (1 for the first, over every
    session of the experiment); ``best`` is the best feasible score after it (None before any); ``params`` its
    decisions by name (:func:`decision_params`); ``history`` the per-epoch metrics of its training, as the
    worker sent them back with the result."""

    id: int
    n: int
    arch: Architecture
    hash: str
    seed: int
    status: Status
    score: float | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    history: Sequence[Mapping[str, float]] = ()
    error: str | None = None
    params: Mapping[str, Scalar] = field(default_factory=dict)
    best: float | None = None


class Tracker(Protocol):
    """One sink. ``trial`` records a finished trial (a trial id recorded before is skipped where the sink can
    tell, so resuming never duplicates); ``job_epoch`` one epoch of a strategy's job (a supernet search);
    ``artifacts`` files that describe the search as a whole (``best.json``, the report), by name; ``close``
    flushes and releases the sink."""

    name: str

    def trial(self, trial: TrackedTrial) -> None: ...

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None: ...

    def artifacts(self, files: Mapping[str, Path]) -> None: ...

    def close(self) -> None: ...


class Trackers:
    """Every configured tracker behind one object. A tracker that raises is reported through ``warn`` (once, with
    its name and the error) and dropped: tracking never stops the search."""

    def __init__(self, trackers: Sequence[Tracker], warn: Callable[[str], None] | None = None) -> None:
        self._trackers = list(trackers)
        self._warn = warn or (lambda message: None)

    def __bool__(self) -> bool:
        return bool(self._trackers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self._trackers]

    def _each(self, call: Callable[[Tracker], None]) -> None:
        for tracker in list(self._trackers):
            try:
                call(tracker)
            except Exception as err:  # a full disk, a server gone: say so, go on without this tracker
                self._trackers.remove(tracker)
                self._warn(f"tracking: {tracker.name} stopped ({type(err).__name__}: {err}); the search goes on "
                           "without it")
                try:
                    tracker.close()
                except Exception:  # already reported above
                    pass

    def trial(self, trial: TrackedTrial) -> None:
        self._each(lambda t: t.trial(trial))

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None:
        self._each(lambda t: t.job_epoch(job, record))

    def artifacts(self, files: Mapping[str, Path]) -> None:
        self._each(lambda t: t.artifacts(files))

    def close(self) -> None:
        self._each(lambda t: t.close())
        self._trackers = []
