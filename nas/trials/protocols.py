"""The plug points of the search loop as :class:`typing.Protocol` s: what the loop and the other layers use of a
search space, a strategy, an evaluator, an executor and a strategy's job (its description and its runner), and the
records that cross them.

Structural types: an implementation satisfies a protocol by having its members, without inheriting from it
(``search_spaces.SearchSpace``, ``strategies.Strategy``, ``nas.evaluation.evaluators.Evaluator`` and the executors
of ``nas.runtime.executors`` do). They live here, below every layer that uses them, so that evaluation and
strategies can type a space without importing ``search_spaces``, and the runtime can type a strategy without
importing ``strategies``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial

__all__ = ["Space", "Proposer", "Strategy", "Evaluator", "Pruner", "PrunableEvaluator", "TrialExecutor", "Executor",
           "JobSpec", "JobRunner", "JobOutcome", "JobContext", "JobFiles", "Completion", "EpochCallback", "JobProgress",
           "JobEvaluator", "RetrainingEvaluator"]

#: called by an evaluator after each training epoch with ``(epoch, metrics)``; returning False stops the training
EpochCallback = Callable[[int, dict[str, float]], "bool | None"]
#: called by a job after each of its epochs with that epoch's record (a JSON-able dict with at least ``epoch``)
JobProgress = Callable[[dict[str, Any]], None]


class Space(Protocol):
    """A search space: architectures as integer decisions (``decode``/``encode``), sampling, local moves and
    membership. ``name`` and ``input_kind`` (``"image"`` or ``"sequence"``) say what it builds."""

    @property
    def name(self) -> str: ...

    @property
    def input_kind(self) -> str: ...

    def options(self) -> dict[str, Any]: ...

    def decision_sizes(self) -> list[int]: ...

    def decision_names(self) -> list[str]: ...

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        """What each value of every decision stands for (op names, ...), unique within a decision."""
        ...

    def decode(self, decisions: Sequence[int]) -> Architecture: ...

    def encode(self, arch: Architecture) -> list[int]: ...

    def check(self, arch: Architecture) -> None:
        """Raise :class:`~nas.core.errors.InvalidArchitectureError` saying why ``arch`` is not a member."""
        ...

    def contains(self, arch: Architecture) -> bool: ...

    def size(self) -> int: ...

    def sample(self, rng: np.random.Generator) -> Architecture: ...

    def mutate(self, arch: Architecture, rng: np.random.Generator, attempts: int = 16) -> Architecture: ...

    def neighbours(self, arch: Architecture) -> list[Architecture]: ...


class Evaluator(Protocol):
    """Turns a trial into a result (training, a table lookup, a zero-cost proxy); never raises for a bad
    candidate: a failure is a FAILED result. Shipped to workers by pickling."""

    @property
    def name(self) -> str: ...

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result: ...


class Pruner(Protocol):
    """Early stopping across trials (ASHA, Hyperband): ``report`` records a trial's validation value at an epoch
    and says whether the trial goes on (False: stop it)."""

    def report(self, trial_id: int, epoch: int, value: float) -> bool: ...


@runtime_checkable
class PrunableEvaluator(Evaluator, Protocol):
    """An evaluator that trains epoch by epoch and stops a trial when its ``pruner`` (None: none) says so; the
    experiment sets the pruner when the config asks for early stopping."""

    pruner: Pruner | None


class JobFiles(Protocol):
    """Where a job keeps the files that must survive it (checkpoints, per-epoch records, its result), by name.

    ``read(name)`` is the file's bytes, None when it does not exist; ``write(name, data)`` replaces it whole or
    not at all; ``where(name)`` says where it is, for messages. It must pickle: a job carries it to the Ray
    worker it runs on, which may be on another machine than the driver, so an implementation never means a path
    of one node only (the runtime hands out a directory on the driver reached through Ray, or a ``pyarrow.fs``
    location such as ``s3://bucket/prefix``)."""

    def read(self, name: str) -> bytes | None: ...

    def write(self, name: str, data: bytes) -> None: ...

    def where(self, name: str) -> str: ...


@dataclass(frozen=True, kw_only=True)
class JobContext:
    """What a strategy's job may use from the experiment, and nothing more: the evaluator's task and task
    options (the default task to work on), the experiment seed, the directory the job keeps its files in
    (its files go there unless ``files`` is given: then the job reads and writes them through ``files``, which
    reach the driver or the configured storage from any node) and torch threads per worker."""

    task: str | None
    task_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    directory: Path
    threads: int | None = None
    files: JobFiles | None = None


class JobOutcome(Protocol):
    """What a job returns: JSON data for the store (``to_dict``) and a one-line account for the progress log."""

    def to_dict(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


class JobSpec(Protocol):
    """Work a strategy needs done before it proposes trials (a one-shot supernet search), described as data: the
    strategy builds it and never runs it. The runtime runs it with the :class:`JobRunner` registered under its
    ``name`` (:mod:`nas.runtime.jobs`), in-process or as one Ray task, so it must be picklable. Its runner
    checkpoints after every epoch in the job's directory, so that running it again continues where it stopped, and
    writes the per-epoch records where ``read_history`` finds them. ``name`` is a short noun for the kind of job
    and for messages (``supernet``: "supernet epoch 3/20: ...", "supernet search done: ..."), ``label`` says which
    variant runs (``darts``), ``epochs`` how many epochs it runs at most."""

    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def epochs(self) -> int: ...

    def read_history(self) -> list[dict[str, Any]]: ...

    def describe_epoch(self, record: dict[str, Any]) -> str:
        """The figures of one epoch record, on one line."""
        ...

    def failure_hint(self, message: str) -> str:
        """A hint on how to get past a failure with this first line of error ``message`` ("" if none)."""
        ...


_SpecIn = TypeVar("_SpecIn", bound=JobSpec, contravariant=True)  # the job descriptions a runner takes
_Spec = TypeVar("_Spec", bound=JobSpec)


class JobRunner(Protocol[_SpecIn]):
    """Runs a job of one kind: ``runner(spec, on_epoch)`` does the work ``spec`` describes (continuing from its
    last checkpoint), calls ``on_epoch`` with each epoch's record, and returns the outcome. A module-level
    function, so that it pickles by reference to a Ray worker."""

    def __call__(self, spec: _SpecIn, on_epoch: JobProgress | None = None, /) -> JobOutcome: ...


class Proposer(Protocol):
    """The part of a strategy the loop drives: ``ask`` for trials, ``tell`` their results."""

    def ask(self, n: int = 1) -> list[Trial]: ...

    def tell(self, trial: Trial, result: Result) -> None: ...


class Strategy(Proposer, Protocol):
    """An ask/tell search strategy (see ``strategies.base.Strategy``): resumable through ``state_dict``, and
    optionally needing a job done first: ``job(context)`` describes that job (a :class:`JobSpec`; the runtime runs
    it) while it is still to be done (else None) and ``tell_job`` receives its outcome; ``job_summary`` describes
    it for ``nas status`` (None without a job). History that grows with the search may leave the state through
    ``journal`` and come back through ``restore``, so that the checkpoint keeps a constant size. Optionally,
    ``live_parents()`` returns the ids of the trials it may still name as a child's parent (a set, or None: it does
    not say), whose weights weight inheritance then never collects (``strategies.base.Strategy.live_parents``)."""

    @property
    def name(self) -> str: ...

    @property
    def space(self) -> Space: ...

    @property
    def seed(self) -> int: ...

    @property
    def pending(self) -> list[Trial]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def journal(self) -> list[tuple[int, dict[str, Any]]]:
        """``(key, record)`` pairs of history the strategy's state leaves out, each handed out once, for a keeper
        (the experiment's store) to append before the state is saved; a later record of a key replaces an earlier
        one."""
        ...

    def restore(self, history: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """After ``load_state_dict``: every record ``journal`` handed out, by key; records written after the state
        was saved are ignored."""
        ...

    def job(self, context: JobContext) -> JobSpec | None: ...

    def tell_job(self, outcome: JobOutcome) -> None: ...

    def job_summary(self, context: JobContext) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Completion:
    """A finished trial as an executor reports it: the result, the worker it ran on (None in-process) and the
    extra attempts it needed because a worker died (``retries``)."""

    trial: Trial
    result: Result
    worker: str | None = None
    retries: int = 0


class TrialExecutor(Protocol):
    """Runs trials: at most ``capacity`` at once; ``next_done`` blocks until one finishes (in any order)."""

    @property
    def capacity(self) -> int: ...

    def submit(self, evaluator: Evaluator, trial: Trial) -> None: ...

    def next_done(self) -> Completion: ...


class Executor(TrialExecutor, Protocol):
    """A trial executor that also runs a strategy's job, ``runner(spec)`` (blocking until it ends; ``on_progress``
    gets each epoch record as it is made), and releases its workers on ``shutdown``."""

    def run_job(self, runner: JobRunner[_Spec], spec: _Spec, on_progress: JobProgress | None = None) -> JobOutcome: ...

    def shutdown(self) -> None: ...


@runtime_checkable
class JobEvaluator(Evaluator, Protocol):
    """An evaluator that needs a job done before its first trial (the weight-sharing evaluator's supernet
    training), as a strategy may: ``job(context)`` describes it while it is still to be done (else None; the
    runtime runs it, in the ``weight_sharing`` folder of the experiment, each session: a finished job's runner
    returns its outcome from its checkpoint), ``tell_job`` receives its outcome and ``job_summary`` describes it
    for ``nas status``."""

    def job(self, context: JobContext) -> JobSpec | None: ...

    def tell_job(self, outcome: JobOutcome) -> None: ...

    def job_summary(self, context: JobContext) -> dict[str, Any] | None: ...


@runtime_checkable
class RetrainingEvaluator(Evaluator, Protocol):
    """An evaluator whose scores are cheap estimates (inherited weights): when the search's budget is spent the
    experiment trains its ``retrain_top`` best candidates again with ``retrainer()`` (an evaluator that trains
    from scratch) and ranks them first, by that stand-alone score."""

    retrain_top: int

    def retrainer(self) -> Evaluator: ...
