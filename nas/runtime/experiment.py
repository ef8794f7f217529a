"""The :class:`Experiment`: the search loop (:mod:`nas.runtime.loop`) in a directory: config, trial store,
checkpoint, log, resume, and the job a strategy may run before its first trial (a one-shot supernet search).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write_text
from nas.core.version import __version__
from nas.evaluation.pruning import ASHA, RemotePruner
from nas.runtime.checkpoint import read_checkpoint, write_checkpoint
from nas.runtime.config import Components, ExperimentConfig, build, build_job_context, load_config
from nas.runtime.events import (
    BudgetSpent,
    Event,
    JobDone,
    JobEpoch,
    JobStarted,
    SearchStarted,
    TrialFinished,
    WaitingForWorkers,
)
from nas.runtime.executors import LocalExecutor, RayExecutor
from nas.runtime.jobs import job_runner
from nas.runtime.loop import TrialRecord, run_loop
from nas.runtime.store import RUNNING, StoredTrial, TrialStore
from nas.trials.protocols import Evaluator, Executor, JobContext, PrunableEvaluator, Pruner, Strategy
from nas.trials.trial import Trial

__all__ = ["Experiment"]


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
    #: store meta key of the placement wait under way (the progress line, time-stamped), null when there is none
    WAITING = "waiting"

    def __init__(self, cfg: ExperimentConfig, directory: Path, components: Components, elapsed: float = 0.0) -> None:
        """Prefer :meth:`create` / :meth:`open`; ``components`` are ``cfg``'s, built once by :func:`build`."""
        self.cfg = cfg
        self.directory = directory
        self.space = components.space
        self.strategy: Strategy = components.strategy
        self.evaluator: Evaluator = components.evaluator
        self.store = TrialStore(directory / self.STORE)
        self.elapsed = elapsed

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: ExperimentConfig, directory: str | Path | None = None, overwrite: bool = False) -> Experiment:
        """A new experiment in ``directory`` (default ``cfg.output`` or ``runs/<name>``)."""
        path = Path(directory or cfg.output or Path("runs") / cfg.name)
        if (path / cls.CHECKPOINT).exists() or (path / cls.STORE).exists():
            if not overwrite:
                raise ConfigError(f"{str(path)!r} already holds an experiment; resume it with `nas resume {path}`, "
                                  "choose another --out, or pass --overwrite")
            shutil.rmtree(path)
        elif path.exists() and any(path.iterdir()):
            raise ConfigError(f"{str(path)!r} exists and is not an experiment directory; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        exp = cls(cfg, path, build(cfg))
        exp._save_config()
        exp.store.set_meta("version", __version__)
        exp.store.set_meta("created", time.time())
        exp.checkpoint()
        return exp

    @classmethod
    def open(cls, directory: str | Path, max_trials: int | None = None) -> Experiment:
        """Reopen an experiment to resume it; ``max_trials`` extends (or sets) its trial budget."""
        path = Path(directory)
        if not (path / cls.CONFIG).is_file():
            raise ConfigError(f"{str(path)!r} is not an experiment directory (no {cls.CONFIG})")
        state = read_checkpoint(path / cls.CHECKPOINT)
        if max_trials is not None and max_trials < state["loop"]["done"]:
            raise ConfigError(f"--max-trials {max_trials} is below the {state['loop']['done']} trials already "
                              "done; give a larger budget")
        cfg = load_config(path / cls.CONFIG, **{"budget.max_trials": max_trials})
        components = build(cfg)
        components.strategy.load_state_dict(state["strategy"])
        exp = cls(cfg, path, components, elapsed=state["loop"]["elapsed"])
        if max_trials is not None:
            exp._save_config()
        return exp

    def _save_config(self) -> None:
        """Write ``config.yaml`` (the source of the settings) and the store's copy of it."""
        atomic_write_text(self.directory / self.CONFIG, yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        self.store.set_meta("config", self.cfg.to_dict())

    # -- state -------------------------------------------------------------------------------------
    def done(self) -> int:
        return sum(n for status, n in self.store.counts().items() if status != RUNNING)

    def checkpoint(self, session_seconds: float = 0.0) -> None:
        """Snapshot the strategy and the loop (trials done, time spent; the budget is read from the config)."""
        write_checkpoint(self.directory / self.CHECKPOINT, self.strategy.state_dict(),
                         {"done": self.done(), "elapsed": self.elapsed + session_seconds})

    def ranked(self) -> list[StoredTrial]:
        """Completed trials, best validation score first."""
        done = [t for t in self.store.trials("COMPLETE") if t.score is not None]
        return sorted(done, key=lambda t: (-t.score, t.id))  # type: ignore[operator]  # score: not None, filtered

    def job_context(self) -> JobContext:
        """What the strategy's job gets from this experiment (its directory: ``<experiment>/supernet``)."""
        return build_job_context(self.cfg, self.directory / self.JOB)

    # -- running -----------------------------------------------------------------------------------
    def make_executor(self, notify: Callable[[Event], None] | None = None) -> Executor:
        """The executor the config asks for; ``notify`` gets the Ray executor's notices (workers limited to what
        fits, waiting for placement, a node lost). Raises :class:`ConfigError` when no node can hold a trial."""
        ex = self.cfg.execution
        if ex.executor == "local":
            return LocalExecutor()
        return RayExecutor(workers=ex.workers, cpus_per_trial=ex.cpus_per_trial, gpus_per_trial=ex.gpus_per_trial,
                           address=ex.address, max_retries=ex.max_retries, threads_per_trial=ex.threads_per_trial,
                           placement_timeout=ex.placement_timeout, notify=notify)

    def _pruner(self) -> Pruner:
        """The ASHA pruner (a Ray actor for the Ray executor), fed with the rung values of finished trials."""
        options = dict(self.cfg.early_stopping)  # type: ignore[arg-type]  # called when set
        pruner = RemotePruner(**options) if self.cfg.execution.executor == "ray" else ASHA(**options)
        for t in self.store.trials():
            for h in t.history:
                pruner.report(t.id, int(h["epoch"]), h["val_acc"])
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
        for trial in self.strategy.pending:
            stored = self.store.get(trial.id)
            if stored is not None and stored.status != RUNNING:
                self.strategy.tell(trial, stored.result())
            else:
                resubmit.append(trial)
        done = self.done()
        budget = self.cfg.budget
        remaining_time = None if budget.max_seconds is None else max(0.0, budget.max_seconds - self.elapsed)
        if done >= budget.max_trials or remaining_time == 0.0:
            emit(BudgetSpent(done=done, directory=str(self.directory)))
            log.close()
            return self.ranked()
        own_executor = executor is None
        try:
            executor = executor or self.make_executor(emit)
        except BaseException:
            log.close()
            raise
        if isinstance(executor, RayExecutor):
            executor.set_notify(emit)
        if self.cfg.early_stopping is not None and isinstance(self.evaluator, PrunableEvaluator):
            # config validation allows early stopping with the train evaluator only, which has a pruner
            self.evaluator.pruner = self._pruner()
        start = time.perf_counter()
        best: list[float] = [t.score for t in self.ranked()[:1]]  # type: ignore[misc]  # ranked: scores not None
        emit(SearchStarted(name=self.cfg.name, done=done, max_trials=budget.max_trials, rerun=len(resubmit),
                           executor=self.cfg.execution.executor))

        def on_submit(trials: list[Trial]) -> None:
            for t in trials:
                self.store.submitted(t)
            self.checkpoint(time.perf_counter() - start)

        def on_record(record: TrialRecord) -> None:
            self.store.finished(record.trial, record.result, record.worker, record.retries)
            self.checkpoint(time.perf_counter() - start)
            r = record.result
            if r.ok and r.score is not None and (not best or r.score > best[0]):
                best[:] = [r.score]
            n = self.done()
            rate = (time.perf_counter() - start) / max(1, n - done)
            counts = self.store.counts()
            emit(TrialFinished(n=n, max_trials=budget.max_trials, trial_id=record.trial.id, status=r.status,
                               score=r.score, error=r.error, best=best[0] if best else None,
                               running=counts.get(RUNNING, 0), failed=counts.get("FAILED", 0),
                               eta=rate * (budget.max_trials - n)))

        try:
            self._run_job(executor, emit)
            for t in resubmit:
                earlier = self.store.get(t.id)
                self.store.submitted(t, attempts=earlier.attempts + 1 if earlier else 1)
            run_loop(self.strategy, self.evaluator, executor, max_trials=budget.max_trials,
                     max_seconds=remaining_time, done=done, resubmit=resubmit, on_submit=on_submit,
                     on_record=on_record)
        finally:
            self.elapsed += time.perf_counter() - start
            self.checkpoint()
            if waiting:
                self._set_waiting(None)
            if own_executor:
                executor.shutdown()
            log.close()
        ranked = self.ranked()
        if ranked:
            atomic_write_text(self.directory / self.BEST, ranked[0].arch.to_json(indent=2))
        return ranked

    def _set_waiting(self, event: WaitingForWorkers | None) -> None:
        """Keep the placement wait under way (None: there is none) in the store, for ``nas status``."""
        self.store.set_meta(self.WAITING, None if event is None else f"{time.strftime('%Y-%m-%d %H:%M:%S')} {event}")

    def _run_job(self, executor: Executor, emit: Callable[[Event], None]) -> None:
        """Run (or continue from its last saved epoch) the job the strategy describes, if it has one still to do,
        with the runner registered for it (:mod:`nas.runtime.jobs`); then hand the outcome to the strategy and keep
        it in the store (meta :attr:`JOB`)."""
        job = self.strategy.job(self.job_context())
        if job is None:
            return
        runner = job_runner(job)
        emit(JobStarted(name=job.name, label=job.label, epochs=job.epochs, done=len(job.read_history())))

        def on_epoch(record: dict[str, Any]) -> None:
            emit(JobEpoch(name=job.name, epoch=record["epoch"] + 1, epochs=job.epochs,
                          figures=job.describe_epoch(record)))

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
        self.strategy.tell_job(outcome)
        self.store.set_meta(self.JOB, outcome.to_dict())
        self.checkpoint()
        emit(JobDone(name=job.name, summary=outcome.describe()))

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Progress, best trials and failures grouped by reason, and the strategy's job in brief, as JSON data."""
        counts = self.store.counts()
        failures: dict[str, int] = {}
        for t in self.store.trials("FAILED"):
            failures[t.error or "?"] = failures.get(t.error or "?", 0) + 1
        return {
            "name": self.cfg.name, "directory": str(self.directory), "max_trials": self.cfg.budget.max_trials,
            "done": self.done(), "counts": counts, "elapsed_seconds": round(self.elapsed, 1),
            "best": [{"id": t.id, "score": t.score, "val_acc": t.metrics.get("val_acc"),
                      "test_acc": t.metrics.get("test_acc"), "params": t.metrics.get("params"),
                      "hash": t.hash[:12]} for t in self.ranked()[:top]],
            "failures": failures,
            self.JOB: self.strategy.job_summary(self.job_context()),
            self.WAITING: self.store.meta(self.WAITING),
        }

    def close(self) -> None:
        self.store.close()
