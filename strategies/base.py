"""The :class:`Strategy` contract: a small ask/tell object (the pattern of optuna's samplers).

``ask(n)`` proposes ``n`` trials, ``tell(trial, result)`` reports a result (in any order; failures included),
``state_dict()`` / ``load_state_dict()`` snapshot and restore everything, RNG included, as JSON data, so a
restored strategy continues with exactly the proposals the original would have made. A strategy whose history
grows with the search may hand it out as records through ``journal()`` instead of keeping it in its state; the
keeper of those records (the experiment's store) gives them back to ``restore()`` after ``load_state_dict()``.
A strategy owns its RNG (seeded from ``seed``) and never trains or evaluates anything: the loop injects results.

A strategy that needs work done before it can propose (a one-shot supernet search) describes that work in
``job(context)`` (a :class:`nas.trials.protocols.JobSpec`, plain data); the experiment has the executor run it, with
the runner registered for it, before the first ``ask`` and hands its outcome to ``tell_job``. ``job_summary``
describes it for ``nas status``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nas.core.checks import check_int, is_int
from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.core.serialize import jsonable
from nas.graph.architecture import Architecture
from nas.trials.objectives import Constraint, Objective, feasible, oriented, parse_constraints, parse_objectives
from nas.trials.protocols import JobContext, JobOutcome, JobSpec, Space
from nas.trials.trial import Result, Trial

__all__ = ["Strategy", "Child", "trial_seed"]

#: how many checked architectures a strategy remembers as members
_MEMBER_MEMO = 4096


def trial_seed(seed: int, trial_id: int) -> int:
    """The evaluation seed of trial ``trial_id`` in an experiment seeded with ``seed`` (independent of the
    strategy, so every strategy trains the same candidate identically)."""
    return int(np.random.SeedSequence([seed, trial_id]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class Child:
    """A proposal derived from an evaluated trial (a mutation of it): ``_propose`` returns it in place of a bare
    architecture to say which trial ``parent`` it came from, so that weight inheritance can start it from that
    trial's trained weights (the trial carries ``parent``)."""

    arch: Architecture
    parent: int


class Strategy(ABC):
    """Base class. Subclasses implement ``_propose``, ``_observe`` and, if they hold state, ``_state`` /
    ``_load_state`` (JSON data only)."""

    name: ClassVar[str]
    #: True when the strategy handles several objectives itself (otherwise it optimises the first one).
    multi_objective: ClassVar[bool] = False
    #: True for the one-shot strategies, which search the architecture alone through a supernet (a config with
    #: ``searchable`` training fields is refused for them).
    one_shot: ClassVar[bool] = False

    def __init__(self, *, space: Space, seed: int = 0, objectives: Any = None, constraints: Any = None) -> None:
        check_int(f"strategy {self.name} seed", seed)
        self.space: Space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.objectives: tuple[Objective, ...] = parse_objectives(objectives)
        self.constraints: tuple[Constraint, ...] = parse_constraints(constraints)
        self._next_id = 0
        self._pending: dict[int, Trial] = {}
        self.n_told = 0
        #: architectures already found members by ask() (a bounded memo: a wrapper that asks again and again, such
        #: as the de-duplication, meets the same proposals many times and the check is costly)
        self._members: dict[Architecture, None] = {}

    # -- the contract ----------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Trial]:
        """Propose ``n`` new trials (ids are consecutive; seeds derive from the experiment seed and id).

        Every proposal is checked for membership of the space here, once: evaluators compile trials without
        checking again. A proposal outside the space is a bug of the strategy and raises
        :class:`InvalidArchitectureError` before any trial is made. A proposal equal to one already found a member
        (the last few thousand are remembered) is not checked again."""
        if not is_int(n) or n < 1:
            raise ValueError(f"ask(n): n must be a positive integer, got {n!r}")
        made = self._propose(n)
        proposals = [p.arch if isinstance(p, Child) else p for p in made]
        parents = [p.parent if isinstance(p, Child) else None for p in made]
        for arch in proposals:
            if arch in self._members:
                continue
            try:
                self.space.check(arch)
            except InvalidArchitectureError as err:
                raise InvalidArchitectureError(f"strategy {self.name!r} proposed an architecture outside its "
                                               f"space: {err}") from None
            if len(self._members) >= _MEMBER_MEMO:
                del self._members[next(iter(self._members))]  # the oldest
            self._members[arch] = None
        trials = []
        for arch, parent in zip(proposals, parents):
            trial = Trial(self._next_id, arch, trial_seed(self.seed, self._next_id), parent)
            self._next_id += 1
            self._pending[trial.id] = trial
            trials.append(trial)
        return trials

    def tell(self, trial: Trial, result: Result) -> None:
        """Report the result of a trial this strategy proposed; each trial is told once."""
        if trial.id not in self._pending:
            raise ValueError(f"trial {trial.id} was not asked of this strategy or was already told")
        del self._pending[trial.id]
        self.n_told += 1
        self._observe(trial, result)

    @property
    def pending(self) -> list[Trial]:
        """Trials asked but not yet told, by id."""
        return [self._pending[k] for k in sorted(self._pending)]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as JSON data."""
        return {
            "strategy": self.name,
            "seed": self.seed,
            "next_id": self._next_id,
            "n_told": self.n_told,
            "rng": jsonable(self.rng.bit_generator.state),
            "pending": [{"id": t.id, "seed": t.seed, "arch": t.arch.to_json(), "parent": t.parent}
                        for t in self.pending],
            "own": self._state(),
        }

    def live_parents(self) -> set[int] | None:
        """The ids of the finished trials this strategy may still name as a child's parent (evolution: its
        population), so that weight inheritance keeps their weights whatever ``evaluator.inherit.keep`` says; None
        (the default): the strategy does not say, and the weight store's ``keep`` rule alone decides."""
        return None

    def job(self, context: JobContext) -> JobSpec | None:
        """The description of the job to run before this strategy can propose, while it is still to be done; None
        (the default) when there is none. Raises :class:`ConfigError` when ``context`` lacks what the job needs."""
        return None

    def tell_job(self, outcome: JobOutcome) -> None:
        """Receive the outcome of the job :meth:`job` returned (its state then holds it: no job any more)."""
        raise ValueError(f"strategy {self.name} runs no job; it was told a job outcome")

    def job_summary(self, context: JobContext) -> dict[str, Any] | None:
        """The job in brief, as JSON data for ``nas status`` (``state``: searching or done); None without a job."""
        return None

    def journal(self) -> list[tuple[int, dict[str, Any]]]:
        """``(key, record)`` pairs (JSON data) of what this strategy learnt since the last call that its
        :meth:`state_dict` then leaves out, each handed out once: history that grows with the search (the
        experiment appends them to its store, so the checkpoint keeps a constant size). A later record of the same
        key replaces an earlier one. None by default."""
        return []

    def restore(self, history: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """After :meth:`load_state_dict`: every record :meth:`journal` handed out (the store's, in key order),
        from which the strategy rebuilds what its state left out; records it no longer needs (written after the
        state was saved) are ignored. Nothing to do by default."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot of a strategy of the same kind, built with the same options."""
        if state.get("strategy") != self.name:
            raise ConfigError(f"state of strategy {state.get('strategy')!r} cannot be loaded into {self.name!r}")
        self.seed = state["seed"]
        self._next_id = state["next_id"]
        self.n_told = state["n_told"]
        self.rng.bit_generator.state = state["rng"]
        self._pending = {p["id"]: Trial(p["id"], Architecture.from_json(p["arch"]), p["seed"], p.get("parent"))
                         for p in state["pending"]}
        self._load_state(state["own"])

    # -- what subclasses write -------------------------------------------------------------------
    @abstractmethod
    def _propose(self, n: int) -> Sequence[Architecture | Child]:
        """``n`` architectures to evaluate next; a :class:`Child` names the trial it was derived from."""

    @abstractmethod
    def _observe(self, trial: Trial, result: Result) -> None:
        """Learn from a result."""

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        return None

    # -- helpers ---------------------------------------------------------------------------------
    def fitness(self, result: Result) -> tuple[float, ...] | None:
        """Objective vector oriented for maximisation; None if the result failed, lacks an objective, or
        violates a constraint."""
        values = oriented(result, self.objectives)
        if values is None or not feasible(result, self.constraints):
            return None
        return values if self.multi_objective else values[:1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed})"

