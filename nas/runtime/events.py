"""Progress of a search as typed events. ``str(event)`` is the progress line (the same text goes to the terminal
and, time-stamped, to ``search.log``); the fields say what happened, so a display decides what to show from
them instead of parsing the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.trials.trial import Status

__all__ = ["Event", "SearchStarted", "BudgetSpent", "TrialFinished", "BaselineFinished", "Retrained", "RetrainingCut",
           "JobStarted",
           "JobEpoch", "JobDone", "WorkersLimited", "WaitingForWorkers", "NodeLost", "TrackerStopped"]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of the progress events."""

    def __str__(self) -> str:  # pragma: no cover - every event renders itself
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SearchStarted(Event):
    """A session of experiment ``name`` starts with ``done`` of ``max_trials`` trials done and ``rerun`` trials
    whose results were lost to run again."""

    name: str
    done: int
    max_trials: int
    rerun: int
    executor: str

    def __str__(self) -> str:
        return (f"search {self.name}: {self.done}/{self.max_trials} trials done, {self.rerun} to run again, "
                f"executor {self.executor}")


@dataclass(frozen=True, kw_only=True)
class BudgetSpent(Event):
    """Nothing to run: the trial or time budget is spent (``done`` trials); the experiment is in ``directory``."""

    done: int
    directory: str

    def __str__(self) -> str:
        return (f"budget already spent ({self.done} trials); extend it with `nas resume {self.directory} "
                "--max-trials N`")


@dataclass(frozen=True, kw_only=True)
class TrialFinished(Event):
    """Trial ``trial_id`` finished, the ``n``-th of ``max_trials``; ``best`` is the best score so far (None before
    the first), ``running``/``failed`` count trials in the store, ``eta`` estimates the seconds left."""

    n: int
    max_trials: int
    trial_id: int
    status: Status
    score: float | None
    error: str | None
    best: float | None
    running: int
    failed: int
    eta: float

    @property
    def last(self) -> bool:
        """True for the trial that spends the budget."""
        return self.n == self.max_trials

    def __str__(self) -> str:
        what = (f"score {self.score:.2f}" if self.status is Status.COMPLETE and self.score is not None
                else f"{self.status.value}: {self.error}")
        best = float("nan") if self.best is None else self.best
        return (f"[{self.n}/{self.max_trials}] trial {self.trial_id} {self.status.value} {what} | best {best:.2f} | "
                f"running {self.running} | failed {self.failed} | eta {self.eta:.0f}s")


@dataclass(frozen=True, kw_only=True)
class BaselineFinished(Event):
    """Baseline ``name`` (a reference model trained beside the search) finished, the ``n``-th of ``total`` to run
    in this session; ``params`` is its parameter count when measured."""

    name: str
    n: int
    total: int
    status: Status
    score: float | None
    error: str | None
    params: float | None

    def __str__(self) -> str:
        what = (f"score {self.score:.2f}" if self.status is Status.COMPLETE and self.score is not None
                else f"{self.status.value}: {self.error}")
        params = f", {self.params:,.0f} params" if self.params else ""
        return f"[baseline {self.n}/{self.total}] {self.name} {self.status.value} {what}{params}"


@dataclass(frozen=True, kw_only=True)
class Retrained(Event):
    """Search trial ``trial_id`` (one of the best by a cheap score, ``inherited``) was trained again from scratch,
    the ``n``-th of ``total`` in this session; ``score`` is its stand-alone validation score."""

    trial_id: int
    n: int
    total: int
    status: Status
    score: float | None
    inherited: float | None
    error: str | None

    def __str__(self) -> str:
        what = (f"stand-alone score {self.score:.2f}" if self.status is Status.COMPLETE and self.score is not None
                else f"{self.status.value}: {self.error}")
        inherited = f" (inherited-weight score {self.inherited:.2f})" if self.inherited is not None else ""
        return f"[retrain {self.n}/{self.total}] trial {self.trial_id} {what}{inherited}"


@dataclass(frozen=True, kw_only=True)
class RetrainingCut(Event):
    """The time budget (``budget.max_seconds``) ran out before ``left`` of the ``total`` best trials by a cheap
    score were trained again from scratch: they keep their cheap (inherited-weight) score."""

    left: int
    total: int
    max_seconds: float

    def __str__(self) -> str:
        return (f"budget.max_seconds = {self.max_seconds:g} spent: {self.left} of the {self.total} best trials not "
                "retrained from scratch (they keep their inherited-weight score); raise budget.max_seconds or "
                "lower evaluator.options.retrain_top to retrain them all")


@dataclass(frozen=True, kw_only=True)
class JobStarted(Event):
    """A strategy's job starts (``done == 0``) or continues after ``done`` of its ``epochs`` epochs."""

    name: str
    label: str
    epochs: int
    done: int

    def __str__(self) -> str:
        return (f"{self.name} search ({self.label}, {self.epochs} epochs): "
                + (f"resuming after epoch {self.done}" if self.done else "starting"))


@dataclass(frozen=True, kw_only=True)
class JobEpoch(Event):
    """Epoch ``epoch`` (counted from 1) of ``epochs`` of a job ended; ``figures`` are its figures on one line."""

    name: str
    epoch: int
    epochs: int
    figures: str

    def __str__(self) -> str:
        return f"{self.name} epoch {self.epoch}/{self.epochs}: {self.figures}"


@dataclass(frozen=True, kw_only=True)
class JobDone(Event):
    """A job ended; ``summary`` is its outcome in one line (epochs, cost, result)."""

    name: str
    summary: str

    def __str__(self) -> str:
        return f"{self.name} search done: {self.summary}"


@dataclass(frozen=True, kw_only=True)
class WorkersLimited(Event):
    """Only ``fit`` of the ``requested`` workers fit the cluster (each needs ``need``; the cluster offers
    ``cluster``): the search runs ``fit`` trials at a time."""

    requested: int
    fit: int
    need: str
    cluster: str

    def __str__(self) -> str:
        return (f"warning: only {self.fit} of the {self.requested} workers requested (execution.workers) fit the Ray "
                f"cluster (each needs {self.need}; the cluster has {self.cluster}): running {self.fit} at a time")


@dataclass(frozen=True, kw_only=True)
class WaitingForWorkers(Event):
    """``waiting`` trials have waited ``seconds`` for a worker the cluster has not placed (``running`` trials run
    meanwhile); each worker needs ``need`` and ``free`` is what the cluster has free now. ``stops_in`` is the
    time left before the search stops (``execution.placement_timeout``), None while trials still run. ``what``
    names what waits (``trial(s)``, or a strategy's job such as ``supernet job``)."""

    waiting: int
    running: int
    seconds: float
    need: str
    free: str
    stops_in: float | None
    what: str = "trial(s)"

    def __str__(self) -> str:
        stop = ("" if self.stops_in is None else
                f"; with nothing running, the search stops in {self.stops_in:.0f}s (execution.placement_timeout)")
        return (f"waiting {self.seconds:.0f}s for the Ray cluster to place a worker: {self.waiting} {self.what} "
                f"waiting, {self.running} running; each worker needs {self.need}, free now: {self.free}{stop}")


@dataclass(frozen=True, kw_only=True)
class NodeLost(Event):
    """The Ray node ``node`` died; the trials ``trials`` that ran on it run again on the remaining nodes, which
    hold ``capacity`` workers."""

    node: str
    trials: tuple[int, ...]
    capacity: int

    def __str__(self) -> str:
        again = (f"trial(s) {', '.join(map(str, self.trials))} run again elsewhere" if self.trials
                 else "no trial was running there")
        return f"Ray node {self.node} lost: {again}; the remaining nodes hold {self.capacity} worker(s)"


@dataclass(frozen=True, kw_only=True)
class TrackerStopped(Event):
    """A tracker (:mod:`nas.tracking`) failed and was dropped; ``message`` names it and the error. The search goes
    on."""

    message: str

    def __str__(self) -> str:
        return f"warning: {self.message}"
