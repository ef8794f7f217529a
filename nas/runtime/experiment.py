"""The :class:`Experiment`: the search loop (:mod:`nas.runtime.loop`) in a directory: config, trial store,
checkpoint, log, resume, and the job a strategy may run before its first trial (a one-shot supernet search).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nas.cluster.files import DriverFiles, job_storage
from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write_text, ordinary_dir_mode, remove_stray_temps
from nas.core.version import __version__
from nas.evaluation.gan import GanEvaluator
from nas.evaluation.pruning import RemotePruner, make_pruner
from nas.graph import references
from nas.runtime.config import (
    Components,
    ExperimentConfig,
    build,
    build_job_context,
    load_config,
    pruner_options,
    tracking_settings,
)
from nas.runtime.events import (
    BaselineFinished,
    BudgetSpent,
    Event,
    JobDone,
    JobEpoch,
    JobStarted,
    Retrained,
    RetrainingCut,
    SearchStarted,
    TrackerStopped,
    TrialFinished,
    WaitingForWorkers,
)
from nas.runtime.executors import RayExecutor
from nas.runtime.inheritance import InheritingProposer, WeightShipper, settings_of
from nas.runtime.jobs import job_runner, on_driver
from nas.runtime.loop import TrialRecord, run_loop
from nas.runtime.preflight import preflight, start_executor
from nas.runtime.summary import summarise
from nas.storage.checkpoint import read_checkpoint, write_checkpoint, write_text_with_faults
from nas.storage.faults import fault_point
from nas.storage.integrity import (
    OLD_INFIX,
    STAGE_INFIX,
    check_store_against_checkpoint,
    remove_stale_stages,
    stale_stages,
)
from nas.storage.lock import ExperimentLock
from nas.storage.store import RUNNING, StoredBaseline, StoredTrial, TrialStore
from nas.storage.weights import WeightStore
from nas.tracking.base import TrackedTrial, Trackers, TrialEpoch, decision_params
from nas.tracking.replay import tracked_baselines, tracked_trials
from nas.tracking.settings import open_trackers
from nas.trials.baselines import BaselineProposer, baseline_trials
from nas.trials.objectives import feasible, parse_constraints, parse_objectives
from nas.trials.protocols import (
    Evaluator,
    Executor,
    JobContext,
    JobEvaluator,
    JobFiles,
    JobOutcome,
    JobSpec,
    Proposer,
    PrunableEvaluator,
    Pruner,
    RetrainingEvaluator,
    Strategy,
)
from nas.trials.ranking import Ranking, rank, with_retrained
from nas.trials.trial import Result, Status, Trial
from search_spaces.gan import GanSpace
from strategies import strategy_class
from strategies.dedup import Deduplicate

__all__ = ["Experiment"]


def _parts(components: Components) -> tuple[object, ...]:
    """What runs on the workers: the space, the strategy and the evaluator (whose modules a cluster gets)."""
    return components.space, components.strategy, components.evaluator


def _check_creatable(path: Path) -> None:
    """Refuse an output path that is a file or cannot be created (a parent is a file, or not writable), before
    anything is created."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output directory {str(path)!r} is a file, not a directory; choose another --out")
    parent = path
    while not parent.exists():  # the nearest existing ancestor must be a writable directory
        parent = parent.parent if parent.parent != parent else Path.cwd()
    if not parent.is_dir():
        raise ConfigError(f"output directory {str(path)!r} cannot be created: {str(parent)!r} is a file; "
                          "choose another --out")
    if parent != path and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {str(path)!r} cannot be created: {str(parent)!r} is not writable; "
                          "choose another --out")


class Experiment:
    """An experiment directory: ``config.yaml``, ``trials.db`` (the store), ``checkpoint.json``, ``search.log``
    and, when finished, ``best.json``; with a strategy that runs a job first, the job's files in ``supernet/``.
    Build with :meth:`create` (new) or :meth:`open` (resume).

    ``config.yaml`` is the one source of the settings, the trial budget included (``nas resume --max-trials``
    rewrites it); the store keeps a copy of it (meta ``config``), rewritten with it."""

    CONFIG, STORE, CHECKPOINT, LOG, BEST = "config.yaml", "trials.db", "checkpoint.json", "search.log", "best.json"
    #: a strategy's job: its directory, the store meta key of its outcome and its entry in :meth:`summary` (named
    #: after the first kind of job, a one-shot supernet search, as existing experiments hold it)
    JOB = "supernet"
    #: store meta key of a job's outcome (experiments written before it hold it under ``supernet``; readers look
    #: there too, :func:`nas.outputs.view.read_outcome`)
    JOB_META = "job"
    #: store meta key: whether the strategy runs a job first (a one-shot strategy), so that ``nas status`` need not
    #: import the strategies (and torch) to know
    RUNS_JOB = "runs_job"
    #: the evaluator's job (the weight-sharing evaluator's supernet training): its directory, and the store meta key
    #: of its outcome (JSON data, the weights stay in the job's checkpoint)
    EVALUATOR_JOB, EVALUATOR_JOB_META = "weight_sharing", "evaluator_job"
    #: store meta key of the placement wait under way (the progress line, time-stamped), null when there is none
    WAITING = "waiting"
    #: the weight store of weight inheritance (``evaluator.inherit``), see :mod:`nas.storage.weights`
    WEIGHTS = "weights"

    def __init__(self, cfg: ExperimentConfig, directory: Path, components: Components, elapsed: float = 0.0, *,
                 lock: ExperimentLock | None = None, create_store: bool = True,
                 executor: Executor | None = None) -> None:
        """Prefer :meth:`create` / :meth:`open`; ``components`` are ``cfg``'s, built once by :func:`build`;
        ``lock`` is the directory's writer lock, released by :meth:`close`; with ``create_store=False`` the
        store must already exist; ``executor`` is the one the preflight started (:meth:`make_executor` hands it
        over, :meth:`close` shuts it down if it was not)."""
        self.cfg = cfg
        self.directory = directory
        self.space = components.space
        self.strategy: Strategy = components.strategy
        self.evaluator: Evaluator = components.evaluator
        self.store = TrialStore(directory / self.STORE, create=create_store)
        #: the trained weights children inherit (None: the evaluator does not inherit weights)
        self.weights: WeightStore | None = None
        if settings_of(self.evaluator) is not None:
            try:
                self.weights = WeightStore(directory / self.WEIGHTS)
            except BaseException:
                self.store.close()
                raise
        self.elapsed = elapsed
        self._lock = lock
        self._executor = executor
        #: during run(): trials done, running and failed, kept in memory (read from the store once)
        self._tally: dict[str, int] | None = None
        #: during run(): the trackers of the config's ``tracking`` section (nas.tracking)
        self._trackers = Trackers([])
        self._share_results()
        # what the strategy's checkpointed state leaves out (its journal, kept in the store; see checkpoint())
        self.strategy.restore(self.store.journal())

    def _share_results(self) -> None:
        """With de-duplication, the wrapper's completed results are the store's: it keeps ``key -> trial id``
        and reads a result back from the store when a duplicate needs it, so the checkpoint stays the same size
        however many trials are done. A wrapper restored from such a checkpoint gets the ids of the completed
        trials it was told (those not in flight) from the store, in the order of their ids."""
        strategy = self.strategy
        if not isinstance(strategy, Deduplicate):
            return
        strategy.use_result_source(self._stored_result)
        # a child bred from a skipped duplicate must name the evaluated trial, whose weights it inherits
        strategy.track_parents = settings_of(self.evaluator) is not None
        # ... or, when the store no longer keeps that trial's weights, the duplicate's own parent
        strategy.weights_kept = self.weights.has if self.weights is not None else None
        if strategy.needs_results:
            strategy.restore_results((strategy.stored_key(arch_hash, arch_json), trial_id)
                                     for arch_hash, arch_json, trial_id in self.store.keys(Status.COMPLETE.value)
                                     if trial_id not in strategy.inflight)

    def _stored_result(self, trial_id: int) -> Result:
        result = self.store.result(trial_id)
        if result is None:
            raise NASError(f"trial {trial_id} of {str(self.directory)!r} has no result in {self.STORE}, although "
                           "the de-duplication reuses it; the store is out of step with the checkpoint")
        return result

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: ExperimentConfig, directory: str | Path | None = None, overwrite: bool = False) -> Experiment:
        """A new experiment in ``directory`` (default ``cfg.output`` or ``runs/<name>``), holding its writer lock
        (:mod:`nas.storage.lock`) until :meth:`close`.

        Creation is atomic: the components are built first (a bad setting creates nothing), then the experiment
        (``config.yaml``, ``trials.db`` with its meta, ``checkpoint.json``) is staged in a hidden sibling directory
        ``.<name>.stage-*`` and renamed into place, so ``directory`` is either absent (or as it was) or a complete
        experiment, however the process dies. Leftover stages of killed creations are removed here. An existing
        experiment is replaced only with ``overwrite`` and only if no other process is writing to it. Before
        anything is created, the output path is checked and the :func:`~nas.runtime.preflight.preflight` runs: a
        :class:`ConfigError` from either leaves the file system as it was."""
        path = Path(directory or cfg.output or Path("runs") / cfg.name)
        _check_creatable(path)
        components = build(cfg, directory=path)
        preflight(cfg, components)  # a mistake seen now costs no trial, and leaves nothing behind
        parent = path.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"output directory {str(path)!r} cannot be created ({err.strerror}: "
                              f"{err.filename}); choose another --out") from None
        remove_stale_stages(path)
        old_lock: ExperimentLock | None = None
        if any((path / name).exists() for name in (cls.CHECKPOINT, cls.STORE, cls.CONFIG)):
            if not overwrite:
                raise ConfigError(f"{str(path)!r} already holds an experiment; resume it with `nas resume {path}`, "
                                  "choose another --out, or pass --overwrite")
            old_lock = ExperimentLock.acquire(path)  # refuses while another process writes to it
        elif path.exists() and any(path.iterdir()):
            raise ConfigError(f"{str(path)!r} exists and is not an experiment directory; choose another --out")
        try:
            # the resources last (a Ray request no node can hold is refused here, before anything is created)
            executor = start_executor(cfg.execution, parts=_parts(components))
        except BaseException:
            if old_lock is not None:
                old_lock.release()
            raise
        try:
            return cls._stage(cfg, path, parent, components, old_lock, executor)
        except BaseException:
            executor.shutdown()
            raise

    @classmethod
    def _stage(cls, cfg: ExperimentConfig, path: Path, parent: Path, components: Components,
               old_lock: ExperimentLock | None, executor: Executor) -> Experiment:
        """Write the new experiment into a stage and rename it into place (:meth:`create`, after its checks)."""
        try:
            stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}{STAGE_INFIX}"))
        except OSError as err:
            if old_lock is not None:
                old_lock.release()
            raise ConfigError(f"cannot create a directory in {str(parent)!r} ({err.strerror}); choose another "
                              "--out") from None
        os.chmod(stage, ordinary_dir_mode())
        lock = ExperimentLock.acquire(stage)
        try:
            write_text_with_faults(stage / cls.CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False), "config")
            store = TrialStore(stage / cls.STORE)
            try:
                store.set_meta("config", cfg.to_dict())
                store.set_meta("version", __version__)
                store.set_meta("created", time.time())
                store.set_meta(cls.RUNS_JOB, bool(getattr(strategy_class(cfg.strategy.name), "one_shot", False)))
            finally:
                store.close()
            write_checkpoint(stage / cls.CHECKPOINT, components.strategy.state_dict(), {"done": 0, "elapsed": 0.0})
            fault_point("stage.before")
            if old_lock is not None:  # the old experiment goes aside (into a hidden sibling), locked
                trash = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}{OLD_INFIX}"))
                os.rename(path, trash / path.name)
                old_lock.moved(trash / path.name)
            try:
                os.rename(stage, path)  # replaces an empty directory, refuses a non-empty one
            except OSError as err:
                if old_lock is not None:  # put the old experiment back
                    os.rename(old_lock.directory, path)
                    old_lock.moved(path)
                raise ConfigError(f"{str(path)!r} cannot take the new experiment ({err.strerror}); another "
                                  "process may have created it meanwhile: choose another --out") from None
            lock.moved(path)
            fault_point("stage.after")
        except BaseException:
            lock.release()
            shutil.rmtree(stage, ignore_errors=True)
            if old_lock is not None:
                old_lock.release()
            raise
        if old_lock is not None:
            old_lock.release()
            shutil.rmtree(old_lock.directory.parent, ignore_errors=True)
        try:
            return cls(cfg, path, components, lock=lock, create_store=False, executor=executor)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, directory: str | Path, max_trials: int | None = None) -> Experiment:
        """Reopen an experiment to resume it; ``max_trials`` extends (or sets) its trial budget. Holds the writer
        lock (:mod:`nas.storage.lock`) until :meth:`close`: a second writer gets a :class:`ConfigError` naming this
        one.

        Before anything is written, the store and the checkpoint are checked against each other
        (:func:`check_store_against_checkpoint`): a missing, empty, corrupt or foreign ``trials.db``, or one that
        disagrees with ``checkpoint.json``, is a :class:`ConfigError` and nothing in the directory changes. So is
        anything the :func:`~nas.runtime.preflight.preflight` refuses, run again as for a new search (the data, the
        options or the cluster may have changed since), the resources included. Then the temp files of interrupted
        atomic writes are removed."""
        path = Path(directory)
        if not (path / cls.CONFIG).is_file():
            hint = ""
            if not path.exists() and stale_stages(path):
                hint = (f"; a `nas search --out {path}` was killed while creating it, before any trial ran: start it "
                        "again with `nas search CONFIG --out` that directory")
            raise ConfigError(f"{str(path)!r} is not an experiment directory (no {cls.CONFIG}){hint}")
        lock = ExperimentLock.acquire(path)
        try:
            state = read_checkpoint(path / cls.CHECKPOINT)
            if max_trials is not None and max_trials < state["loop"]["done"]:
                raise ConfigError(f"--max-trials {max_trials} is below the {state['loop']['done']} trials already "
                                  "done; give a larger budget")
            cfg = load_config(path / cls.CONFIG, **{"budget.max_trials": max_trials})
            components = build(cfg, directory=path)
            components.strategy.load_state_dict(state["strategy"])
            reader = TrialStore(path / cls.STORE, readonly=True)
            try:
                check_store_against_checkpoint(reader, state, components.strategy, path / cls.CHECKPOINT)
            finally:
                reader.close()
            preflight(cfg, components)
            executor = start_executor(cfg.execution, parts=_parts(components))
        except BaseException:
            lock.release()
            raise
        try:
            remove_stray_temps(path)
            remove_stray_temps(path / cls.JOB)
            remove_stray_temps(path / cls.EVALUATOR_JOB)
            exp = cls(cfg, path, components, elapsed=state["loop"]["elapsed"], lock=lock, create_store=False,
                      executor=executor)
        except BaseException:
            executor.shutdown()
            lock.release()
            raise
        try:
            if max_trials is not None:
                exp._save_config()
        except BaseException:
            exp.close()
            raise
        return exp

    def _save_config(self) -> None:
        """Write ``config.yaml`` (the source of the settings) and the store's copy of it."""
        write_text_with_faults(self.directory / self.CONFIG, yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
                               "config")
        self.store.set_meta("config", self.cfg.to_dict())

    # -- state -------------------------------------------------------------------------------------
    def done(self) -> int:
        return sum(n for status, n in self.store.counts().items() if status != RUNNING)

    def checkpoint(self, session_seconds: float = 0.0) -> None:
        """Snapshot the strategy and the loop (trials done, time spent; the budget is read from the config),
        after appending the strategy's journal records to the store. During :meth:`run` the trials done are its
        count, otherwise they are counted in the store."""
        done = self.done() if self._tally is None else self._tally["done"]
        # the strategy's journal goes to the store first: the records a checkpoint's state leaves out are stored
        # before it (records stored after it, of trials it holds in flight or never asked, are ignored on resume)
        self.store.write_journal(self.strategy.journal())
        write_checkpoint(self.directory / self.CHECKPOINT, self.strategy.state_dict(),
                         {"done": done, "elapsed": self.elapsed + session_seconds})

    def ranking(self) -> Ranking[StoredTrial]:
        """The stored trials ranked under the config's constraints (:func:`nas.trials.ranking.rank`): feasible
        completed trials by validation score, and the infeasible ones kept apart; the winners retrained from scratch
        (weight sharing) first, by their stand-alone score (:func:`nas.trials.ranking.with_retrained`)."""
        return with_retrained(self.search_ranking(), self.store.retrained(), ident=lambda t: t.id,
                              outcome=lambda t: t)

    def search_ranking(self) -> Ranking[StoredTrial]:
        """The stored trials ranked by the search's own score (the inherited-weight one, with weight sharing)."""
        return rank(self.store.trials("COMPLETE"), parse_constraints(self.cfg.constraints), ident=lambda t: t.id,
                    outcome=lambda t: t)

    def ranked(self) -> list[StoredTrial]:
        """Completed trials that meet the constraints, best validation score first (empty when none does)."""
        return self.ranking().ranked

    def job_context(self, folder: str | None = None) -> JobContext:
        """What the strategy's job gets from this experiment (its directory: ``<experiment>/supernet``; its files
        under ``<execution.storage>/<name>/supernet`` when a storage location is configured); ``folder`` in place
        of ``supernet`` for another job (the evaluator's, :attr:`EVALUATOR_JOB`)."""
        folder = folder or self.JOB
        storage = self.cfg.execution.storage
        files = None if storage is None else job_storage(storage, self.cfg.name, folder)
        return dataclasses.replace(build_job_context(self.cfg, self.directory / folder), files=files)

    # -- running -----------------------------------------------------------------------------------
    def make_executor(self, notify: Callable[[Event], None] | None = None) -> Executor:
        """The executor the config asks for, the caller's to shut down: the one the preflight started when this
        experiment still holds it (handed over once), else a new one (:func:`~nas.runtime.preflight.start_executor`).
        ``notify`` gets the Ray executor's notices (workers limited to what fits, waiting for placement, a node
        lost). Raises :class:`ConfigError` when no node can hold a trial."""
        executor, self._executor = self._executor, None
        if executor is None:
            return start_executor(self.cfg.execution, notify, (self.space, self.strategy, self.evaluator))
        if isinstance(executor, RayExecutor):
            executor.set_notify(notify)
        return executor

    def _job_files(self, executor: Executor, folder: str | None = None
                   ) -> tuple[JobFiles | None, Callable[[], None]]:
        """Where the job's files go (see :mod:`nas.cluster.files`) and how to let go of it: the configured
        storage (``<execution.storage>/<name>/<folder>``, ``folder`` by default :attr:`JOB`); else, on Ray, the
        experiment's directory reached through an actor on this (the driver's) node, so a job on any node
        checkpoints here; else None (the experiment's directory, written in this process)."""
        folder = folder or self.JOB
        context = self.job_context(folder)
        if context.files is not None:
            return context.files, lambda: None
        if isinstance(executor, RayExecutor):
            address = self.cfg.execution.address or ""
            if address.startswith("ray://"):  # a Ray Client's driver runs on the head: its disk is not ours
                raise ConfigError(f"execution.address = {address!r} is a Ray Client address: the supernet job's "
                                  "checkpoints cannot reach this machine through it; set execution.storage to a "
                                  "location every node reaches (s3://bucket/prefix or a shared absolute path)")
            files = DriverFiles.start(self.directory / folder, executor.runtime_env)
            return files, files.close
        return None, lambda: None

    def _pruner(self, executor: Executor) -> Pruner:
        """The configured pruner (ASHA or Hyperband; a Ray actor for the Ray executor, in its workers' runtime
        environment), fed with the rung values of finished trials."""
        options = pruner_options(self.cfg)
        pruner = (RemotePruner(timeout=self.cfg.execution.placement_timeout, runtime_env=executor.runtime_env,
                               **options) if isinstance(executor, RayExecutor) else make_pruner(**options))
        for t in self.store.trials():
            for h in t.history:
                pruner.report(t.id, int(h["epoch"]), h.get("score", h.get("val_acc", float("-inf"))))
        return pruner

    def run(self, executor: Executor | None = None, progress: Callable[[Event], None] | None = None
            ) -> list[StoredTrial]:
        """Run (or continue) the search until the budget is spent; returns the ranked trials. ``progress``
        receives every progress :mod:`event <nas.runtime.events>` (``str(event)`` is its line, which also goes,
        time-stamped, to ``search.log``)."""
        say = progress or (lambda event: None)
        log = open(self.directory / self.LOG, "a", buffering=1)

        def emit(event: Event) -> None:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event}\n")
            if isinstance(event, WaitingForWorkers) or (waiting and isinstance(event, TrialFinished)):
                self._set_waiting(event if isinstance(event, WaitingForWorkers) else None)
                waiting[:] = [event] if isinstance(event, WaitingForWorkers) else []
            say(event)

        waiting: list[Event] = []  # the last placement wait reported, until a trial finishes

        # Trials asked before a stop: their results may already be in the store (stopped between the store write
        # and the checkpoint), otherwise they run again.
        resubmit = []
        pending = self.strategy.pending
        for trial in pending:
            stored = self.store.get(trial.id)
            if stored is not None and stored.status != RUNNING:
                self.strategy.tell(trial, stored.result())
            else:
                resubmit.append(trial)
        done = self.done()
        budget = self.cfg.budget
        remaining_time = None if budget.max_seconds is None else max(0.0, budget.max_seconds - self.elapsed)
        baselines = self._baselines_to_run()
        # the retraining of a weight-sharing search's winners is part of the time budget: none once it is spent
        retrain = self._retrain_todo() if done >= budget.max_trials or remaining_time == 0.0 else []
        if remaining_time == 0.0 or (done >= budget.max_trials and not baselines and not retrain):
            if retrain and budget.max_seconds is not None:
                emit(RetrainingCut(left=len(retrain), total=len(retrain) + len(self._retrained_ids()),
                                   max_seconds=budget.max_seconds))
            emit(BudgetSpent(done=done, directory=str(self.directory)))
            log.close()
            if len(resubmit) < len(pending):  # stopped after the last results were stored, before the rest
                self.checkpoint()
            ranked = self.ranked()
            self._write_best(ranked)
            return ranked
        own_executor = executor is None
        try:
            executor = executor or self.make_executor(emit)
        except BaseException:
            log.close()
            raise
        if isinstance(executor, RayExecutor):
            executor.set_notify(emit)
        start = time.perf_counter()
        best: list[float] = [t.score for t in self.ranked()[:1]]  # type: ignore[misc]  # ranked: scores not None
        constraints = parse_constraints(self.cfg.constraints)
        try:
            self._trackers = self._open_trackers(emit)
        except BaseException:
            if own_executor:
                executor.shutdown()
            log.close()
            raise
        set_sink = getattr(executor, "set_epoch_sink", None)
        if self._trackers and callable(set_sink):
            set_sink(self._epoch_sink(self._trackers))
        emit(SearchStarted(name=self.cfg.name, done=done, max_trials=budget.max_trials, rerun=len(resubmit),
                           executor=self.cfg.execution.executor))
        # The per-trial bookkeeping is constant-time: counts kept here (read from the store once, above), one
        # checkpoint per ask (which also covers the results told since the previous one: a result recorded in the
        # store but not yet in the checkpoint belongs to a trial the checkpoint holds as pending, and is told
        # again from the store on resume, above).
        tally = {"done": done, "running": len(resubmit), "failed": self.store.counts().get(Status.FAILED.value, 0)}
        self._tally = tally
        # weight inheritance: children carry their parent's weights; finished trials' weights go to the store
        proposer: Proposer = self.strategy
        settings = settings_of(self.evaluator)
        shipper = None
        if self.weights is not None and settings is not None:
            live = getattr(self.strategy, "live_parents", None)  # optional: the parents it may still pick
            shipper = WeightShipper(self.weights, settings, ray=isinstance(executor, RayExecutor),
                                    live=live if callable(live) else None)
            proposer = InheritingProposer(self.strategy, shipper)

        def on_submit(trials: list[Trial]) -> None:
            for t in trials:
                self.store.submitted(t)
            tally["running"] += len(trials)
            self.checkpoint(time.perf_counter() - start)

        def on_record(record: TrialRecord) -> None:
            if shipper is not None:  # the weights first: a kill between the two runs the trial again, same weights
                shipper.record(record.trial, record.result)
            self.store.finished(record.trial, record.result, record.worker, record.retries)
            r = record.result
            tally["done"] += 1
            tally["running"] -= 1
            tally["failed"] += r.status is Status.FAILED
            if r.ok and r.score is not None and (not best or r.score > best[0]) and feasible(r, constraints):
                best[:] = [r.score]
            n = tally["done"]
            rate = (time.perf_counter() - start) / max(1, n - done)
            emit(TrialFinished(n=n, max_trials=budget.max_trials, trial_id=record.trial.id, status=r.status,
                               score=r.score, error=r.error, best=best[0] if best else None,
                               running=tally["running"], failed=tally["failed"],
                               eta=rate * (budget.max_trials - n)))
            if self._trackers:
                arch = record.trial.arch
                self._trackers.trial(TrackedTrial(
                    id=record.trial.id, n=n, arch=arch, hash=arch.canonical_hash(), seed=record.trial.seed,
                    status=r.status, score=r.score, metrics=r.metrics, history=r.history, error=r.error,
                    params=decision_params(self.space, arch), best=best[0] if best else None))

        failed = False
        try:
            # the baselines first, before the pruner is set: early stopping never sees (or stops) a baseline
            self._run_baselines(baselines, executor, emit, remaining_time)
            if remaining_time is not None:
                remaining_time = max(0.0, remaining_time - (time.perf_counter() - start))
            if done < budget.max_trials and remaining_time != 0.0:
                if self.cfg.early_stopping is not None and isinstance(self.evaluator, PrunableEvaluator):
                    # config validation allows early stopping for the train and ssl evaluators, which have a pruner
                    self.evaluator.pruner = self._pruner(executor)
                self._run_job(executor, emit)
                for t in resubmit:
                    earlier = self.store.get(t.id)
                    self.store.submitted(t, attempts=earlier.attempts + 1 if earlier else 1)
                if shipper is not None:
                    resubmit = [shipper.attach(t) for t in resubmit]
                run_loop(proposer, self.evaluator, executor, max_trials=budget.max_trials,
                         max_seconds=remaining_time, done=done, resubmit=resubmit, on_submit=on_submit,
                         on_record=on_record, keep_records=False)
            # the winners of a cheap score (inherited weights) trained again from scratch, ranked by that, within
            # what is left of the time budget
            left = (None if budget.max_seconds is None
                    else max(0.0, budget.max_seconds - self.elapsed - (time.perf_counter() - start)))
            self._run_retraining(self._retrain_todo(), executor, emit, left)
        except BaseException:
            failed = True
            self._close_trackers()
            raise
        finally:
            self.elapsed += time.perf_counter() - start
            try:
                self.checkpoint()
            finally:
                self._tally = None
            if waiting:
                self._set_waiting(None)
            if own_executor:
                executor.shutdown()
            elif callable(set_sink):
                set_sink(None)
            if failed:
                log.close()
        try:
            ranked = self.ranked()
            self._write_best(ranked)
            self._trackers.artifacts({name: self.directory / name for name in (self.BEST, "report.html")
                                      if (self.directory / name).is_file()})
        finally:
            self._close_trackers()  # waits for the trackers' queue; their warnings still go to the log
            log.close()
        return ranked

    def _epoch_sink(self, trackers: Trackers) -> Callable[[int, int, int, dict[str, float]], None]:
        """Where the executor hands live epochs: each one to ``trackers`` as a :class:`TrialEpoch` with the
        trial's decisions (read from the store at its first epoch). A baseline's epochs (negative ids) are not
        streamed: it is mirrored when it finishes."""
        params: dict[int, dict[str, Any]] = {}

        def sink(trial_id: int, attempt: int, epoch: int, metrics: dict[str, float]) -> None:
            if trial_id < 0:
                return
            if trial_id not in params:
                if len(params) > 4096:  # trials long finished: their decisions are not needed again
                    params.clear()
                stored = self.store.get(trial_id)
                params[trial_id] = decision_params(self.space, stored.arch) if stored is not None else {}
            trackers.epoch(TrialEpoch(trial_id=trial_id, attempt=attempt, epoch=epoch, metrics=metrics,
                                      params=params[trial_id]))
        return sink

    def _close_trackers(self) -> None:
        trackers, self._trackers = self._trackers, Trackers([])
        trackers.close()

    def _open_trackers(self, emit: Callable[[Event], None]) -> Trackers:
        """The trackers the config's ``tracking`` section turns on (none: an empty :class:`Trackers`), caught up
        with the trials the store holds that they lack (finished while tracking was off, or before a crash); a
        tracker that fails later is reported as a :class:`TrackerStopped` event and dropped."""
        settings = tracking_settings(self.cfg, self.directory)
        if not settings:
            return Trackers([])
        cfg = self.cfg
        params = {"strategy": cfg.strategy.name, "space": cfg.space.name, "evaluator": cfg.evaluator.name,
                  "task": cfg.evaluator.task or "", "seed": cfg.seed, "max_trials": cfg.budget.max_trials,
                  "objectives": ", ".join(map(str, cfg.objectives)), "dedup": cfg.strategy.dedup,
                  **{f"strategy.{k}": v if isinstance(v, (str, int, float, bool)) else str(v)
                     for k, v in cfg.strategy.options.items()}}
        objectives = [(o.metric, o.direction) for o in parse_objectives(cfg.objectives)]
        trackers = open_trackers(settings, name=cfg.name, space=self.space, objectives=objectives, params=params,
                                 warn=lambda text: emit(TrackerStopped(message=text)))
        for tracked in tracked_trials(self.store.trials(), self.space, parse_constraints(cfg.constraints)):
            trackers.trial(tracked)
        for name, baseline in tracked_baselines(self.store.baselines(), self.space):
            trackers.baseline(name, baseline)
        return trackers

    def _write_best(self, ranked: list[StoredTrial]) -> None:
        """``best.json``: the rank-1 architecture (rewritten only when it changed); none without a feasible trial
        (one left by an earlier version may name an infeasible trial)."""
        best_file = self.directory / self.BEST
        if not ranked:
            best_file.unlink(missing_ok=True)
        elif not best_file.is_file() or best_file.read_text() != ranked[0].arch.to_json(indent=2):
            atomic_write_text(best_file, ranked[0].arch.to_json(indent=2))

    def baselines(self) -> list[StoredBaseline]:
        """The baselines recorded so far (see :mod:`nas.trials.baselines`), in the config's order."""
        return self.store.baselines()

    def _baselines_to_run(self) -> list[tuple[str, Trial]]:
        """``(name, trial)`` of the config's baselines that have no result yet (a finished one never runs again)."""
        finished = {b.name for b in self.store.baselines() if b.status != RUNNING}
        # a generator search's baselines are its space's references (the config check made sure of it)
        architecture = self.space.reference if isinstance(self.space, GanSpace) else references.get
        return [(name, trial) for name, trial in baseline_trials(self.cfg.baselines, self.cfg.seed, architecture)
                if name not in finished]

    def _baseline_evaluators(self, todo: list[tuple[str, Trial]]) -> list[tuple[Evaluator, list[Trial]]]:
        """The baselines ``todo`` grouped by the evaluator that trains them: the search's, except that a
        generator reference trains with the settings it is published with (``space.reference_training``, e.g.
        WGAN-GP's loss) through a copy of the gan evaluator (``with_training``), everything else the search's."""
        groups: dict[str, tuple[Evaluator, list[Trial]]] = {}
        for name, trial in todo:
            settings: dict[str, Any] = {}
            evaluator: Evaluator = self.evaluator
            if isinstance(self.space, GanSpace) and isinstance(self.evaluator, GanEvaluator):
                settings = self.space.reference_training(name)
                evaluator = self.evaluator.with_training(**settings)
            key = json.dumps(settings, sort_keys=True)
            groups.setdefault(key, (evaluator, []))[1].append(trial)
        return list(groups.values())

    def _run_baselines(self, todo: list[tuple[str, Trial]], executor: Executor, emit: Callable[[Event], None],
                       max_seconds: float | None) -> None:
        """Train the baselines ``todo`` with the search's evaluator on ``executor`` (the same loop, with a fixed
        list of trials in place of the strategy, which learns nothing of them; a generator reference with its
        published loss, see :meth:`_baseline_evaluators`), recording each in the store's baselines table."""
        if not todo:
            return
        names = {trial.id: name for name, trial in todo}
        earlier = {b.name: b.attempts for b in self.store.baselines()}
        n = [0]

        def on_submit(trials: list[Trial]) -> None:
            for t in trials:
                self.store.baseline_submitted(names[t.id], t, attempts=earlier.get(names[t.id], 0) + 1)

        def on_record(record: TrialRecord) -> None:
            name, r = names[record.trial.id], record.result
            self.store.baseline_finished(name, r, record.worker, record.retries)
            n[0] += 1
            emit(BaselineFinished(name=name, n=n[0], total=len(todo), status=r.status, score=r.score, error=r.error,
                                  params=r.metrics.get("params")))
            if self._trackers:
                arch = record.trial.arch
                self._trackers.baseline(name, TrackedTrial(
                    id=record.trial.id, n=0, arch=arch, hash=arch.canonical_hash(), seed=record.trial.seed,
                    status=r.status, score=r.score, metrics=r.metrics, history=r.history, error=r.error,
                    params=decision_params(self.space, arch)))

        start = time.monotonic()
        for evaluator, trials in self._baseline_evaluators(todo):
            left = None if max_seconds is None else max(0.0, max_seconds - (time.monotonic() - start))
            run_loop(BaselineProposer(trials), evaluator, executor, max_trials=len(trials),
                     max_seconds=left, on_submit=on_submit, on_record=on_record, keep_records=False)

    def _retrain_todo(self) -> list[Trial]:
        """The search's ``retrain_top`` best trials (by its own score) with no stand-alone result yet (a
        :class:`~nas.trials.protocols.RetrainingEvaluator` only; none for other evaluators)."""
        evaluator = self.evaluator
        if not isinstance(evaluator, RetrainingEvaluator) or evaluator.retrain_top <= 0:
            return []
        finished = self._retrained_ids()
        return [t.trial for t in self.search_ranking().ranked[:evaluator.retrain_top] if t.id not in finished]

    def _retrained_ids(self) -> set[int]:
        """The ids of the trials with a stand-alone result (see :meth:`_retrain_todo`)."""
        return {t.id for t in self.store.retrained() if t.status != RUNNING}

    def _run_retraining(self, todo: list[Trial], executor: Executor, emit: Callable[[Event], None],
                        max_seconds: float | None = None) -> None:
        """Train the trials ``todo`` again from scratch with the evaluator's ``retrainer()`` (the same loop, with a
        fixed list of trials; the strategy learns nothing of them) and record each stand-alone result, with its
        inherited-weight score as ``inherited_score`` (and ``inherited_val_acc``), in the store's retrained table.
        No retraining starts once ``max_seconds`` (what is left of ``budget.max_seconds``; None: no limit) have
        passed (those in flight finish); the rest keep their cheap score, and a :class:`RetrainingCut` says so."""
        if not todo or not isinstance(self.evaluator, RetrainingEvaluator):
            return
        if max_seconds == 0.0:
            emit(RetrainingCut(left=len(todo), total=len(todo) + len(self._retrained_ids()),
                               max_seconds=self.cfg.budget.max_seconds or 0.0))
            return
        cheap = {t.id: self.store.result(t.id) for t in todo}
        earlier = {t.id: t.attempts for t in self.store.retrained()}
        n = [0]

        def on_submit(trials: list[Trial]) -> None:
            for t in trials:
                self.store.retrain_submitted(t, attempts=earlier.get(t.id, 0) + 1)

        def on_record(record: TrialRecord) -> None:
            before, r = cheap[record.trial.id], record.result
            extra = {} if before is None else {"inherited_score": before.score,
                                               "inherited_val_acc": before.metrics.get("val_acc")}
            r = dataclasses.replace(r, metrics={**r.metrics, **{k: v for k, v in extra.items() if v is not None}},
                                    info={**r.info, "retrained": "from scratch, after weight sharing"})
            self.store.retrain_finished(record.trial.id, r, record.worker, record.retries)
            n[0] += 1
            emit(Retrained(trial_id=record.trial.id, n=n[0], total=len(todo), status=r.status, score=r.score,
                           inherited=None if before is None else before.score, error=r.error))

        run_loop(BaselineProposer(todo), self.evaluator.retrainer(), executor, max_trials=len(todo),
                 max_seconds=max_seconds, on_submit=on_submit, on_record=on_record, keep_records=False)
        if n[0] < len(todo) and max_seconds is not None:
            emit(RetrainingCut(left=len(todo) - n[0], total=len(todo) + len(self._retrained_ids()) - n[0],
                               max_seconds=self.cfg.budget.max_seconds or 0.0))

    def _set_waiting(self, event: WaitingForWorkers | None) -> None:
        """Keep the placement wait under way (None: there is none) in the store, for ``nas status``."""
        self.store.set_meta(self.WAITING, None if event is None else f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event}")

    def _run_job(self, executor: Executor, emit: Callable[[Event], None]) -> None:
        """Run (or continue from its last saved epoch) the job the strategy describes, if it has one still to do,
        with the runner registered for it (:mod:`nas.runtime.jobs`); then hand the outcome to the strategy and keep
        it in the store (meta :attr:`JOB_META`). Then the same for the evaluator's job (a
        :class:`~nas.trials.protocols.JobEvaluator`; folder :attr:`EVALUATOR_JOB`, meta :attr:`EVALUATOR_JOB_META`),
        which runs every session: its outcome is not checkpointed, a finished job's runner reads it back."""
        if self.strategy.job(self.job_context()) is not None:
            files, release = self._job_files(executor)
            try:
                job = self.strategy.job(dataclasses.replace(self.job_context(), files=files))
                assert job is not None  # as just asked
                self._run_described_job(executor, on_driver(job), emit)
            finally:
                release()
        evaluator = self.evaluator
        if not isinstance(evaluator, JobEvaluator) or evaluator.job(self.job_context(self.EVALUATOR_JOB)) is None:
            return
        files, release = self._job_files(executor, self.EVALUATOR_JOB)
        try:
            job = evaluator.job(dataclasses.replace(self.job_context(self.EVALUATOR_JOB), files=files))
            assert job is not None  # as just asked
            self._run_described_job(executor, on_driver(job), emit, tell=evaluator.tell_job,
                                    meta=self.EVALUATOR_JOB_META)
        finally:
            release()

    def _run_described_job(self, executor: Executor, job: JobSpec, emit: Callable[[Event], None],
                           tell: Callable[[JobOutcome], None] | None = None, meta: str | None = None) -> None:
        """Run ``job``, hand its outcome to ``tell`` (the strategy's ``tell_job`` by default) and keep it in the
        store under ``meta`` (:attr:`JOB_META` by default)."""
        runner = job_runner(job)
        emit(JobStarted(name=job.name, label=job.label, epochs=job.epochs, done=len(job.read_history())))

        def on_epoch(record: dict[str, Any]) -> None:
            emit(JobEpoch(name=job.name, epoch=record["epoch"] + 1, epochs=job.epochs,
                          figures=job.describe_epoch(record)))
            self._trackers.job_epoch(job.name, record)

        try:
            outcome = executor.run_job(runner, job, on_epoch)
        except NASError:
            raise
        except Exception as err:  # out of memory, a bug in a custom op, ...: say what and how to go on
            done = len(job.read_history())
            first = str(err).splitlines()[0][:300] if str(err) else ""
            raise NASError(f"the {job.name} search failed after {done} of {job.epochs} epochs: "
                           f"{type(err).__name__}: {first}{job.failure_hint(first)}; fix it, then "
                           f"`nas resume {self.directory}` continues from the last saved epoch") from err
        (tell or self.strategy.tell_job)(outcome)
        self.store.set_meta(meta or self.JOB_META, outcome.to_dict())
        self.checkpoint()
        emit(JobDone(name=job.name, summary=outcome.describe()))

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Progress, best trials (feasible ones only), how many completed trials meet the constraints, failures
        grouped by reason, and the strategy's and the evaluator's jobs in brief, as JSON data
        (:func:`nas.runtime.summary.summarise`)."""
        return summarise(name=self.cfg.name, directory=self.directory, max_trials=self.cfg.budget.max_trials,
                         done=self.done(), counts=self.store.counts(), elapsed=self.elapsed, ranking=self.ranking(),
                         failed=self.store.trials("FAILED"), job=self.strategy.job_summary(self.job_context()),
                         waiting=self.store.meta(self.WAITING), top=top, baselines=self.store.baselines(),
                         evaluator_job=self._evaluator_job_summary())

    def _evaluator_job_summary(self) -> dict[str, Any] | None:
        """The evaluator's job in brief, its own account (:meth:`~nas.trials.protocols.JobEvaluator.job_summary`);
        None for an evaluator that runs no job."""
        evaluator = self.evaluator
        if not isinstance(evaluator, JobEvaluator):
            return None
        return evaluator.job_summary(self.job_context(self.EVALUATOR_JOB))

    def close(self) -> None:
        """Shut down the executor the preflight started if no run took it, close the store and release the writer
        lock (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()
        self.store.close()
        if self.weights is not None:
            self.weights.close()
        if self._lock is not None:
            self._lock.release()
