"""Optuna's samplers over a space's categorical decisions, through Optuna's ask/tell interface.

Each decision becomes a ``CategoricalDistribution`` over ``0 .. n-1`` named by ``space.decision_names()``.
The default sampler is TPE for one objective and NSGA-II for several; any Optuna sampler can be named
(``tpe``, ``nsga2``, ``nsga3``, ``random``, ``gp``, ``qmc``, ``bruteforce``, or a class name such as
``TPESampler``) with ``sampler_options``. With ``storage`` (e.g. ``sqlite:///study.db``) the study lives in
Optuna's own storage, so Optuna's dashboard and visualisation read it; in an experiment a relative SQLite path
resolves against the experiment directory (``nas.runtime.config.strategy_options``), here it is used as given
(relative to the working directory). Building the strategy checks the sampler and its options but creates
nothing: the study (and its storage) is made on first use (``ask``, ``state_dict``, ``load_state_dict``), so
validating a config leaves no file or database behind.

Constraints: with a sampler that handles constraints (TPE, NSGA-II, NSGA-III, GP: those taking Optuna's
``constraints_func``), every completed trial is told with its objective values and, per constraint, how far it
misses (``Trial.set_constraint``; <= 0 when met), so the sampler ranks an infeasible trial below every feasible one
by how far it misses, exactly as when Optuna is used directly with constraints; other samplers are told an
infeasible trial failed.

Trials in flight: TPE runs with ``constant_liar=True`` unless ``sampler_options`` say otherwise, so with many
workers each ask treats the running trials as bad results and samples away from them; the other samplers keep
their own behaviour (NSGA-II breeds from the completed generation whatever runs).

**State of constant size.** ``state_dict()`` keeps the state of every random generator inside the sampler, the
number of Optuna trials and the trials in flight (their parameters and system attributes), but no finished trial:
each finished trial becomes a *journal record* (its number, parameters, state, values and attributes, exactly as
Optuna holds it) that :meth:`journal` hands out once. The experiment appends those records to its trial store
before each checkpoint, and on resume gives them all back to :meth:`restore`, which rebuilds the study in number
order (records the checkpoint does not know as finished, written after it, are ignored). So the checkpoint,
rewritten once per ask, stays the same size however long the search, and a restored adapter proposes exactly
what the original would have. Records nobody took stay in the state (a strategy used without an experiment is
saved whole, as before), and a state written before the journal existed (with every trial in it) still loads:
its finished trials are journaled again for the store.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.core.errors import ConfigError, did_you_mean
from nas.graph.architecture import Architecture
from nas.trials.objectives import Constraint, oriented
from nas.trials.trial import Result, Status, Trial
from strategies.base import Strategy

if TYPE_CHECKING:  # an annotation only; optuna is imported where used
    from optuna.distributions import BaseDistribution

__all__ = ["OptunaStrategy", "SAMPLERS"]

SAMPLERS = {"tpe": "TPESampler", "nsga2": "NSGAIISampler", "nsga3": "NSGAIIISampler", "random": "RandomSampler",
            "gp": "GPSampler", "qmc": "QMCSampler", "bruteforce": "BruteForceSampler", "cmaes": "CmaEsSampler"}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _random_states(obj: Any) -> list[np.random.RandomState]:
    """Every numpy RandomState reachable from ``obj``'s attributes, in a stable order."""
    found: list[np.random.RandomState] = []
    seen: set[int] = set()

    def walk(o: Any, depth: int) -> None:
        if id(o) in seen or depth > 6:
            return
        seen.add(id(o))
        if isinstance(o, np.random.RandomState):
            found.append(o)
            return
        if type(o).__name__ == "LazyRandomState":
            walk(o.rng, depth + 1)
            return
        attrs = getattr(o, "__dict__", None)
        if isinstance(attrs, dict) and type(o).__module__.startswith("optuna"):
            for key in sorted(attrs):
                walk(attrs[key], depth + 1)
        elif isinstance(o, (list, tuple)):
            for item in o:
                walk(item, depth + 1)

    walk(obj, 0)
    return found


def _legacy_state(rng: np.random.RandomState) -> tuple[str, np.ndarray, int, int, float]:
    """``rng.get_state()`` as its legacy tuple ``(name, keys, pos, has_gauss, cached_gaussian)``, which every
    Mersenne Twister RandomState (the ones Optuna's samplers hold) gives."""
    state = rng.get_state(legacy=True)
    if isinstance(state, dict):
        raise ConfigError(f"optuna strategy: a sampler random state of {state.get('bit_generator')!r} cannot be saved")
    return state


def _miss(constraint: Constraint, result: Result) -> float:
    """How far ``result`` misses ``constraint`` (<= 0 when met; 1.0 when it lacks the metric): Optuna's
    constraint value."""
    value = result.score if constraint.metric == "score" else result.metrics.get(constraint.metric)
    if value is None or not np.isfinite(value):
        return 1.0
    misses = [0.0]
    if constraint.max is not None:
        misses.append(float(value) - constraint.max)
    if constraint.min is not None:
        misses.append(constraint.min - float(value))
    return max(misses)


class OptunaStrategy(Strategy):
    """Options: ``sampler`` (name), ``sampler_options`` (dict), ``storage`` (URL), ``study_name``."""

    name = "optuna"
    multi_objective = True

    def __init__(self, *, sampler: str | None = None, sampler_options: dict[str, Any] | None = None,
                 storage: str | None = None, study_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import optuna

        if sampler is not None and not isinstance(sampler, str):
            raise ConfigError(f"optuna strategy: sampler = {sampler!r}: give the sampler's name (e.g. tpe, nsga2, "
                              "TPESampler) and its settings in sampler_options")
        if not isinstance(sampler_options or {}, dict):
            raise ConfigError(f"optuna strategy: sampler_options = {sampler_options!r}: give a mapping of the "
                              "sampler's keyword arguments")
        self.sampler_name = sampler or ("tpe" if len(self.objectives) == 1 else "nsga2")
        self.sampler_options = dict(sampler_options or {})
        self.storage = storage
        self.study_name = study_name or f"nas-{self.space.name}-{self.seed}"
        self.distributions: dict[str, BaseDistribution] = {
            name: optuna.distributions.CategoricalDistribution(list(range(n)))
            for name, n in zip(self.space.decision_names(), self.space.decision_sizes())
        }
        self._numbers: dict[int, int] = {}  # our trial id -> optuna trial number
        #: the Optuna trials asked and not yet told, by number (to set their constraint values before the tell)
        self._asked: dict[int, Any] = {}
        self.constraint_aware = False
        self._make_sampler()  # unknown samplers and bad sampler_options fail here, when the config is checked
        self._study: Any = None
        #: records of finished trials not yet taken by :meth:`journal`
        self._journal: list[dict[str, Any]] = []
        #: a loaded state whose finished trials are still to come from :meth:`restore` (None: nothing awaited)
        self._awaiting: dict[str, Any] | None = None

    @property
    def study(self) -> Any:
        """The Optuna study, created (or, with ``storage``, loaded) on first use."""
        if self._awaiting is not None:
            raise ConfigError(f"optuna strategy: the state loaded holds {self._awaiting['n_trials']} Optuna trials "
                              "but not the finished ones; give the journal records kept for it to restore() first")
        if self._study is None:
            self._study = self._create_study(load_if_exists=True)
        return self._study

    def _make_sampler(self) -> Any:
        import optuna

        cls_name = SAMPLERS.get(self.sampler_name, self.sampler_name)
        cls = getattr(optuna.samplers, cls_name, None)
        if cls is None or not isinstance(cls, type):
            known = list(SAMPLERS) + [n for n in dir(optuna.samplers) if n.endswith("Sampler")]
            raise ConfigError(f"optuna strategy: unknown sampler {self.sampler_name!r}; known: {', '.join(SAMPLERS)}"
                              + did_you_mean(self.sampler_name, known))
        options = dict(self.sampler_options)
        parameters = inspect.signature(cls).parameters  # (decorated __init__s hide them from __code__)
        if "seed" in parameters:
            options.setdefault("seed", self.seed)
        #: the sampler ranks infeasible trials by their constraint values (Optuna's own constrained samplers)
        self.constraint_aware = "constraints_func" in parameters
        if cls_name == "TPESampler" and "constant_liar" in parameters:
            # trials in flight count as failing (Optuna's "constant liar"), so that with many workers TPE does
            # not sample again where running trials already are; with one worker nothing is in flight at an ask
            options.setdefault("constant_liar", True)
        try:
            return cls(**options)
        except TypeError as err:
            raise ConfigError(
                f"optuna strategy: sampler {cls_name} rejected sampler_options {options}: {err}"
            ) from None

    def _create_study(self, load_if_exists: bool) -> Any:
        import optuna

        with _quiet():
            return optuna.create_study(directions=["maximize"] * len(self.objectives), sampler=self._make_sampler(),
                                       storage=self.storage, study_name=self.study_name,
                                       load_if_exists=load_if_exists)

    def _propose(self, n: int) -> list[Architecture]:
        out = []
        names = list(self.distributions)
        with _quiet():
            for k in range(n):
                trial = self.study.ask(self.distributions)
                self._numbers[self._next_id + k] = trial.number
                self._asked[trial.number] = trial
                out.append(self.space.decode([trial.params[name] for name in names]))
        return out

    def _observe(self, trial: Trial, result: Result) -> None:
        import optuna
        from optuna.trial import TrialState

        number = self._numbers.pop(trial.id)
        asked = self._asked.pop(number, None)
        fit = self.fitness(result)
        values = oriented(result, self.objectives)
        if self.constraints and self.constraint_aware and values is not None:
            # told with its values and, per constraint, how far it misses (<= 0: met), as Trial.set_constraint
            # does when Optuna is used directly: the sampler ranks an infeasible trial below every feasible one
            if asked is None:  # asked before a restore: reach it through the study
                stored = self.study.get_trials(deepcopy=False)[number]
                asked = optuna.trial.Trial(self.study, stored._trial_id)
            with _quiet():
                for i, constraint in enumerate(self.constraints):
                    asked.set_constraint(f"{i}:{constraint.describe()}", _miss(constraint, result))
            fit = values
        with _quiet():
            if result.status is Status.PRUNED:
                frozen = self.study.tell(number, state=TrialState.PRUNED)
            elif fit is None:
                frozen = self.study.tell(number, state=TrialState.FAIL)
            else:
                frozen = self.study.tell(number, values=list(fit))
        self._journal.append(_record(frozen))

    def journal(self) -> list[tuple[int, dict[str, Any]]]:
        """``(number, record)`` of the Optuna trials finished since the last call, handed out once, for the
        experiment's store (see the module docstring)."""
        out = [(r["number"], r) for r in self._journal]
        self._journal = []
        return out

    def restore(self, history: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """After :meth:`load_state_dict`: every ``(number, record)`` :meth:`journal` handed out (later records of
        a number replace earlier ones). Rebuilds the study from the records the loaded state counts as finished;
        does nothing when the loaded state needed none (it held its trials) or nothing was loaded."""
        if self._awaiting is None:
            return
        state, self._awaiting = self._awaiting, None
        records = {int(number): record for number, record in history}
        self._build(state, records)

    def _state(self) -> dict[str, Any]:
        running = []
        if self._study is None:  # nothing asked yet: the state of a fresh sampler, and no study (nor file) made
            sampler = self._make_sampler()
            n_trials = 0
        else:
            from optuna.trial import TrialState

            sampler = self._study.sampler
            trials = self._study.get_trials(deepcopy=False)
            n_trials = len(trials)
            running = [_record(t) for t in trials if t.state is TrialState.RUNNING]
        rngs = [[s[0], s[1].tolist(), int(s[2]), int(s[3]), float(s[4])]
                for s in (_legacy_state(r) for r in _random_states(sampler))]
        return {"n_trials": n_trials, "running": running, "journal": list(self._journal), "rng_states": rngs,
                "numbers": {str(k): v for k, v in self._numbers.items()}}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._awaiting = None
        if "trials" in state:  # written before the journal: every trial is in it, journaled again for the store
            self._journal = [t for t in state["trials"] if t["state"] != "RUNNING"]
            running = [t for t in state["trials"] if t["state"] == "RUNNING"]
            self._build({"n_trials": len(state["trials"]), "running": running, "rng_states": state["rng_states"],
                         "numbers": state["numbers"]}, {t["number"]: t for t in state["trials"]})
            return
        self._journal = list(state["journal"])
        records = {r["number"]: r for r in state["journal"]}
        in_flight = {r["number"] for r in state["running"]}
        if all(n in records or n in in_flight for n in range(state["n_trials"])):
            self._build(state, records)  # nothing was taken out: the state is whole
        else:
            self._awaiting = state  # the rest comes from restore()

    def _build(self, state: dict[str, Any], records: dict[int, dict[str, Any]]) -> None:
        """The study of ``state``: trial ``k`` is the in-flight trial ``k`` of the state, else ``records[k]``."""
        import optuna
        from optuna.trial import TrialState

        self._study = None
        if self.storage is None:
            self._study = self._create_study(load_if_exists=False)
        if self.storage is None or not self.study.trials:
            running = {r["number"]: r for r in state["running"]}
            for number in range(state["n_trials"]):
                t = running.get(number) or records.get(number)
                if t is None or (number not in running and t["state"] == "RUNNING"):
                    raise ConfigError(f"optuna strategy: the finished Optuna trial {number} (of {state['n_trials']})"
                                      " is missing from the journal records restored; the trial store is out of "
                                      "step with the checkpoint")
                tstate = TrialState[t["state"]]
                frozen = optuna.trial.create_trial(
                    state=tstate, params=t["params"], distributions=self.distributions,
                    values=t["values"] if tstate is TrialState.COMPLETE else None,
                    system_attrs=t["system_attrs"], user_attrs=t["user_attrs"])
                self.study.add_trial(frozen)
        rngs = _random_states(self.study.sampler)
        if len(rngs) != len(state["rng_states"]):
            raise ConfigError("optuna strategy: the saved sampler state does not match this sampler")
        for rng, s in zip(rngs, state["rng_states"]):
            rng.set_state((s[0], np.asarray(s[1], dtype=np.uint32), s[2], s[3], s[4]))
        self._numbers = {int(k): v for k, v in state["numbers"].items()}


def _record(t: Any) -> dict[str, Any]:
    """An Optuna ``FrozenTrial`` as JSON data (what :meth:`OptunaStrategy._build` turns back into it)."""
    return {"number": t.number, "state": t.state.name, "params": dict(t.params),
            "values": None if t.values is None else list(t.values),
            "system_attrs": dict(t.system_attrs), "user_attrs": dict(t.user_attrs)}
