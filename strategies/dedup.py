"""De-duplication by canonical hash, as a wrapper that is itself a strategy (ray's ConcurrencyLimiter pattern).

Architectures that compute the same function as one already evaluated (equal ``canonical_hash``) are never
evaluated again: the wrapped strategy is told the earlier result at once and asked again. Duplicates of an
architecture still in flight wait for its result. After ``max_retries`` duplicates in a row (a small or
exhausted space) the duplicate is let through. Only completed results are reused; a failed one may be retried.
"""

from __future__ import annotations

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
        self.results: dict[str, Result] = {}
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
                    self.inner.tell(trial, self.results[key])
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
            self.results[key] = result
        pending = {t.id: t for t in self.inner.pending}
        for other in self.waiting.pop(key, []):
            self.inner.tell(pending[other], result)

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
        return {"strategy": f"dedup:{self.name}", "inner": self.inner.state_dict(), "skipped": self.skipped,
                "results": {k: r.to_dict() for k, r in self.results.items()},
                "inflight": {str(k): v for k, v in self.inflight.items()},
                "waiting": {k: list(v) for k, v in self.waiting.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != f"dedup:{self.name}":
            raise ConfigError(f"state of strategy {state.get('strategy')!r} cannot be loaded into 'dedup:{self.name}'")
        self.inner.load_state_dict(state["inner"])
        self.skipped = state["skipped"]
        self.results = {k: Result.from_dict(r) for k, r in state["results"].items()}
        self.inflight = {int(k): v for k, v in state["inflight"].items()}
        self.waiting = {k: list(v) for k, v in state["waiting"].items()}

    def _propose(self, n: int) -> list[Architecture]:  # pragma: no cover - ask() is overridden
        raise NotImplementedError

    def _observe(self, trial: Trial, result: Result) -> None:  # pragma: no cover - tell() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Deduplicate({self.inner!r})"
