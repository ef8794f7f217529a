"""De-duplication by canonical hash, as a wrapper that is itself a strategy (ray's ConcurrencyLimiter pattern).

Architectures that compute the same function as one already evaluated (equal ``canonical_hash``) are never
evaluated again: the wrapped strategy is told the earlier result at once and asked again. Duplicates of an
architecture still in flight wait for its result. After ``max_retries`` duplicates in a row (a small or
exhausted space) the duplicate is let through. Only completed results are reused; a failed one may be retried.

The completed results grow with the search. Standalone, the wrapper keeps them and its :meth:`state_dict`
holds them all. Inside an experiment, whose trial store already keeps every result, :meth:`use_result_source`
makes it keep only ``hash -> trial id`` and read a result back through the store when a duplicate needs it;
its state then leaves the results out (constant size however long the search), and a restored wrapper is given
``hash -> trial id`` of the trials told so far, from the store, by :meth:`restore_results`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nas.core.checks import is_int
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.trials.protocols import JobContext, JobOutcome, JobSpec
from nas.trials.trial import Result, Status, Trial
from strategies.base import Strategy

__all__ = ["Deduplicate"]


class Deduplicate(Strategy):
    """Wraps ``inner``; ``name``, space, seed and objectives are the inner strategy's, and so is its job (the job
    hooks are forwarded)."""

    def __init__(self, inner: Strategy, *, max_retries: int = 200) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # a ClassVar, set per wrapper instance
        self.multi_objective = inner.multi_objective  # type: ignore[misc]  # ClassVar, per wrapper
        self.space = inner.space
        self.seed = inner.seed
        self.objectives = inner.objectives
        self.constraints = inner.constraints
        self.max_retries = max_retries
        #: canonical hash -> its completed result (standalone) or the id of the trial that has it (with a source)
        self.results: dict[str, Result | int] = {}
        self.result_source: Callable[[int], Result] | None = None
        #: True after loading a state that left the results out, until :meth:`restore_results`
        self.needs_results = False
        self.inflight: dict[int, str] = {}
        self.waiting: dict[str, list[int]] = {}
        self.skipped = 0

    def ask(self, n: int = 1) -> list[Trial]:
        if not is_int(n) or n < 1:
            raise ValueError(f"ask(n): n must be a positive integer, got {n!r}")
        out = []
        for _ in range(n):
            for attempt in range(self.max_retries):
                (trial,) = self.inner.ask(1)
                key = trial.arch.canonical_hash()
                if attempt == self.max_retries - 1:
                    break  # let a duplicate through rather than loop forever
                if key in self.results:
                    self.skipped += 1
                    self.inner.tell(trial, self._result(key))
                    continue
                if key in self.waiting:
                    self.skipped += 1
                    self.waiting[key].append(trial.id)
                    continue
                break
            self.inflight[trial.id] = key
            self.waiting.setdefault(key, [])
            out.append(trial)
        return out

    def tell(self, trial: Trial, result: Result) -> None:
        key = self.inflight.pop(trial.id, None)
        if key is None:
            raise ValueError(f"trial {trial.id} was not asked of this strategy or was already told")
        self.inner.tell(trial, result)
        if result.status is Status.COMPLETE:
            self.results[key] = trial.id if self.result_source is not None else result
        waiters = self.waiting.pop(key, [])
        if waiters:  # the pending trials are looked up only when duplicates wait (a sort of all in flight)
            pending = {t.id: t for t in self.inner.pending}
            for other in waiters:
                self.inner.tell(pending[other], result)

    def _result(self, key: str) -> Result:
        kept = self.results[key]
        if isinstance(kept, Result):
            return kept
        if self.result_source is None:  # pragma: no cover - ids are kept only with a source
            raise RuntimeError("Deduplicate keeps trial ids but has no result source")
        return self.result_source(kept)

    def use_result_source(self, source: Callable[[int], Result]) -> None:
        """Keep completed results by trial id from now on, reading them back with ``source(trial_id)`` (the
        experiment's store: it returns the result recorded for that trial); :meth:`state_dict` then leaves them
        out. Results already held stay as they are until the state is restored."""
        self.result_source = source

    def restore_results(self, told: Iterable[tuple[str, int]]) -> None:
        """After :meth:`load_state_dict` of a state without results: ``(hash, trial id)`` of every trial told to
        this wrapper with a completed result, in the order they were told (a later one of the same hash wins)."""
        if self.result_source is None:
            raise ValueError("restore_results() needs a result source: call use_result_source() first")
        self.results = {}
        for key, trial_id in told:
            self.results[key] = trial_id
        self.needs_results = False

    def job(self, context: JobContext) -> JobSpec | None:
        return self.inner.job(context)

    def tell_job(self, outcome: JobOutcome) -> None:
        self.inner.tell_job(outcome)

    def job_summary(self, context: JobContext) -> dict[str, Any] | None:
        return self.inner.job_summary(context)

    @property
    def pending(self) -> list[Trial]:
        return [t for t in self.inner.pending if t.id in self.inflight]

    @property
    def n_told(self) -> int:  # type: ignore[override]  # an attribute in Strategy; the wrapper forwards the inner count
        return self.inner.n_told

    def state_dict(self) -> dict[str, Any]:
        # with a result source the results are the store's: left out (None), given back by restore_results
        results = None if self.result_source is not None else {k: self._result(k).to_dict() for k in self.results}
        return {"strategy": f"dedup:{self.name}", "inner": self.inner.state_dict(), "skipped": self.skipped,
                "results": results,
                "inflight": {str(k): v for k, v in self.inflight.items()},
                "waiting": {k: list(v) for k, v in self.waiting.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != f"dedup:{self.name}":
            raise ConfigError(f"state of strategy {state.get('strategy')!r} cannot be loaded into 'dedup:{self.name}'")
        self.inner.load_state_dict(state["inner"])
        self.skipped = state["skipped"]
        results = state["results"]
        self.results = {} if results is None else {k: Result.from_dict(r) for k, r in results.items()}
        self.needs_results = results is None
        self.inflight = {int(k): v for k, v in state["inflight"].items()}
        self.waiting = {k: list(v) for k, v in state["waiting"].items()}

    def _propose(self, n: int) -> list[Architecture]:  # pragma: no cover - ask() is overridden
        raise NotImplementedError

    def _observe(self, trial: Trial, result: Result) -> None:  # pragma: no cover - tell() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Deduplicate({self.inner!r})"
