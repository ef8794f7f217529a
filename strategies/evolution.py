"""Regularized (aging) evolution, Real et al., "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019.

A population of the ``population`` most recently evaluated architectures; each child comes from the best of
``sample_size`` members drawn at random (tournament), mutated through ``space.mutate``, or, with
probability ``crossover``, from a uniform crossover of two tournament winners' decisions. The oldest member
dies when a child joins. The first ``population`` proposals are random. With several objectives the
tournament picks by Pareto rank within the population, then by crowding distance (NSGA-II's order).
Failed or infeasible results never join the population. A mutated child names the trial it came from (a
:class:`~strategies.base.Child`; with crossover, the first tournament winner), so weight inheritance can start it
from that trial's trained weights.

With many workers (trials in flight) the tournament still draws from the results in; a child computing the same
cell as a trial in flight, or as another child of the same batch, is bred again (up to 16 times): otherwise a
batch of 64 asks mutates the same few winners into the same few neighbours (with 16 results in, 40% of such
asks on NAS-Bench-201 repeated one another). With one worker nothing is in flight and the search is unchanged.

``mutation: {prefer: growth}`` mutates a winner only where the change is a growth with a network morphism
(:func:`nas.graph.inherit.grows`: ``none`` -> a conv, a conv -> a larger one, ``skip_connect`` or an average pool
-> a conv), drawn uniformly among those neighbours; a member without such a neighbour mutates as usual. With weight
inheritance and ``evaluator.inherit.morph`` every such child starts at (or near) its parent's function, as in
LEMONADE, instead of losing it to a removal. The default, ``prefer: any``, is ``space.mutate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.checks import check_int, check_number
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.graph.inherit import grows
from nas.trials.objectives import crowding_distance, non_dominated_sort
from nas.trials.trial import Result, Trial
from strategies.base import Child, Strategy

__all__ = ["RegularizedEvolution"]

#: children bred again (new tournament, new mutation) when one computes the same cell as a trial in flight
_REDRAWS = 16


class RegularizedEvolution(Strategy):
    """Options: ``population`` (20), ``sample_size`` (10), ``crossover`` (probability, 0.0), ``mutation``
    (``{prefer: any}``; ``{prefer: growth}``: mutations with a network morphism, see the module docstring)."""

    name = "evolution"
    multi_objective = True

    def __init__(self, *, population: int = 20, sample_size: int = 10, crossover: float = 0.0,
                 mutation: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        option = f"strategy {self.name} option"
        self.population_size = check_int(f"{option} population", population, minimum=2)
        self.sample_size = check_int(f"{option} sample_size", sample_size, minimum=1)
        if sample_size > population:
            raise ValueError(f"evolution: sample_size {sample_size} exceeds population {population}")
        self.crossover = check_number(f"{option} crossover", crossover, low=0.0, high=1.0)
        self.prefer = _prefer(f"{option} mutation", mutation)
        #: (architecture, fitness, trial id) of the most recent members, oldest first
        self.population: list[tuple[Architecture, tuple[float, ...], int | None]] = []
        self.n_initial = 0

    def _propose(self, n: int) -> list[Architecture | Child]:
        out: list[Architecture | Child] = []
        running: set[str] | None = None  # cells in flight or proposed in this batch, once a child is bred
        for _ in range(n):
            if self.n_initial < self.population_size or len(self.population) < 2:
                self.n_initial += 1
                out.append(self.space.sample(self.rng))
                continue
            if running is None:
                running = {(a.arch if isinstance(a, Child) else a).canonical_hash()
                           for a in [*(t.arch for t in self.pending), *out]}
            for _attempt in range(_REDRAWS):
                child, parent = self._child()
                if child.canonical_hash() not in running:
                    break
            running.add(child.canonical_hash())
            out.append(child if parent is None else Child(child, parent))
        return out

    def _child(self) -> tuple[Architecture, int | None]:
        """A child and the trial id of the member it was derived from."""
        if self.crossover and self.rng.random() < self.crossover:
            (a, parent), (b, _) = self._tournament(), self._tournament()
            return self._cross(a, b), parent
        arch, parent = self._tournament()
        return self._mutate(arch), parent

    def _mutate(self, arch: Architecture) -> Architecture:
        """``space.mutate``, or with ``prefer: growth`` a neighbour that grows (one exists: else ``space.mutate``)."""
        if self.prefer == "growth":
            growing = [n for n in self.space.neighbours(arch) if _grows(arch, n)]
            if growing:
                return growing[int(self.rng.integers(len(growing)))]
        return self.space.mutate(arch, self.rng)

    def _tournament(self) -> tuple[Architecture, int | None]:
        size = min(self.sample_size, len(self.population))
        picks = self.rng.choice(len(self.population), size=size, replace=False)
        fits = [self.population[i][1] for i in picks]
        if len(self.objectives) == 1 or not self.multi_objective:
            best = max(range(size), key=lambda k: fits[k])
        else:
            ranks = non_dominated_sort([m[1] for m in self.population])
            crowd = crowding_distance([m[1] for m in self.population])
            best = min(range(size), key=lambda k: (ranks[picks[k]], -crowd[picks[k]]))
        arch, _, trial_id = self.population[int(picks[best])]
        return arch, trial_id

    def _cross(self, a: Architecture, b: Architecture) -> Architecture:
        da, db = self.space.encode(a), self.space.encode(b)
        child = [x if self.rng.random() < 0.5 else y for x, y in zip(da, db)]
        arch = self.space.decode(child)
        return self.space.mutate(arch, self.rng) if arch.canonical_hash() in (a.canonical_hash(),
                                                                               b.canonical_hash()) else arch

    def _observe(self, trial: Trial, result: Result) -> None:
        fit = self.fitness(result)
        if fit is None:
            return
        self.population.append((trial.arch, fit, trial.id))
        if len(self.population) > self.population_size:
            self.population.pop(0)

    def live_parents(self) -> set[int]:
        """The population's trial ids: the tournament draws every parent from it."""
        return {i for _, _, i in self.population if i is not None}

    def _state(self) -> dict[str, Any]:
        return {"n_initial": self.n_initial,
                "population": [[a.to_json(), list(f), i] for a, f, i in self.population]}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.n_initial = state["n_initial"]
        # members saved before trial ids were kept have none (their children then have no parent)
        self.population = [(Architecture.from_json(m[0]), tuple(m[1]), m[2] if len(m) > 2 else None)
                           for m in state["population"]]


_PREFER = ("any", "growth")


def _prefer(where: str, mutation: Mapping[str, Any] | None) -> str:
    """The ``prefer`` of the ``mutation`` option; :class:`ConfigError` naming ``where`` otherwise."""
    if mutation is None:
        return "any"
    if not isinstance(mutation, Mapping) or set(mutation) - {"prefer"}:
        raise ConfigError(f"{where} = {mutation!r}: expected a mapping with the one key prefer, e.g. "
                          "{prefer: growth}")
    prefer = mutation.get("prefer", "any")
    if prefer not in _PREFER:
        raise ConfigError(f"{where}.prefer = {prefer!r}: choose from {', '.join(_PREFER)} (growth: mutations a "
                          "network morphism starts at the parent's function)")
    return str(prefer)


def _grows(parent: Architecture, child: Architecture) -> bool:
    """Whether ``child`` differs from ``parent`` only in edge ops that grow (:func:`nas.graph.inherit.grows`)."""
    changes = 0
    for name, cell in child.cells.items():
        if name not in parent.cells:
            return False
        before = {(s, d): op for s, d, op in parent.cells[name].edges}
        after = {(s, d): op for s, d, op in cell.edges}
        if set(before) != set(after):
            return False
        for edge, op in after.items():
            if op != before[edge]:
                if not grows(before[edge], op):
                    return False
                changes += 1
    return changes > 0
