"""The NAS-Bench-201 strategy benchmark behind ``nas benchmark nb201``.

K independent searches (seeds ``0 .. K-1``), each through the same loop as real searches (:func:`run_loop`
with the in-process executor and the ``nb201`` evaluator). Each search picks its best architecture by the
benchmark's validation accuracy; what is reported is that architecture's 200-epoch test accuracy, after
10, 25, 50, 100, 200 and 300 queries (those up to N). A query is one evaluation by the loop; with
de-duplication (the default) architectures that compute the same function are never queried twice.

With objectives or constraints (``nas benchmark nb201 --objectives max:score,min:pixel3_latency``, ``--constraint
'pixel3_latency <= 5'``), :func:`run_objectives_benchmark` builds the strategies with them and measures each search
against the whole table (:func:`true_front`): with two objectives the hypervolume of the feasible points found over
that of the true Pareto front, and always the test accuracy of the best-by-validation feasible cell and the share
of feasible queries.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from nas.evaluation.benchmarks import load_nb201
from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.config import attach_zero_cost
from nas.runtime.executors import LocalExecutor
from nas.runtime.loop import run_loop
from nas.trials.objectives import (
    Constraint,
    Objective,
    feasible,
    hypervolume_2d,
    oriented,
    parse_constraint,
    parse_objectives,
)
from nas.trials.protocols import Proposer
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from search_spaces.nb201 import NB201Space
from strategies import get_strategy

__all__ = ["BenchmarkReport", "best_by_validation", "run_benchmark", "attach_zero_cost", "CHECKPOINTS",
           "ObjectivesReport", "TrueFront", "true_front", "run_objectives_benchmark", "parse_benchmark_objectives"]

CHECKPOINTS = (10, 25, 50, 100, 200, 300)


class _Timed:
    """Delegates to a strategy, adding up the time spent in ``ask`` and ``tell``."""

    def __init__(self, strategy: Proposer) -> None:
        self.strategy = strategy
        self.seconds = 0.0

    def ask(self, n: int = 1) -> list[Trial]:
        start = time.perf_counter()
        try:
            return self.strategy.ask(n)
        finally:
            self.seconds += time.perf_counter() - start

    def tell(self, trial: Trial, result: Result) -> None:
        start = time.perf_counter()
        try:
            self.strategy.tell(trial, result)
        finally:
            self.seconds += time.perf_counter() - start


@dataclass
class BenchmarkReport:
    strategy: str
    dataset: str
    seeds: int
    queries: int
    curves: list[list[float]] = field(default_factory=list)  # per seed: test acc of the best-by-val so far
    #: per seed: the validation accuracy (the search's guide) of that best-by-val so far
    guide_curves: list[list[float]] = field(default_factory=list)
    seconds: float = 0.0
    strategy_seconds: float = 0.0
    #: work of the strategies' zero-cost scorers over all seeds (not queries: the cells scored, and the seconds)
    zero_cost_calls: int = 0
    zero_cost_seconds: float = 0.0

    def at(self, q: int) -> tuple[float, float]:
        values = [c[min(q, len(c)) - 1] for c in self.curves]
        return statistics.fmean(values), statistics.pstdev(values)

    def summary(self) -> dict[str, Any]:
        """``{"strategy", "dataset", "seeds", "queries": {"Q": {"mean", "std"}}}``."""
        marks = [q for q in CHECKPOINTS if q <= self.queries]
        return {"strategy": self.strategy, "dataset": self.dataset, "seeds": self.seeds,
                "queries": {str(q): dict(zip(("mean", "std"), self.at(q))) for q in marks}}

    def overhead_ms(self) -> float:
        """Mean strategy time (ask + tell) per query, in milliseconds (zero-cost scoring included)."""
        return 1e3 * self.strategy_seconds / max(1, self.seeds * self.queries)

    def add_search(self, queries: Iterable[tuple[float | None, float | None]]) -> None:
        """Append one search to ``curves`` and ``guide_curves`` (:func:`best_by_validation` of its queries)."""
        curve, guide = best_by_validation(queries)
        self.curves.append(curve)
        self.guide_curves.append(guide)

    def zero_cost_per_run(self) -> tuple[float, float]:
        """Mean (cells scored, seconds) of zero-cost work per search."""
        return self.zero_cost_calls / max(1, self.seeds), self.zero_cost_seconds / max(1, self.seeds)


def best_by_validation(queries: Iterable[tuple[float | None, float | None]]) -> tuple[list[float], list[float]]:
    """From a search's queries in the order they were evaluated, (validation score, or None for a failed query;
    test accuracy): per query, the test accuracy and the validation score of the best-by-validation query so far
    (the earliest of the highest score); before the first success NaN and -inf."""
    curve, guide, best_val, best_test = [], [], float("-inf"), float("nan")
    for score, test in queries:
        if score is not None and score > best_val:
            best_val, best_test = score, float("nan") if test is None else test
        curve.append(best_test)
        guide.append(best_val)
    return curve, guide


def run_benchmark(strategy: str, *, queries: int, seeds: int, dataset: str = "cifar10", dedup: bool = True,
                  options: dict[str, Any] | None = None, first_seed: int = 0,
                  zero_cost: bool = True) -> BenchmarkReport:
    """Run ``seeds`` searches of ``queries`` evaluations each, seeded ``first_seed ..`` (see the module
    docstring). ``zero_cost=False`` withholds the evaluator's zero-cost score from the strategy, as a search on an
    evaluator without one (real training) runs."""
    space = get_space("nb201")
    evaluator = NB201Evaluator(dataset=dataset)
    report = BenchmarkReport(strategy, dataset, seeds, queries)
    start = time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        built = get_strategy(strategy, space=space, seed=seed, dedup=dedup, **(options or {}))
        if zero_cost:
            attach_zero_cost(built, evaluator)
        timed = _Timed(built)
        records = run_loop(timed, evaluator, LocalExecutor(), max_trials=queries)
        report.add_search((r.result.score if r.result.ok else None, r.result.metrics.get("test_acc"))
                          for r in records)
        report.strategy_seconds += timed.seconds
        inner = getattr(built, "inner", built)
        report.zero_cost_calls += int(getattr(inner, "zero_cost_calls", 0))
        report.zero_cost_seconds += float(getattr(inner, "zero_cost_seconds", 0.0))
    report.seconds = time.perf_counter() - start
    return report


def plot_curves(reports: list[BenchmarkReport], path: str) -> None:
    """Mean best-so-far test accuracy (and one standard deviation) against queries, one line per report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rep in reports:
        xs = list(range(1, rep.queries + 1))
        means = [rep.at(q)[0] for q in xs]
        stds = [rep.at(q)[1] for q in xs]
        ax.plot(xs, means, label=f"{rep.strategy} ({rep.seeds} seeds)")
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"test accuracy of best-by-validation (%), {reports[0].dataset}")
    low = min(rep.at(min(10, rep.queries))[0] - rep.at(min(10, rep.queries))[1] for rep in reports)
    high = max(max(rep.at(q)[0] + rep.at(q)[1] for q in range(min(10, rep.queries), rep.queries + 1))
               for rep in reports)
    ax.set_ylim(low - 0.2, high + 0.1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- objectives and constraints: hardware-aware benchmarks ----------------------------------------------------
def parse_benchmark_objectives(text: str | None, constraints: list[str] | None = None,
                               dataset: str = "cifar10") -> tuple[tuple[Objective, ...], tuple[Constraint, ...]]:
    """``--objectives max:score,min:pixel3_latency`` and ``--constraint 'pixel3_latency <= 5'`` (repeatable) as
    objectives and constraints, each metric checked against what the ``nb201`` evaluator reports. At most two
    objectives (the hypervolume is measured in two dimensions). Bad input raises :class:`ConfigError` naming
    the option, the value and the fix."""
    known = ["score", *sorted(NB201Evaluator.metrics)]
    items = [] if text is None else [t.strip() for t in text.split(",")]
    if text is not None and (not items or not all(items)):
        raise ConfigError(f"--objectives {text!r}: give comma-separated DIRECTION:METRIC items, e.g. "
                          "--objectives max:score,min:pixel3_latency")
    try:
        objectives = parse_objectives(items or None)
    except ConfigError as err:
        raise ConfigError(f"--objectives {text!r}: {err}; write e.g. max:score,min:pixel3_latency") from None
    if len(objectives) > 2:
        raise ConfigError(f"--objectives {text!r}: {len(objectives)} objectives; the benchmark measures one, or "
                          "two by hypervolume: give at most two")
    if objectives[0].metric != "score" or objectives[0].direction != "max":
        raise ConfigError(f"--objectives {text!r}: the first objective must be max:score (the validation accuracy "
                          "the benchmark reports the test accuracy of); put costs after it")
    parsed = [parse_constraint(item, "--constraint") for item in constraints or ()]
    for what, metric in [*((f"--objectives {text!r}", o.metric) for o in objectives),
                         *((f"--constraint {c.describe()!r}", c.metric) for c in parsed)]:
        if metric not in known:
            raise ConfigError(f"{what}: the nb201 evaluator reports no metric {metric!r}" + did_you_mean(metric, known)
                              + f"; it reports {', '.join(known)}")
    return objectives, tuple(parsed)


def _front_2d(points: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    """The non-dominated points of a 2-D set (both maximised), in O(n log n)."""
    out: list[tuple[float, ...]] = []
    best = float("-inf")
    for p in sorted(set(points), key=lambda p: (-p[0], -p[1])):
        if p[1] > best:
            out.append(p)
            best = p[1]
    return out


def _table_results(dataset: str) -> list[Result]:
    """The ``nb201`` evaluator's result for every cell of the table, in index order."""
    space, evaluator = NB201Space(), NB201Evaluator(dataset=dataset)
    return [evaluator.evaluate(Trial(r.index, space.from_string(r.arch_str))) for r in load_nb201()]


@dataclass(frozen=True)
class TrueFront:
    """What the best search could find in the table under ``objectives`` and ``constraints``: the oriented points
    of the feasible cells' Pareto front and, with two objectives, the reference point (the median feasible cell's
    value of each objective, so that a point counts only where it beats the median cell on both: the region a
    user searches in, not the chance-level cells that cost nothing) and the front's hypervolume there; the test
    accuracy of the best-by-validation feasible cell (``best_test``); the share of feasible cells."""

    points: list[tuple[float, ...]]
    reference: tuple[float, ...]
    hv: float
    best_test: float
    feasible_share: float


def true_front(dataset: str, objectives: tuple[Objective, ...], constraints: tuple[Constraint, ...]) -> TrueFront:
    """The :class:`TrueFront` of the whole table (15,625 cells; a second or so)."""
    results = _table_results(dataset)
    ok = [r for r in results if feasible(r, constraints)]
    if not ok:
        raise ConfigError("no cell of the table satisfies " + ", ".join(c.describe() for c in constraints)
                          + "; loosen the bound")
    best = max(ok, key=lambda r: r.score if r.score is not None else float("-inf"))
    points = [p for p in (oriented(r, objectives) for r in ok) if p is not None]
    front = _front_2d(points) if len(objectives) == 2 else [max(points)]
    if len(objectives) == 2:  # a point counts only where it beats the table's median cell on both objectives
        reference: tuple[float, ...] = tuple(statistics.median(p[k] for p in points) for k in range(2))
        hv = hypervolume_2d(front, reference)
    else:
        reference, hv = (), 0.0
    return TrueFront(sorted(set(front)), reference, hv, float(best.metrics["test_acc"]), len(ok) / len(results))


@dataclass
class ObjectivesReport:
    """Searches under objectives and constraints. Per seed and query: ``feasible`` (the query's result met every
    constraint), ``curves`` (test accuracy of the best-by-validation feasible cell so far, NaN before the first)
    and, with two objectives, ``hv`` (hypervolume of the feasible points so far over the true front's)."""

    strategy: str
    dataset: str
    seeds: int
    queries: int
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    true: TrueFront
    curves: list[list[float]] = field(default_factory=list)
    hv: list[list[float]] = field(default_factory=list)
    feasible: list[list[bool]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Per checkpoint: mean and s.d. over seeds of the best feasible test accuracy (over the seeds that found a
        feasible cell; ``found`` counts them), of the share of feasible queries and, with two objectives, of the
        hypervolume ratio."""
        marks = [q for q in CHECKPOINTS if q <= self.queries] or [self.queries]
        out: dict[str, Any] = {"strategy": self.strategy, "dataset": self.dataset, "seeds": self.seeds,
                               "objectives": [f"{o.direction}:{o.metric}" for o in self.objectives],
                               "constraints": [c.describe() for c in self.constraints],
                               "true": {"best_test": self.true.best_test, "hv": self.true.hv,
                                        "reference": list(self.true.reference), "front": len(self.true.points),
                                        "feasible_share": self.true.feasible_share},
                               "queries": {}}
        for q in marks:
            tests = [c[q - 1] for c in self.curves if not math.isnan(c[q - 1])]
            rates = [sum(f[:q]) / q for f in self.feasible]
            entry: dict[str, Any] = {"found": len(tests),
                                     "mean": statistics.fmean(tests) if tests else float("nan"),
                                     "std": statistics.pstdev(tests) if tests else float("nan"),
                                     "feasible_rate": statistics.fmean(rates)}
            if self.hv:
                ratios = [h[q - 1] for h in self.hv]
                entry["hv_ratio"] = {"mean": statistics.fmean(ratios), "std": statistics.pstdev(ratios)}
            out["queries"][str(q)] = entry
        return out


def run_objectives_benchmark(strategy: str, *, objectives: tuple[Objective, ...],
                             constraints: tuple[Constraint, ...] = (), queries: int, seeds: int,
                             dataset: str = "cifar10", dedup: bool = True,
                             options: dict[str, Any] | None = None) -> ObjectivesReport:
    """``seeds`` searches of ``queries`` evaluations of strategy ``strategy`` built with ``objectives`` and
    ``constraints`` (de-duplication keys on the exact cell when they name a cost, see
    :class:`strategies.Deduplicate`); measured against :func:`true_front`."""
    space = get_space("nb201")
    evaluator = NB201Evaluator(dataset=dataset)
    report = ObjectivesReport(strategy, dataset, seeds, queries, objectives, constraints,
                              true_front(dataset, objectives, constraints))
    start = time.perf_counter()
    for seed in range(seeds):
        built = get_strategy(strategy, space=space, seed=seed, dedup=dedup, objectives=list(objectives),
                             constraints=list(constraints), **(options or {}))
        records = run_loop(built, evaluator, LocalExecutor(), max_trials=queries)
        flags = [r.result.ok and r.result.score is not None and feasible(r.result, constraints) for r in records]
        curve, _ = best_by_validation((r.result.score if ok else None, r.result.metrics.get("test_acc"))
                                      for r, ok in zip(records, flags))
        hv: list[float] = []
        points: list[tuple[float, ...]] = []
        area = 0.0
        for record, ok in zip(records, flags):
            point = oriented(record.result, objectives) if ok else None
            if len(objectives) == 2:
                if point is not None:
                    points.append(point)
                    area = hypervolume_2d(points, report.true.reference)
                hv.append(area / report.true.hv)
        report.curves.append(curve)
        report.feasible.append(flags)
        if hv:
            report.hv.append(hv)
    report.seconds = time.perf_counter() - start
    return report
