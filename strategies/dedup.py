"""De-duplication by canonical hash, as a wrapper that is itself a strategy (ray's ConcurrencyLimiter pattern).

Architectures that compute the same function as one already evaluated (equal ``canonical_hash``) are never
evaluated again: the wrapped strategy is told the earlier result at once and asked again (what Optuna does with
duplicated parameters: the strategy learns that its proposal is known). Duplicates of an architecture still in
flight wait for its result. Only completed results are reused; a failed one may be retried.

**Bounded cost per trial.** A strategy whose neighbourhoods are exhausted (evolution on NAS-Bench-201 after a
thousand or so trials) proposes duplicates again and again; asking it up to 200 times per trial made the cost
per trial grow with the search (about 100 ms per trial after 1,000 trials). So re-asking is budgeted: the
wrapper holds a reserve of ``reserve`` re-asks (2,000), every proposal adds ``rate`` (10) to it up to the
reserve, and every duplicate rejected spends one. For the first ``warmup`` proposals (1,000) the wrapper behaves
as it always did whatever the reserve: it re-asks up to ``max_retries`` (200) times in a row, then lets the
duplicate through; so searches of up to 1,000 trials, the published NAS-Bench-201 benchmarks among them, are
exactly what they were. After that, once the reserve is spent, a proposal costs at most ``rate`` re-asks on
average, then at most ``samples`` (20) uniform samples of the space, drawn from the wrapper's own RNG (seeded
from the strategy seed, saved in the state): the first sample that is not a duplicate becomes the trial, under
the id the wrapped strategy gave its last proposal (which is told the duplicate's result; the sample's own result
is kept here and not shown to the wrapped strategy, which never proposed it), a random restart out of an exhausted
region. Only when the samples are duplicates too (the space is nearly exhausted) is a duplicate let through. The
cost per trial is then flat however long the search.

**Which architectures are duplicates: the key.** By default (``key="auto"``) two architectures are the same when
their canonical hashes are equal, as long as every objective and constraint reads something the hash preserves
(the score, ``val_*`` and ``test_*`` metrics: :func:`nas.trials.objectives.hash_invariant`). When one names a
cost of the implementation (``min:params``, ``min:pixel3_latency``, ``pixel3_latency <= 5``), members of one hash
class differ in it (a dead branch holds parameters and runs on the device): reusing one member's result for
another would tell the strategy a wrong cost, and the cheaper members of a class whose dear member came first would
never be evaluated. Then the key is the exact architecture (:func:`exact_key`, a digest of its canonical JSON):
only a repeat of the very same architecture is skipped. ``key="hash"`` or ``key="exact"`` forces one. A state saved
before keys existed loads as ``hash`` (what it was keyed by).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nas.core.checks import is_int
from nas.core.errors import ConfigError
from nas.core.serialize import jsonable
from nas.graph.architecture import Architecture
from nas.trials.objectives import hash_invariant
from nas.trials.protocols import JobContext, JobOutcome, JobSpec
from nas.trials.trial import Result, Status, Trial
from strategies.base import Strategy

__all__ = ["Deduplicate", "exact_key", "KEYS"]

#: the ways of telling duplicates apart (see the module docstring)
KEYS = ("auto", "hash", "exact")


def exact_key(arch_json: str) -> str:
    """The key of the exact architecture whose canonical JSON (``Architecture.to_json()``, as the store keeps it)
    is ``arch_json``: ``exact:`` and its SHA-256, never equal to a canonical hash."""
    return "exact:" + hashlib.sha256(arch_json.encode()).hexdigest()

#: the fallback RNG's stream, next to the strategy seed (so it differs from the inner strategy's RNG)
_RNG_STREAM = 0xDEDA
#: aliases kept (the most recent): far more than any population a child's parent is drawn from
_ALIASES = 4096


class Deduplicate(Strategy):
    """Wraps ``inner``; ``name``, space, seed and objectives are the inner strategy's, and so is its job (the job
    hooks are forwarded). ``key`` is one of :data:`KEYS`; :attr:`key_mode` is the one used (``hash``/``exact``)."""

    def __init__(self, inner: Strategy, *, max_retries: int = 200, rate: int = 10, reserve: int = 2000,
                 samples: int = 20, warmup: int = 1000, key: str = "auto") -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]  # a ClassVar, set per wrapper instance
        self.multi_objective = inner.multi_objective  # type: ignore[misc]  # ClassVar, per wrapper
        self.space = inner.space
        self.seed = inner.seed
        self.objectives = inner.objectives
        self.constraints = inner.constraints
        for option, value in (("max_retries", max_retries), ("rate", rate), ("reserve", reserve),
                              ("samples", samples), ("warmup", warmup)):
            least = 1 if option == "max_retries" else 0
            if not is_int(value) or value < least:
                raise ValueError(f"Deduplicate: {option} must be an integer >= {least}, got {value!r}")
        if key not in KEYS:
            raise ConfigError(f"Deduplicate: key = {key!r} is not one of {', '.join(KEYS)}")
        if key == "auto":
            read = [o.metric for o in inner.objectives] + [c.metric for c in inner.constraints]
            key = "hash" if all(hash_invariant(m) for m in read) else "exact"
        #: ``hash`` (canonical hash) or ``exact`` (the exact architecture): what makes two trials duplicates
        self.key_mode = key
        self.max_retries = max_retries
        self.rate, self.reserve, self.samples, self.warmup = rate, reserve, samples, warmup
        #: re-asks left, and proposals made so far (see the module docstring)
        self.budget = reserve
        self.asked = 0
        #: the RNG of the fallback samples (the inner strategy's RNG is its own)
        self.rng = np.random.default_rng(np.random.SeedSequence([inner.seed, _RNG_STREAM]))
        #: trials of fallback samples (not the inner strategy's), asked and not yet told, by id
        self.own: dict[int, Trial] = {}
        self.own_told = 0
        self.fallbacks = 0
        #: key (see :meth:`key`) -> its completed result (standalone) or the id of the trial that has it (with a source)
        self.results: dict[str, Result | int] = {}
        self.result_source: Callable[[int], Result] | None = None
        #: True after loading a state that left the results out, until :meth:`restore_results`
        self.needs_results = False
        self.inflight: dict[int, str] = {}
        self.waiting: dict[str, list[int]] = {}
        self.skipped = 0
        #: id of a duplicate the inner strategy was told a result of -> id of the trial that was evaluated (with a
        #: result source): a child the inner strategy derives from the duplicate names the evaluated trial as its
        #: parent, whose weights weight inheritance has. Kept only with :attr:`track_parents` (the runtime sets it
        #: when the evaluator inherits weights), so the checkpoint of a search without inheritance does not grow.
        self.aliases: dict[int, int] = {}
        self.track_parents = False
        #: ``weights_kept(trial id)``: whether the weight store still holds that trial's weights (the runtime sets it
        #: with weight inheritance; None: assumed kept). See :meth:`_parent_of`.
        self.weights_kept: Callable[[int], bool] | None = None

    def ask(self, n: int = 1) -> list[Trial]:
        if not is_int(n) or n < 1:
            raise ValueError(f"ask(n): n must be a positive integer, got {n!r}")
        out = []
        for _ in range(n):
            self.budget = min(self.reserve, self.budget + self.rate)
            self.asked += 1
            for attempt in range(self.max_retries):
                (trial,) = self.inner.ask(1)
                key = self.key(trial.arch)
                if not self._duplicate(key) or attempt == self.max_retries - 1:
                    break  # new, or max_retries duplicates in a row: let it through (as before the reserve)
                if self.budget <= 0 and self.asked > self.warmup:  # spent: a uniform sample, or the duplicate
                    sample = self._fallback(trial)
                    if sample is not None:
                        self._skip(trial, key)
                        trial, key = sample, self.key(sample.arch)
                        self.own[trial.id] = trial
                        self.fallbacks += 1
                    break
                self.budget = max(0, self.budget - 1)
                self._skip(trial, key)
            self.inflight[trial.id] = key
            self.waiting.setdefault(key, [])
            out.append(self._aliased(trial))
        return out

    def _aliased(self, trial: Trial) -> Trial:
        """``trial`` with its parent replaced by the evaluated trial when the parent is a skipped duplicate."""
        if trial.parent is None or trial.parent not in self.aliases:
            return trial
        return dataclasses.replace(trial, parent=self.aliases[trial.parent])

    def _alias(self, duplicate: int, evaluated: int) -> None:
        if not self.track_parents:
            return
        self.aliases[duplicate] = evaluated
        if len(self.aliases) > _ALIASES:
            del self.aliases[next(iter(self.aliases))]

    def _parent_of(self, duplicate: Trial, evaluated: int) -> int:
        """The trial whose weights a child of the skipped ``duplicate`` inherits: the ``evaluated`` trial of the same
        architecture, or, when the weight store no longer keeps its weights (an old trial, collected before its
        duplicate was proposed), the duplicate's own parent (the member it was bred from, whose weights are kept
        while the duplicate lives: :meth:`live_parents`), so the child is re-parented to its nearest kept ancestor
        instead of training from scratch."""
        if self.weights_kept is None or duplicate.parent is None or self.weights_kept(evaluated):
            return evaluated
        parent = self.aliases.get(duplicate.parent, duplicate.parent)
        return parent if self.weights_kept(parent) else evaluated

    def live_parents(self) -> set[int] | None:
        """The inner strategy's, each a skipped duplicate's replaced by the trial whose weights its children
        inherit."""
        live = self.inner.live_parents()
        return None if live is None else {self.aliases.get(i, i) for i in live}

    def key(self, arch: Architecture) -> str:
        """What ``arch`` is de-duplicated by: its canonical hash, or :func:`exact_key` of its JSON."""
        return arch.canonical_hash() if self.key_mode == "hash" else exact_key(arch.to_json())

    def stored_key(self, arch_hash: str, arch_json: str) -> str:
        """:meth:`key` of a stored trial from its stored canonical hash and JSON (nothing parsed)."""
        return arch_hash if self.key_mode == "hash" else exact_key(arch_json)

    def _duplicate(self, key: str) -> bool:
        return key in self.results or key in self.waiting

    def _skip(self, trial: Trial, key: str) -> None:
        """Tell the inner strategy the known result of its duplicate ``trial``, or queue it for the result of the
        trial in flight."""
        self.skipped += 1
        if key in self.results:
            kept = self.results[key]
            if isinstance(kept, int):
                self._alias(trial.id, self._parent_of(trial, kept))
            self.inner.tell(trial, self._result(key))
        else:
            self.waiting[key].append(trial.id)

    def _fallback(self, duplicate: Trial) -> Trial | None:
        """A trial of the first of ``samples`` uniform samples that is not a duplicate, under the id and seed of
        ``duplicate``; None when every sample is one."""
        for _ in range(self.samples):
            arch = self.space.sample(self.rng)
            if not self._duplicate(self.key(arch)):
                return Trial(duplicate.id, arch, duplicate.seed)
        return None

    def tell(self, trial: Trial, result: Result) -> None:
        key = self.inflight.pop(trial.id, None)
        if key is None:
            raise ValueError(f"trial {trial.id} was not asked of this strategy or was already told")
        if self.own.pop(trial.id, None) is not None:
            self.own_told += 1  # a fallback sample: the inner strategy never proposed it
        else:
            self.inner.tell(trial, result)
        if result.status is Status.COMPLETE:
            self.results[key] = trial.id if self.result_source is not None else result
        waiters = self.waiting.pop(key, [])
        if waiters:  # the pending trials are looked up only when duplicates wait (a sort of all in flight)
            pending = {t.id: t for t in self.inner.pending}
            for other in waiters:
                if result.status is Status.COMPLETE and self.result_source is not None:
                    self._alias(other, trial.id)
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
        """After :meth:`load_state_dict` of a state without results: ``(key, trial id)`` of every trial told to
        this wrapper with a completed result, in the order they were told (a later one of the same key wins); the
        key as :meth:`stored_key` makes it."""
        if self.result_source is None:
            raise ValueError("restore_results() needs a result source: call use_result_source() first")
        self.results = {}
        for key, trial_id in told:
            self.results[key] = trial_id
        self.needs_results = False

    def journal(self) -> list[tuple[int, dict[str, Any]]]:
        return self.inner.journal()

    def restore(self, history: Iterable[tuple[int, dict[str, Any]]]) -> None:
        self.inner.restore(history)

    def job(self, context: JobContext) -> JobSpec | None:
        return self.inner.job(context)

    def tell_job(self, outcome: JobOutcome) -> None:
        self.inner.tell_job(outcome)

    def job_summary(self, context: JobContext) -> dict[str, Any] | None:
        return self.inner.job_summary(context)

    @property
    def pending(self) -> list[Trial]:
        mine = [self._aliased(t) for t in self.inner.pending if t.id in self.inflight and t.id not in self.own]
        return sorted(mine + list(self.own.values()), key=lambda t: t.id)

    @property
    def n_told(self) -> int:  # type: ignore[override]  # an attribute in Strategy; the wrapper counts the inner's
        return self.inner.n_told + self.own_told

    def state_dict(self) -> dict[str, Any]:
        # with a result source the results are the store's: left out (None), given back by restore_results
        results = None if self.result_source is not None else {k: self._result(k).to_dict() for k in self.results}
        return {"strategy": f"dedup:{self.name}", "inner": self.inner.state_dict(), "skipped": self.skipped,
                "key": self.key_mode,
                "results": results,
                "inflight": {str(k): v for k, v in self.inflight.items()},
                "waiting": {k: list(v) for k, v in self.waiting.items()},
                "rng": jsonable(self.rng.bit_generator.state), "fallbacks": self.fallbacks, "budget": self.budget,
                "asked": self.asked,
                "own_told": self.own_told, "aliases": [[k, v] for k, v in self.aliases.items()],
                "own": [{"id": t.id, "seed": t.seed, "arch": t.arch.to_json()} for t in self.own.values()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("strategy") != f"dedup:{self.name}":
            raise ConfigError(f"state of strategy {state.get('strategy')!r} cannot be loaded into 'dedup:{self.name}'")
        self.inner.load_state_dict(state["inner"])
        self.skipped = state["skipped"]
        self.key_mode = state.get("key", "hash")  # keyed by hash before the key existed
        results = state["results"]
        self.results = {} if results is None else {k: Result.from_dict(r) for k, r in results.items()}
        self.needs_results = results is None
        self.inflight = {int(k): v for k, v in state["inflight"].items()}
        self.waiting = {k: list(v) for k, v in state["waiting"].items()}
        # states written before the fallback existed have none of these: a fresh RNG, no fallback trial
        self.rng = np.random.default_rng(np.random.SeedSequence([self.inner.seed, _RNG_STREAM]))
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
        self.fallbacks = state.get("fallbacks", 0)
        self.budget = state.get("budget", self.reserve)
        self.asked = state.get("asked", 0)
        self.own_told = state.get("own_told", 0)
        self.aliases = {int(k): int(v) for k, v in state.get("aliases", [])}
        self.own = {p["id"]: Trial(p["id"], Architecture.from_json(p["arch"]), p["seed"]) for p in state.get("own", [])}

    def _propose(self, n: int) -> list[Architecture]:  # pragma: no cover - ask() is overridden
        raise NotImplementedError

    def _observe(self, trial: Trial, result: Result) -> None:  # pragma: no cover - tell() is overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Deduplicate({self.inner!r})"
