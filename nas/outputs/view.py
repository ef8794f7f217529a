"""One read-only view of an experiment directory, for ``nas status``, ``nas report``, ``nas export`` and
:func:`nas.load_experiment`.

:meth:`ExperimentView.open` reads, once: ``config.yaml`` (validated), every row of ``trials.db`` (opened
read-only, see :class:`~nas.storage.store.TrialStore`), the loop state of ``checkpoint.json``, the one-shot
outcome (store meta ``supernet``) and, while a supernet search is under way, ``supernet/history.json``; the same
of the weight-sharing evaluator's supernet training (store meta ``evaluator_job``, ``weight_sharing/history.json``).
A job's files are read where the experiment writes them: in its directory, or under ``execution.storage`` when
that is set (:func:`nas.cluster.files.job_storage`). It creates and modifies no file, builds no strategy or
evaluator, and works on a running experiment as well as a finished one (it is then a snapshot of the moment it
was opened).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nas.cluster.files import job_storage
from nas.core.errors import ConfigError
from nas.core.io import DirectoryFiles
from nas.oneshot.config import OneShotConfig
from nas.oneshot.outcome import SearchOutcome
from nas.oneshot.spec import SupernetJob
from nas.runtime.config import ExperimentConfig, read_config
from nas.runtime.summary import summarise
from nas.storage.checkpoint import read_checkpoint
from nas.storage.store import RUNNING, StoredBaseline, StoredTrial, TrialStore
from nas.trials.objectives import parse_constraints
from nas.trials.protocols import JobFiles
from nas.trials.ranking import Ranking, rank, with_retrained
from nas.trials.trial import Status
from nas.weightsharing.spec import SposConfig, trained_summary, training_summary

__all__ = ["ExperimentView", "read_outcome"]

# The layout nas.runtime.experiment.Experiment writes (not imported from there: it loads the evaluators, torch).
CONFIG, STORE, CHECKPOINT = "config.yaml", "trials.db", "checkpoint.json"
JOB_META, SUPERNET_META, RUNS_JOB = "job", "supernet", "runs_job"  # SUPERNET_META: before JOB_META existed
#: the folders of the strategy's job and of the evaluator's job, and the store meta key of the evaluator job's outcome
JOB, EVALUATOR_JOB, EVALUATOR_JOB_META = "supernet", "weight_sharing", "evaluator_job"
#: the evaluator that runs a job first (a supernet training), by its config name
_JOB_EVALUATOR = "weight_sharing"


#: an ExperimentView or a subclass of it (what :meth:`ExperimentView.open` builds)
_View = TypeVar("_View", bound="ExperimentView")


def read_outcome(store: TrialStore) -> SearchOutcome | None:
    """The one-shot search outcome recorded in the store (meta ``job``; ``supernet`` in experiments written before),
    or None."""
    outcome = store.meta(JOB_META)
    if outcome is None:
        outcome = store.meta(SUPERNET_META)
    return SearchOutcome.from_dict(outcome) if isinstance(outcome, dict) else None


def job_files(config: ExperimentConfig, directory: Path, folder: str) -> JobFiles:
    """Where the experiment in ``directory`` keeps the files of the job in ``folder``: under ``execution.storage``
    when the config sets one, else in the experiment's directory."""
    storage = config.execution.storage
    return DirectoryFiles(directory / folder) if storage is None else job_storage(storage, config.name, folder)


def _history(files: JobFiles) -> tuple[dict[str, Any], ...]:
    """The per-epoch records a job has written so far (empty before its first epoch ends)."""
    data = files.read(SupernetJob.HISTORY)
    return tuple(json.loads(data)) if data is not None else ()


def _trains_supernet(config: ExperimentConfig) -> bool:
    """Whether the configured strategy runs a supernet search first (a one-shot strategy)."""
    from strategies import strategy_class  # lazy: torch, measured 1.4 s / 880 modules (view: 602 modules)

    return bool(getattr(strategy_class(config.strategy.name), "one_shot", False))


@dataclass(frozen=True, kw_only=True)
class ExperimentView:
    """An experiment directory as read at one moment; build it with :meth:`open`.

    ``trials`` are the store's rows by id; ``supernet`` is the one-shot outcome (derived ``arch``, ``alphas``,
    per-epoch ``history``, ...) or None; ``loop`` is the checkpoint's loop state (``done``, ``elapsed``,
    ``max_trials``), None when there is no checkpoint yet; ``supernet_history`` the epochs a running supernet
    search has finished (empty once it is done or for other strategies); ``waiting`` the last report of trials
    waiting for the Ray cluster to place a worker, while the wait lasts (None otherwise). ``evaluator_job`` and
    ``evaluator_history`` are the same for the weight-sharing evaluator's supernet training (its stored outcome
    data, :meth:`nas.weightsharing.spec.SharedWeights.to_dict`; the epochs done while it runs).
    """

    directory: Path
    config: ExperimentConfig
    trials: tuple[StoredTrial, ...]
    version: str | None
    created: float | None
    supernet: SearchOutcome | None
    loop: dict[str, Any] | None
    supernet_history: tuple[dict[str, Any], ...]
    status_counts: dict[str, int]
    waiting: str | None = None
    #: the baselines (reference models trained beside the search), in the config's order
    baselines: tuple[StoredBaseline, ...] = ()
    #: whether the strategy runs a job first, as recorded at creation (None in experiments written before)
    runs_job: bool | None = None
    #: the weight-sharing evaluator's winners retrained from scratch (stand-alone results, under their trial ids)
    retrained: tuple[StoredTrial, ...] = ()
    #: the evaluator's supernet training: its outcome as stored (None until it is done) and the epochs it has run
    evaluator_job: dict[str, Any] | None = None
    evaluator_history: tuple[dict[str, Any], ...] = ()

    @classmethod
    def open(cls: type[_View], directory: str | Path) -> _View:
        """Read the experiment in ``directory`` without changing anything in it.

        Raises :class:`~nas.core.errors.ConfigError` naming the directory when it holds no experiment
        (``config.yaml`` and ``trials.db`` are both needed), when the config is invalid, or when the store or
        the checkpoint cannot be read."""
        path = Path(directory)
        if not (path / CONFIG).is_file() or not (path / STORE).is_file():
            raise ConfigError(f"{str(path)!r} is not an experiment directory (it needs {CONFIG} and {STORE}); "
                              "give the directory `nas search` wrote")
        config = read_config(path / CONFIG)
        store = TrialStore(path / STORE, readonly=True)  # SQLite errors: a ConfigError naming the file
        try:
            trials = tuple(store.trials())
            counts = store.counts()
            version, created = store.meta("version"), store.meta("created")
            outcome = read_outcome(store)
            waiting = store.meta("waiting")
            baselines = tuple(store.baselines())
            runs_job = store.meta(RUNS_JOB)
            retrained = tuple(store.retrained())
            evaluator_job = store.meta(EVALUATOR_JOB_META)
        finally:
            store.close()
        loop = read_checkpoint(path / CHECKPOINT)["loop"] if (path / CHECKPOINT).is_file() else None
        history = _history(job_files(config, path, JOB)) if outcome is None else ()
        if not isinstance(evaluator_job, dict):
            evaluator_job = None
        evaluator_history: tuple[dict[str, Any], ...] = ()
        if evaluator_job is None and config.evaluator.name == _JOB_EVALUATOR:
            evaluator_history = _history(job_files(config, path, EVALUATOR_JOB))
        return cls(directory=path, config=config, trials=trials, version=version,
                   created=created if isinstance(created, (int, float)) else None, supernet=outcome, loop=loop,
                   supernet_history=history, status_counts=counts,
                   waiting=waiting if isinstance(waiting, str) else None, baselines=baselines,
                   runs_job=runs_job if isinstance(runs_job, bool) else None, retrained=retrained,
                   evaluator_job=evaluator_job, evaluator_history=evaluator_history)

    # -- what the search has done -----------------------------------------------------------------------------
    def ranking(self) -> Ranking[StoredTrial]:
        """The trials ranked under the config's constraints (:func:`nas.trials.ranking.rank`), as
        ``Experiment.ranking()`` ranks them: feasible completed trials by validation score, infeasible ones apart."""
        ranking = rank(self.trials, parse_constraints(self.config.constraints), ident=lambda t: t.id,
                       outcome=lambda t: t)
        return with_retrained(ranking, self.retrained, ident=lambda t: t.id, outcome=lambda t: t)

    def ranked(self) -> list[StoredTrial]:
        """Completed trials that meet the constraints, best validation score first (ties: lower id first); empty
        when none does (:meth:`ranking` says why)."""
        return self.ranking().ranked

    def counts(self) -> dict[str, int]:
        """Number of trials per status (``RUNNING`` included), as the store counts them."""
        return dict(self.status_counts)

    @property
    def done(self) -> int:
        """Trials with a result (every status but ``RUNNING``)."""
        return sum(n for status, n in self.status_counts.items() if status != RUNNING)

    @property
    def elapsed(self) -> float:
        """Seconds the search has run, over all sessions, as of the last checkpoint (0 without one)."""
        return float(self.loop["elapsed"]) if self.loop is not None else 0.0

    def supernet_summary(self) -> dict[str, Any] | None:
        """The one-shot search in brief: ``state`` ``done`` (see :meth:`SearchOutcome.summary`) or ``searching`` with
        the epochs run so far; None for strategies that train no supernet."""
        if self.supernet is not None:
            return self.supernet.summary()
        if not (self.runs_job if self.runs_job is not None else _trains_supernet(self.config)):
            return None
        epochs = self.config.strategy.options.get("epochs", OneShotConfig.epochs)
        return {"state": "searching", "epochs_run": len(self.supernet_history), "epochs": epochs}

    def evaluator_job_summary(self) -> dict[str, Any] | None:
        """The weight-sharing evaluator's supernet training in brief: ``state`` ``training`` with the epochs run so
        far, or ``done`` (:func:`nas.weightsharing.spec.trained_summary`); None for evaluators that run no job."""
        if self.evaluator_job is not None:
            return trained_summary(self.evaluator_job)
        if self.config.evaluator.name != _JOB_EVALUATOR:
            return None
        epochs = self.config.evaluator.options.get("supernet_epochs", SposConfig.epochs)
        return training_summary(len(self.evaluator_history), epochs)

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Progress, the ``top`` best feasible trials, the infeasible ones apart, failures by reason, the one-shot
        search, the evaluator's supernet training and the placement wait, as JSON data (``nas status --json``;
        :func:`nas.runtime.summary.summarise`)."""
        return summarise(name=self.config.name, directory=self.directory, max_trials=self.config.budget.max_trials,
                         done=self.done, counts=self.counts(), elapsed=self.elapsed, ranking=self.ranking(),
                         failed=(t for t in self.trials if t.status == Status.FAILED), job=self.supernet_summary(),
                         waiting=self.waiting, top=top, baselines=self.baselines,
                         evaluator_job=self.evaluator_job_summary())
