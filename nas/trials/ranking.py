"""The one ranking of an experiment's trials, used by the search, ``best.json``, ``nas status``, export, report
and :func:`nas.load_experiment`.

Contract of :func:`rank`:

- Only *completed* trials with a finite score take part; failed, pruned and running ones never do.
- A completed trial that violates one of the experiment's constraints (:func:`~nas.trials.objectives.feasible`,
  a missing metric counts as a violation) is *infeasible*: it is not ranked, it is kept apart in
  :attr:`Ranking.infeasible`, so that callers can show it as such.
- The feasible trials are ordered by validation score, best first, ties broken by the lower trial id. With
  several objectives the order is still the score's (the first objective's measure); test accuracy plays no part.
- When no completed trial is feasible, nothing is ranked (``ranked`` is empty) and :meth:`Ranking.reason` says
  why, naming the constraints (``no feasible trial: 60 completed, all violate params <= 300000``). Nothing then
  stands for the experiment's best: no ``best.json``, no export.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from nas.trials.objectives import Constraint, feasible
from nas.trials.trial import Status

__all__ = ["Outcome", "Ranking", "rank", "with_retrained"]

T = TypeVar("T")


class Outcome(Protocol):
    """What ranking reads of a trial's outcome: a :class:`~nas.trials.trial.Result` or a stored trial."""

    @property
    def status(self) -> str: ...

    @property
    def score(self) -> float | None: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Ranking(Generic[T]):
    """The trials of an experiment as ranked under its ``constraints``: ``ranked`` (feasible, best first) and
    ``infeasible`` (completed but violating a constraint, best score first); ``violations[i]`` says what
    ``infeasible[i]`` violates (``params = 615386 > 300000``)."""

    ranked: list[T]
    infeasible: list[T]
    violations: list[str]
    constraints: tuple[Constraint, ...]

    @property
    def completed(self) -> int:
        """Completed trials with a score, feasible or not."""
        return len(self.ranked) + len(self.infeasible)

    def constraint_text(self) -> str:
        """The constraints as text, ``params <= 300000, flops >= 10`` (empty without constraints)."""
        return ", ".join(c.describe() for c in self.constraints)

    def reason(self) -> str:
        """Why nothing is ranked (``no completed trial`` or ``no feasible trial: ...``); empty when some trial
        is ranked."""
        if self.ranked:
            return ""
        if not self.infeasible:
            return "no completed trial"
        return (f"no feasible trial: {len(self.infeasible)} completed, all violate "
                f"{self.constraint_text()}")

    def counts(self) -> dict[str, Any]:
        """For a JSON summary: the constraints as text, and how many completed trials meet them and not."""
        return {"constraints": [c.describe() for c in self.constraints], "feasible": len(self.ranked),
                "infeasible": len(self.infeasible)}


def rank(items: Iterable[T], constraints: Sequence[Constraint] = (), *, ident: Callable[[T], int],
         outcome: Callable[[T], Outcome]) -> Ranking[T]:
    """Rank ``items`` (stored trials, loop records, ...) as the module docstring states; ``ident`` gives an item's
    trial id and ``outcome`` its status, score and metrics."""
    feasible_: list[tuple[float, int, T]] = []
    infeasible: list[tuple[float, int, T, str]] = []
    for item in items:
        out = outcome(item)
        score = out.score
        if out.status != Status.COMPLETE or score is None or not math.isfinite(score):
            continue
        if feasible(out, constraints):
            feasible_.append((-score, ident(item), item))
        else:
            why = "; ".join(v for c in constraints if (v := c.violation(out)) is not None)
            infeasible.append((-score, ident(item), item, why))
    feasible_.sort(key=lambda e: (e[0], e[1]))
    infeasible.sort(key=lambda e: (e[0], e[1]))
    return Ranking([e[2] for e in feasible_], [e[2] for e in infeasible], [e[3] for e in infeasible],
                   tuple(constraints))


def with_retrained(ranking: Ranking[T], retrained: Iterable[T], *, ident: Callable[[T], int],
                   outcome: Callable[[T], Outcome]) -> Ranking[T]:
    """``ranking`` (of scores measured cheaply, e.g. with inherited weights) with the candidates that were trained
    again from scratch (``retrained``: their stand-alone outcomes, under the same trial ids) ranked first, by their
    stand-alone score under the same constraints, then the other ranked trials in their order. A retrained trial
    that failed or violates a constraint is dropped from the ranking; ``ranking`` itself when nothing was
    retrained."""
    items = list(retrained)
    if not items:
        return ranking
    done = {ident(item) for item in items}
    again = rank(items, ranking.constraints, ident=ident, outcome=outcome)
    rest = [item for item in ranking.ranked if ident(item) not in done]
    return Ranking(again.ranked + rest, again.infeasible + [t for t in ranking.infeasible if ident(t) not in done],
                   again.violations + [v for t, v in zip(ranking.infeasible, ranking.violations)
                                       if ident(t) not in done], ranking.constraints)
