"""The search loop, written once for every strategy, evaluator and executor, and the :class:`Experiment`
that gives it a directory: config, trial store, checkpoint, resume.

ask for as many trials as the executor has free slots -> submit -> collect a finished result -> tell the
strategy -> record -> checkpoint -> repeat until the budget is spent; then rank by the validation score.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nas.core.errors import ConfigError, NASError
from nas.core.io import atomic_write_text
from nas.evaluation.evaluators import Evaluator
from nas.runtime.checkpoint import read_checkpoint, write_checkpoint
from nas.runtime.store import RUNNING, StoredTrial, TrialStore
from nas.trials.trial import Result, Trial

__all__ = ["TrialRecord", "run_loop", "rank", "Experiment"]


@dataclass
class TrialRecord:
    """A finished trial: what was evaluated, what came back, and when (seconds since the loop started)."""

    trial: Trial
    result: Result
    finished_at: float


def run_loop(strategy: Any, evaluator: Evaluator, executor: Any, *, max_trials: int,
             max_seconds: float | None = None, done: int = 0, resubmit: Iterable[Trial] = (),
             on_submit: Callable[[list[Trial]], None] | None = None,
             on_record: Callable[[TrialRecord], None] | None = None) -> list[TrialRecord]:
    """Run the search until ``max_trials`` results in all (``done`` of them from earlier sessions) have been
    told, or ``max_seconds`` have passed (trials in flight then still finish). ``resubmit`` are trials asked
    earlier whose results never arrived; they run first. Returns this session's records in completion order."""
    start = time.perf_counter()
    records: list[TrialRecord] = []
    in_flight = 0
    resubmit = list(resubmit)
    submitted = done
    for trial in resubmit:
        executor.submit(evaluator, trial)
    submitted += len(resubmit)
    in_flight += len(resubmit)
    while done + len(records) < max_trials:
        out_of_time = max_seconds is not None and time.perf_counter() - start >= max_seconds
        free = min(executor.capacity - in_flight, max_trials - submitted)
        if free > 0 and not out_of_time:
            trials = strategy.ask(free)
            if on_submit is not None:
                on_submit(trials)
            for trial in trials:
                executor.submit(evaluator, trial)
            submitted += len(trials)
            in_flight += len(trials)
        if in_flight == 0:
            break
        trial, result = executor.next_done()
        in_flight -= 1
        strategy.tell(trial, result)
        record = TrialRecord(trial, result, time.perf_counter() - start)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def rank(records: list[TrialRecord]) -> list[TrialRecord]:
    """Completed records, best validation score first (ties: earlier trial first). Test accuracy plays no part."""
    done = [r for r in records if r.result.ok and r.result.score is not None]
    return sorted(done, key=lambda r: (-r.result.score, r.trial.id))  # type: ignore[operator]  # scores filtered non-None


def _version() -> str:
    from nas.core.version import __version__

    return __version__


class Experiment:
    """An experiment directory: ``config.yaml``, ``trials.db`` (the store), ``checkpoint.json``, ``search.log``
    and, when finished, ``best.json``. Build with :meth:`create` (new) or :meth:`open` (resume)."""

    CONFIG, STORE, CHECKPOINT, LOG, BEST = "config.yaml", "trials.db", "checkpoint.json", "search.log", "best.json"

    def __init__(self, cfg: Any, directory: Path, strategy: Any, elapsed: float = 0.0) -> None:
        from nas.runtime.config import build_evaluator

        self.cfg = cfg
        self.directory = directory
        self.strategy = strategy
        self.evaluator = build_evaluator(cfg, strategy.space)
        self.store = TrialStore(directory / self.STORE)
        self.elapsed = elapsed

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: Any, directory: str | Path | None = None, overwrite: bool = False) -> Experiment:
        """A new experiment in ``directory`` (default ``cfg.output`` or ``runs/<name>``)."""
        from nas.runtime.config import build_space, build_strategy

        path = Path(directory or cfg.output or Path("runs") / cfg.name)
        if (path / cls.CHECKPOINT).exists() or (path / cls.STORE).exists():
            if not overwrite:
                raise ConfigError(f"{str(path)!r} already holds an experiment; resume it with `nas resume {path}`, "
                                  "choose another --out, or pass --overwrite")
            shutil.rmtree(path)
        elif path.exists() and any(path.iterdir()):
            raise ConfigError(f"{str(path)!r} exists and is not an experiment directory; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        exp = cls(cfg, path, build_strategy(cfg, build_space(cfg)))
        atomic_write_text(path / cls.CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        exp.store.set_meta("config", cfg.to_dict())
        exp.store.set_meta("version", _version())
        exp.store.set_meta("created", time.time())
        exp.checkpoint()
        return exp

    @classmethod
    def open(cls, directory: str | Path, max_trials: int | None = None) -> Experiment:
        """Reopen an experiment to resume it; ``max_trials`` extends (or sets) its trial budget."""
        from nas.runtime.config import build_space, build_strategy, load_config

        path = Path(directory)
        if not (path / cls.CONFIG).is_file():
            raise ConfigError(f"{str(path)!r} is not an experiment directory (no {cls.CONFIG})")
        state = read_checkpoint(path / cls.CHECKPOINT)
        cfg = load_config(path / cls.CONFIG)
        if max_trials is not None:
            if max_trials < state["loop"]["done"]:
                raise ConfigError(f"--max-trials {max_trials} is below the {state['loop']['done']} trials already "
                                  "done; give a larger budget")
            cfg = cfg.replace(**{"budget.max_trials": max_trials})
            atomic_write_text(path / cls.CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        strategy = build_strategy(cfg, build_space(cfg))
        strategy.load_state_dict(state["strategy"])
        return cls(cfg, path, strategy, elapsed=state["loop"]["elapsed"])

    # -- state -------------------------------------------------------------------------------------
    def done(self) -> int:
        return sum(n for status, n in self.store.counts().items() if status != RUNNING)

    def checkpoint(self, session_seconds: float = 0.0) -> None:
        write_checkpoint(self.directory / self.CHECKPOINT, self.strategy.state_dict(),
                         {"done": self.done(), "elapsed": self.elapsed + session_seconds,
                          "max_trials": self.cfg.budget.max_trials})

    def ranked(self) -> list[StoredTrial]:
        """Completed trials, best validation score first."""
        done = [t for t in self.store.trials("COMPLETE") if t.score is not None]
        return sorted(done, key=lambda t: (-t.score, t.id))  # type: ignore[operator]  # done keeps scored trials only; mypy does not narrow inside the lambda

    # -- running -----------------------------------------------------------------------------------
    def make_executor(self) -> Any:
        from nas.runtime.executors import LocalExecutor, RayExecutor

        ex = self.cfg.execution
        if ex.executor == "local":
            return LocalExecutor()
        return RayExecutor(workers=ex.workers, cpus_per_trial=ex.cpus_per_trial, gpus_per_trial=ex.gpus_per_trial,
                           address=ex.address, max_retries=ex.max_retries, threads_per_trial=ex.threads_per_trial)

    def _pruner(self) -> Any:
        """The ASHA pruner (a Ray actor for the Ray executor), fed with the rung values of finished trials."""
        from nas.evaluation.pruning import ASHA, RemotePruner

        options = dict(self.cfg.early_stopping)
        pruner = RemotePruner(**options) if self.cfg.execution.executor == "ray" else ASHA(**options)
        for t in self.store.trials():
            for h in t.history:
                pruner.report(t.id, int(h["epoch"]), h["val_acc"])
        return pruner

    def run(self, executor: Any = None, progress: Callable[[str], None] | None = None) -> list[StoredTrial]:
        """Run (or continue) the search until the budget is spent; returns the ranked trials."""
        say = progress or (lambda line: None)
        log = open(self.directory / self.LOG, "a", buffering=1)

        def emit(line: str) -> None:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")
            say(line)

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
            emit(f"budget already spent ({done} trials); extend it with `nas resume {self.directory} --max-trials N`")
            log.close()
            return self.ranked()
        own_executor = executor is None
        executor = executor or self.make_executor()
        if self.cfg.early_stopping is not None:
            self.evaluator.pruner = self._pruner()
        start = time.perf_counter()
        best: list[float] = [t.score for t in self.ranked()[:1]]  # type: ignore[misc]  # ranked(): scored trials only
        emit(f"search {self.cfg.name}: {done}/{budget.max_trials} trials done, "
             f"{len(resubmit)} to run again, executor {self.cfg.execution.executor}")

        def on_submit(trials: list[Trial]) -> None:
            for t in trials:
                self.store.submitted(t)
            self.checkpoint(time.perf_counter() - start)

        def on_record(record: TrialRecord) -> None:
            worker = getattr(executor, "worker_of", {}).get(record.trial.id)
            retries = getattr(executor, "retries_of", {}).get(record.trial.id, 0)
            self.store.finished(record.trial, record.result, worker, retries)
            self.checkpoint(time.perf_counter() - start)
            r = record.result
            if r.ok and r.score is not None and (not best or r.score > best[0]):
                best[:] = [r.score]
            n = self.done()
            rate = (time.perf_counter() - start) / max(1, n - done)
            eta = rate * (budget.max_trials - n)
            what = f"score {r.score:.2f}" if r.ok and r.score is not None else f"{r.status.value}: {r.error}"
            counts = self.store.counts()
            emit(f"[{n}/{budget.max_trials}] trial {record.trial.id} {r.status.value} {what} | "
                 f"best {best[0] if best else float('nan'):.2f} | running {counts.get(RUNNING, 0)} | "
                 f"failed {counts.get('FAILED', 0)} | eta {eta:.0f}s")

        try:
            self._search_phase(executor, emit)
            for t in resubmit:
                earlier = self.store.get(t.id)
                self.store.submitted(t, attempts=earlier.attempts + 1 if earlier else 1)
            run_loop(self.strategy, self.evaluator, executor, max_trials=budget.max_trials,
                     max_seconds=remaining_time, done=done, resubmit=resubmit, on_submit=on_submit,
                     on_record=on_record)
        finally:
            self.elapsed += time.perf_counter() - start
            self.checkpoint()
            if own_executor:
                executor.shutdown()
            log.close()
        ranked = self.ranked()
        if ranked:
            atomic_write_text(self.directory / self.BEST, ranked[0].arch.to_json(indent=2))
        return ranked

    # -- one-shot strategies ---------------------------------------------------------------------------
    SUPERNET = "supernet"

    @property
    def oneshot(self) -> Any:
        """The strategy (unwrapped from de-duplication) when it is a one-shot strategy, else None."""
        inner = getattr(self.strategy, "inner", self.strategy)
        return inner if getattr(inner, "one_shot", False) else None

    def supernet_job(self) -> Any:
        """The search job of a one-shot strategy (None for other strategies or once the search is done)."""
        from nas.oneshot.job import SupernetJob

        oneshot = self.oneshot
        if oneshot is None or oneshot.outcome is not None:
            return None
        task = oneshot.task or self.cfg.evaluator.task
        if task is None:
            raise ConfigError(f"strategy.options.task: the {oneshot.name} strategy trains a supernet on a task; "
                              "set evaluator.task or strategy.options.task")
        options = oneshot.task_options if oneshot.task else dict(self.cfg.evaluator.task_options)
        return SupernetJob(space=oneshot.space, task=task, task_options=options, seed=self.cfg.seed,
                           config=oneshot.config, directory=str(self.directory / self.SUPERNET),
                           threads=self.cfg.execution.threads_per_trial)

    def _search_phase(self, executor: Any, emit: Callable[[str], None]) -> None:
        """Run (or continue from its last epoch) the supernet search of a one-shot strategy, then hand the
        outcome to the strategy and record it in the store (meta ``supernet``)."""
        job = self.supernet_job()
        if job is None:
            return
        oneshot = self.oneshot
        epochs = job.config.epochs
        done = len(job.read_history())
        emit(f"supernet search ({oneshot.name}, {epochs} epochs): "
             + (f"resuming after epoch {done}" if done else "starting"))

        def on_epoch(r: dict[str, Any]) -> None:
            emit(f"supernet epoch {r['epoch'] + 1}/{epochs}: train acc {r['train_acc']:.1f} | search-val acc "
                 f"{r['search_val_acc']:.1f} | parameter-free {r['param_free_share']:.0%} | entropy "
                 f"{r['entropy']:.3f}" + (f" | WARNING {r['warning']}" if "warning" in r else ""))

        try:
            outcome = executor.run_job(job, on_epoch)
        except NASError:
            raise
        except Exception as err:  # out of memory, a bug in a custom op, ...: say what and how to go on
            done = len(job.read_history())
            first = str(err).splitlines()[0][:300] if str(err) else ""
            hint = (" (out of memory: lower strategy.options.batch_size or set partial_channels: 2 or 4)"
                    if "out of memory" in first.lower() else "")
            raise NASError(f"the supernet search failed after {done} of {epochs} epochs: {type(err).__name__}: "
                           f"{first}{hint}; fix it, then `nas resume {self.directory}` continues from the last "
                           "saved epoch") from err
        oneshot.tell_search(outcome)
        self.store.set_meta(self.SUPERNET, outcome)
        self.checkpoint()
        from nas.graph.architecture import Architecture

        emit(f"supernet search done: {outcome['epochs_run']} epochs, {outcome['wall_seconds']:.0f}s "
             f"({outcome['cpu_seconds'] / 60:.1f} CPU-min); derived "
             f"{Architecture.from_json(outcome['arch']).canonical_hash()[:12]}"
             + (f"; stopped: {outcome['stopped']}" if outcome["stopped"] else ""))

    def summary(self, top: int = 5) -> dict[str, Any]:
        """Progress, best trials and failures grouped by reason, as JSON data."""
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
            "supernet": self._supernet_summary(),
        }

    def _supernet_summary(self) -> dict[str, Any] | None:
        """The one-shot search in brief (None for other strategies): epochs, cost, collapse warnings, outcome."""
        outcome = self.store.meta(self.SUPERNET)
        if outcome is None:
            job = self.supernet_job()
            if job is None:
                return None
            return {"state": "searching", "epochs_run": len(job.read_history()), "epochs": job.config.epochs}
        last = outcome["history"][-1] if outcome["history"] else {}
        from nas.graph.architecture import Architecture

        return {"state": "done", "algorithm": outcome["algorithm"], "epochs_run": outcome["epochs_run"],
                "cpu_minutes": round(outcome["cpu_seconds"] / 60.0, 2), "stopped": outcome["stopped"],
                "warnings": len(outcome["warnings"]), "param_free_share": last.get("param_free_share"),
                "entropy": last.get("entropy"),
                "derived": Architecture.from_json(outcome["arch"]).canonical_hash()[:12]}

    def close(self) -> None:
        self.store.close()

