"""Objectives and constraints over results, and Pareto tools (non-dominated sorting, crowding, hypervolume).

An :class:`Objective` names a result quantity (``score`` or a metric such as ``params``) and a direction.
Internally every objective is turned into a value to *maximise* (minimised metrics are negated), so that
strategies compare tuples without caring about directions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nas.core.errors import ConfigError
from nas.trials.trial import Result

__all__ = ["Measured", "Objective", "Constraint", "parse_objectives", "parse_constraints", "parse_constraint",
           "oriented", "feasible",
           "hash_invariant", "non_dominated_sort", "crowding_distance", "pareto_front", "hypervolume_2d"]


class Measured(Protocol):
    """What constraints read: a score and named metrics (a :class:`Result` or a stored trial)."""

    @property
    def score(self) -> float | None: ...

    @property
    def metrics(self) -> Mapping[str, float]: ...


def _number(x: float) -> str:
    """``300000`` for whole numbers, ``0.5`` / ``1e-05`` otherwise."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


@dataclass(frozen=True)
class Objective:
    """``metric`` is ``score`` (the evaluator's ranking score) or the name of a result metric."""

    metric: str = "score"
    direction: str = "max"

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ConfigError(f"objective {self.metric!r}: direction {self.direction!r} must be 'max' or 'min'")

    def raw(self, result: Result) -> float | None:
        value = result.score if self.metric == "score" else result.metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return None
        return float(value)

    def value(self, result: Result) -> float | None:
        """The objective oriented for maximisation, or None when the result lacks it."""
        raw = self.raw(result)
        return None if raw is None else (raw if self.direction == "max" else -raw)


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric: ``metric <= max`` and/or ``metric >= min``."""

    metric: str
    max: float | None = None
    min: float | None = None

    def satisfied(self, result: Measured) -> bool:
        """Whether ``result`` has a finite value of the metric within the bounds (a missing value violates)."""
        return self.violation(result) is None

    def describe(self) -> str:
        """The bound as text: ``params <= 300000``, ``flops >= 1000`` or ``1000 <= params <= 300000``."""
        if self.min is not None and self.max is not None:
            return f"{_number(self.min)} <= {self.metric} <= {_number(self.max)}"
        if self.max is not None:
            return f"{self.metric} <= {_number(self.max)}"
        return f"{self.metric} >= {_number(self.min)}" if self.min is not None else f"{self.metric} (no bound)"

    def violation(self, result: Measured) -> str | None:
        """None when ``result`` satisfies the constraint, else why not: ``params = 615386 > 300000`` or
        ``params missing``."""
        value = result.score if self.metric == "score" else result.metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return f"{self.metric} missing"
        if self.max is not None and value > self.max:
            return f"{self.metric} = {_number(value)} > {_number(self.max)}"
        if self.min is not None and value < self.min:
            return f"{self.metric} = {_number(value)} < {_number(self.min)}"
        return None


def parse_objectives(spec: Any) -> tuple[Objective, ...]:
    """``None`` -> maximise the score; otherwise a list of ``Objective``, ``"metric"``, ``"max:metric"``,
    ``"min:metric"`` or ``{"metric": ..., "direction": ...}``."""
    if spec is None:
        return (Objective(),)
    out = []
    for item in spec if isinstance(spec, (list, tuple)) else [spec]:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str):
            direction, _, metric = item.rpartition(":")
            out.append(Objective(metric or "score", direction or "max"))
        elif isinstance(item, Mapping):
            out.append(Objective(str(item.get("metric", "score")), str(item.get("direction", "max"))))
        else:
            raise ConfigError(f"objective {item!r}: use 'max:score', 'min:params' or {{metric, direction}}")
    if not out:
        raise ConfigError("objectives: give at least one objective")
    return tuple(out)


_BOUND = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=)\s*(\S+)\s*$")
_RANGE = re.compile(r"^\s*(\S+)\s*<=\s*([A-Za-z_][\w.]*)\s*<=\s*(\S+)\s*$")
_CONSTRAINT_FORMS = "'METRIC <= NUMBER', 'METRIC >= NUMBER' or 'LOW <= METRIC <= HIGH' (e.g. 'pixel3_latency <= 5')"


def _bound(text: str, where: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{where} = {item!r}: {text!r} is not a finite number; write {_CONSTRAINT_FORMS}")
    return value


def parse_constraint(text: str, where: str = "constraint") -> Constraint:
    """``"pixel3_latency <= 5"``, ``"params >= 1000"`` or ``"1000 <= params <= 300000"`` -> a :class:`Constraint`
    (parsed by a pattern, never evaluated); anything else raises :class:`ConfigError` naming ``where``."""
    if not isinstance(text, str):
        raise ConfigError(f"{where} = {text!r}: write {_CONSTRAINT_FORMS}")
    ranged = _RANGE.match(text)
    if ranged:
        low, metric, high = ranged.groups()
        lo, hi = _bound(low, where, text), _bound(high, where, text)
        if lo > hi:
            raise ConfigError(f"{where} = {text!r}: the lower bound {_number(lo)} is above the upper bound "
                              f"{_number(hi)}; no result could satisfy it")
        return Constraint(metric, hi, lo)
    match = _BOUND.match(text)
    if not match:
        raise ConfigError(f"{where} = {text!r} is not a bound; write {_CONSTRAINT_FORMS}")
    metric, op, number = match.groups()
    value = _bound(number, where, text)
    return Constraint(metric, max=value) if op == "<=" else Constraint(metric, min=value)


def parse_constraints(spec: Any) -> tuple[Constraint, ...]:
    """``{"params": {"max": 1e6}}``, or a list of ``Constraint`` and of bounds as text (``"pixel3_latency <= 5"``,
    see :func:`parse_constraint`) -> constraints."""
    if not spec:
        return ()
    if isinstance(spec, str):
        return (parse_constraint(spec, "constraints"),)
    if isinstance(spec, (list, tuple)):
        return tuple(item if isinstance(item, Constraint) else parse_constraint(item, f"constraints[{i}]")
                     for i, item in enumerate(spec))
    if not isinstance(spec, Mapping):
        raise ConfigError(f"constraints = {spec!r}: give a list of bounds such as ['pixel3_latency <= 5'] or a "
                          "mapping such as {params: {max: 300000}}")
    out = []
    for metric, bounds in spec.items():
        if not isinstance(bounds, Mapping) or not set(bounds) <= {"max", "min"} or not bounds:
            raise ConfigError(f"constraint {metric!r}: {bounds!r} must be {{max: number}} and/or {{min: number}}")
        out.append(Constraint(str(metric), bounds.get("max"), bounds.get("min")))
    return tuple(out)


def oriented(result: Result, objectives: Sequence[Objective]) -> tuple[float, ...] | None:
    """The maximisation vector of ``result``, or None when it failed or lacks an objective."""
    if not result.ok:
        return None
    values = [o.value(result) for o in objectives]
    if any(v is None for v in values):
        return None
    return tuple(values)  # type: ignore[arg-type]  # no None: checked above


def feasible(result: Measured, constraints: Sequence[Constraint]) -> bool:
    """Whether ``result`` satisfies every constraint (always, without constraints). The one test of feasibility:
    strategies' fitness and the ranking (:mod:`nas.trials.ranking`) both use it."""
    return all(c.satisfied(result) for c in constraints)


def hash_invariant(metric: str) -> bool:
    """Whether ``metric`` is equal (up to training noise) for architectures with equal ``canonical_hash``, which
    compute the same function: the ``score`` and what is measured of the function (``val_*``, ``test_*``).
    Anything else (``params``, ``flops``, latencies, energies, memory, a plugin's metric) is a cost of the
    implementation, which differs between them (a dead branch holds parameters and still runs), so a search that
    optimises or bounds it must tell them apart (:class:`strategies.Deduplicate` then keys on the exact
    architecture)."""
    return metric == "score" or metric.startswith(("val_", "test_"))


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def non_dominated_sort(points: Sequence[Sequence[float]]) -> list[int]:
    """Pareto rank of each point (0 = non-dominated), all objectives maximised."""
    n = len(points)
    dominated_by = [0] * n
    dominates: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(points[i], points[j]):
                dominates[i].append(j)
                dominated_by[j] += 1
            elif _dominates(points[j], points[i]):
                dominates[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if dominated_by[i] == 0]
    rank = 0
    while front:
        nxt = []
        for i in front:
            ranks[i] = rank
            for j in dominates[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(j)
        front, rank = nxt, rank + 1
    return ranks


def crowding_distance(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance of each point within its set (boundary points are infinite)."""
    n = len(points)
    if n == 0:
        return []
    dist = [0.0] * n
    for k in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][k])
        lo, hi = points[order[0]][k], points[order[-1]][k]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, b, c in zip(order, order[1:], order[2:]):
            dist[b] += (points[c][k] - points[a][k]) / (hi - lo)
    return dist


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points (all objectives maximised)."""
    ranks = non_dominated_sort(points)
    return [i for i, r in enumerate(ranks) if r == 0]


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Area dominated by ``points`` (both objectives maximised) and bounded below by ``reference``."""
    pts = sorted({(float(a), float(b)) for a, b in points if a > reference[0] and b > reference[1]}, reverse=True)
    area, best_b = 0.0, reference[1]
    for a, b in pts:  # descending first objective
        if b > best_b:
            area += (a - reference[0]) * (b - best_b)
            best_b = b
    return area
