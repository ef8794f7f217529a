"""What a tracker is handed (:class:`TrackedTrial`), what it must do (:class:`Tracker`) and the fan-out the
experiment drives (:class:`Trackers`)."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nas.core.errors import InvalidArchitectureError
from nas.graph.architecture import Architecture
from nas.trials.protocols import Space
from nas.trials.trial import Status

__all__ = ["Scalar", "TrackedTrial", "TrialEpoch", "Tracker", "Trackers", "decision_params", "finite",
           "MAX_PENDING_EPOCHS"]

#: epoch events queued for the trackers beyond this many are dropped (the finished trial's history fills them in)
MAX_PENDING_EPOCHS = 10_000

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


@dataclass(frozen=True, kw_only=True)
class TrialEpoch:
    """One training epoch of a running trial, sent by its worker while it trains (``metrics`` as the trainer
    reports them: ``train_loss``, ``val_acc``, ``score``, ...). ``attempt`` counts the runs of the trial in this
    session of the search (a retry after a worker died is the next one); ``params`` the trial's decisions, so a
    sink can open its run before the trial finishes.

    Order and exactly-once, as every tracker implements them: a trial's epochs reach a tracker in the order the
    worker made them and before its :class:`TrackedTrial`. An epoch that does not continue the curve the tracker
    holds for the trial in this session (the first epoch seen for it in this session, another ``attempt``, or an
    ``epoch`` not above the last one) starts the curve again: what an earlier, unfinished run logged (a worker
    that died, a search killed and resumed) is discarded, so the curve shown is the one of the run that finishes.
    The finished trial's ``history`` is authoritative: epochs missing from the streamed curve (events dropped under
    load) are written then, none twice."""

    trial_id: int
    attempt: int
    epoch: int
    metrics: Mapping[str, float]
    params: Mapping[str, Scalar] = field(default_factory=dict)


class Tracker(Protocol):
    """One sink. ``trial`` records a finished trial (a trial id recorded before is skipped where the sink can
    tell, so resuming never duplicates); ``epoch`` one epoch of a trial while it trains (see
    :class:`TrialEpoch` for order and exactly-once); ``baseline`` records a finished baseline of the config
    (a reference model trained beside the search) under its name, kept apart from the search's trials (never in
    its ranking or best-so-far), once; ``job_epoch`` one epoch of a strategy's job (a supernet search);
    ``artifacts`` files that describe the search as a whole (``best.json``, the report), by name; ``close``
    flushes and releases the sink."""

    name: str

    def trial(self, trial: TrackedTrial) -> None: ...

    def epoch(self, event: TrialEpoch) -> None: ...

    def baseline(self, name: str, trial: TrackedTrial) -> None: ...

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None: ...

    def artifacts(self, files: Mapping[str, Path]) -> None: ...

    def close(self) -> None: ...


class Trackers:
    """Every configured tracker behind one object, written by one background thread: the driver's loop only
    queues each call (writing a trial to an SQLite study or an MLflow run costs tens to hundreds of milliseconds,
    which the loop would otherwise spend instead of handing out work). The calls reach the trackers in order.

    A tracker that raises is dropped, and reported through ``warn`` (once, with its name and the error) from the
    caller's thread at its next call or at :meth:`close`: tracking never stops the search. :meth:`close` waits
    up to ``close_timeout`` seconds for the queued calls, then says how many were given up."""

    def __init__(self, trackers: Sequence[Tracker], warn: Callable[[str], None] | None = None, *,
                 close_timeout: float = 600.0) -> None:
        self._trackers = list(trackers)
        self._warn = warn or (lambda message: None)
        self._close_timeout = close_timeout
        self._warnings: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._calls: queue.SimpleQueue[Callable[[Tracker], None] | None] = queue.SimpleQueue()
        self._pending_epochs = 0  # epoch calls queued and not yet written
        self._pending_lock = threading.Lock()
        #: epoch events dropped because the trackers were more than MAX_PENDING_EPOCHS behind
        self.dropped_epochs = 0
        self._thread: threading.Thread | None = None
        if self._trackers:
            self._thread = threading.Thread(target=self._work, name="nas-trackers", daemon=True)
            self._thread.start()

    def __bool__(self) -> bool:
        return bool(self._trackers)

    @property
    def names(self) -> list[str]:
        """The trackers still writing."""
        return [t.name for t in list(self._trackers)]

    def _work(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            for tracker in list(self._trackers):
                try:
                    call(tracker)
                except Exception as err:  # a full disk, a server gone: say so, go on without this tracker
                    self._trackers.remove(tracker)
                    self._warnings.put(f"tracking: {tracker.name} stopped ({type(err).__name__}: {err}); the "
                                       "search goes on without it")
                    try:
                        tracker.close()
                    except Exception:  # already reported above
                        pass
            if isinstance(call, _EpochCall):
                with self._pending_lock:
                    self._pending_epochs -= 1

    def _report(self) -> None:
        while not self._warnings.empty():
            self._warn(self._warnings.get())

    def _each(self, call: Callable[[Tracker], None]) -> None:
        self._report()
        if self._thread is not None:
            self._calls.put(call)

    def trial(self, trial: TrackedTrial) -> None:
        self._each(lambda t: t.trial(trial))

    def epoch(self, event: TrialEpoch) -> None:
        """Queue one epoch of a running trial; dropped (counted in :attr:`dropped_epochs`) when the trackers are
        :data:`MAX_PENDING_EPOCHS` behind, so a slow tracker never makes the loop wait or memory grow."""
        if self._thread is None:
            return
        with self._pending_lock:
            if self._pending_epochs >= MAX_PENDING_EPOCHS:
                self.dropped_epochs += 1
                return
            self._pending_epochs += 1
        self._each(_EpochCall(event))

    def baseline(self, name: str, trial: TrackedTrial) -> None:
        self._each(lambda t: t.baseline(name, trial))

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None:
        record = dict(record)
        self._each(lambda t: t.job_epoch(job, record))

    def artifacts(self, files: Mapping[str, Path]) -> None:
        files = dict(files)
        self._each(lambda t: t.artifacts(files))

    def close(self) -> None:
        """Wait for the queued calls (up to ``close_timeout`` s), close every tracker and stop the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._calls.put(lambda t: t.close())
            self._calls.put(None)
            thread.join(self._close_timeout)
            if thread.is_alive():
                self._warn(f"tracking: the trackers did not finish writing within {self._close_timeout:.0f} s; "
                           "what was still queued is lost")
        self._trackers = []
        self._report()



@dataclass(frozen=True)
class _EpochCall:
    """A queued :meth:`Trackers.epoch` call (the writer thread counts it done once every tracker had it)."""

    event: TrialEpoch

    def __call__(self, tracker: Tracker) -> None:
        tracker.epoch(self.event)
