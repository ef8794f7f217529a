"""The NAS-Bench-201 strategy benchmark behind ``nas benchmark nb201``.

K independent searches (seeds ``0 .. K-1``), each through the same loop as real searches (:func:`run_loop`
with the in-process executor and the ``nb201`` evaluator). Each search picks its best architecture by the
benchmark's validation accuracy; what is reported is that architecture's 200-epoch test accuracy, after
10, 25, 50, 100, 200 and 300 queries (those up to N). A query is one evaluation by the loop; with
de-duplication (the default) architectures that compute the same function are never queried twice.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.config import attach_zero_cost
from nas.runtime.executors import LocalExecutor
from nas.runtime.loop import run_loop
from nas.trials.protocols import Proposer
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from strategies import get_strategy

__all__ = ["BenchmarkReport", "run_benchmark", "attach_zero_cost", "CHECKPOINTS"]

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
    seconds: float = 0.0
    strategy_seconds: float = 0.0

    def at(self, q: int) -> tuple[float, float]:
        values = [c[min(q, len(c)) - 1] for c in self.curves]
        return statistics.fmean(values), statistics.pstdev(values)

    def summary(self) -> dict[str, Any]:
        """``{"strategy", "dataset", "seeds", "queries": {"Q": {"mean", "std"}}}``."""
        marks = [q for q in CHECKPOINTS if q <= self.queries]
        return {"strategy": self.strategy, "dataset": self.dataset, "seeds": self.seeds,
                "queries": {str(q): dict(zip(("mean", "std"), self.at(q))) for q in marks}}

    def overhead_ms(self) -> float:
        """Mean strategy time (ask + tell) per query, in milliseconds."""
        return 1e3 * self.strategy_seconds / max(1, self.seeds * self.queries)


def run_benchmark(strategy: str, *, queries: int, seeds: int, dataset: str = "cifar10", dedup: bool = True,
                  options: dict[str, Any] | None = None) -> BenchmarkReport:
    """Run ``seeds`` searches of ``queries`` evaluations each (see the module docstring)."""
    space = get_space("nb201")
    evaluator = NB201Evaluator(dataset=dataset)
    report = BenchmarkReport(strategy, dataset, seeds, queries)
    start = time.perf_counter()
    for seed in range(seeds):
        built = get_strategy(strategy, space=space, seed=seed, dedup=dedup, **(options or {}))
        attach_zero_cost(built, evaluator)
        timed = _Timed(built)
        records = run_loop(timed, evaluator, LocalExecutor(), max_trials=queries)
        curve, best_val, best_test = [], float("-inf"), float("nan")
        for record in records:
            score = record.result.score
            if record.result.ok and score is not None and score > best_val:
                best_val, best_test = score, record.result.metrics["test_acc"]
            curve.append(best_test)
        report.curves.append(curve)
        report.strategy_seconds += timed.seconds
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
