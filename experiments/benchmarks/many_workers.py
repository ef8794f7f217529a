"""Strategies under many workers: best-so-far against simulated wall time on NAS-Bench-201, 1, 8 and 64 workers.

A discrete-event simulation of asynchronous parallel search: :class:`SimulatedExecutor` runs the real loop
(:func:`nas.runtime.loop.run_loop`) with ``workers`` simulated workers; a submitted trial is evaluated at once
(a NAS-Bench-201 table lookup) and finishes at the simulated clock plus a duration drawn from a seeded lognormal
(mean 1, log-spread ``--sigma``); ``next_done`` returns the trial that finishes first and moves the clock there.
So the ask/tell order is the one completion times give, each ask sees the trials in flight as a real search
with that many workers would, and the driver's own time is taken as zero. Every strategy is de-duplicated (the
default of a search). The figure at a time is the 200-epoch test accuracy of the best architecture by
validation accuracy among the trials finished by then, mean over seeds. As in a search (and in
``nas benchmark nb201``), the evaluator's zero-cost score is handed to strategies that use one (``gp_bo``'s warm
start and prior); scoring is not a query and takes no simulated time.

    .venv/bin/python experiments/benchmarks/many_workers.py                  # a few minutes
    .venv/bin/python experiments/benchmarks/many_workers.py --trials 64 --seeds 1 --no-write
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.config import attach_zero_cost
from nas.runtime.loop import TrialRecord, run_loop
from nas.trials.protocols import Completion, Evaluator
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from strategies import get_strategy

SECTION = "many_workers"


class SimulatedExecutor:
    """``workers`` simulated workers on a simulated clock (see the module doc); durations drawn from ``seed``."""

    def __init__(self, workers: int, *, seed: int, sigma: float = 0.5) -> None:
        self.capacity = workers
        self.clock = 0.0
        self.sigma = sigma
        self._rng = np.random.default_rng(seed)
        self._events: list[tuple[float, int, Trial, Result]] = []
        self._order = itertools.count()

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        duration = float(self._rng.lognormal(-self.sigma ** 2 / 2, self.sigma))
        heapq.heappush(self._events, (self.clock + duration, next(self._order), trial, evaluator.evaluate(trial)))

    def next_done(self) -> Completion:
        self.clock, _, trial, result = heapq.heappop(self._events)
        return Completion(trial, result)


@dataclass
class Curve:
    """One search: (simulated time, test accuracy of the best by validation so far) at each completion."""

    points: list[tuple[float, float]] = field(default_factory=list)
    distinct: float = 1.0

    def at(self, t: float) -> float:
        best = math.nan
        for when, acc in self.points:
            if when > t:
                break
            best = acc
        return best


def search(name: str, workers: int, trials: int, seed: int, sigma: float) -> Curve:
    space, evaluator = get_space("nb201"), NB201Evaluator()
    strategy = get_strategy(name, space=space, seed=seed)  # de-duplicated, as in a search
    attach_zero_cost(strategy, evaluator)  # as a search does: gp_bo's warm start and prior (not queries)
    executor = SimulatedExecutor(workers, seed=seed, sigma=sigma)
    curve, best = Curve(), [-math.inf, math.nan]

    def on_record(record: TrialRecord) -> None:
        r = record.result
        if r.ok and r.score is not None and r.score > best[0]:
            best[:] = [r.score, r.metrics["test_acc"]]
        curve.points.append((executor.clock, best[1]))

    hashes: list[str] = []
    run_loop(strategy, evaluator, executor, max_trials=trials, on_record=on_record, keep_records=False,
             on_submit=lambda ts: hashes.extend(t.arch.canonical_hash() for t in ts))
    curve.distinct = len(set(hashes)) / len(hashes)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=["random", "evolution", "rl", "optuna", "gp_bo"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--trials", type=int, default=192)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load, date, version = load_average(), utc_date(), code_version()
    curves: dict[tuple[str, int], list[Curve]] = {}
    started = time.perf_counter()
    for name in args.strategies:
        for workers in args.workers:
            t0 = time.perf_counter()
            curves[name, workers] = [search(name, workers, args.trials, seed, args.sigma) for seed in range(args.seeds)]
            print(f"  {name}, {workers} workers: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    times = sorted({args.trials / w for w in args.workers} | {args.trials / w / 4 for w in args.workers})

    def cell(name: str, workers: int, t: float) -> str:
        values = [c.at(t) for c in curves[name, workers]]
        if any(math.isnan(v) for v in values):
            return "-"
        return f"{statistics.fmean(values):.2f}"

    head = "| strategy | workers | " + " | ".join(f"t = {t:g}" for t in times) + " | distinct asks |"
    rule = "|---|---:|" + "---:|" * (len(times) + 1)
    rows = [f"| {name} | {w} | " + " | ".join(cell(name, w, t) for t in times)
            + f" | {min(c.distinct for c in curves[name, w]):.0%} |"
            for name in args.strategies for w in args.workers]
    body = f"""## Strategies under many workers: best-so-far against simulated wall time (`many_workers.py`)

**What was measured.** A discrete-event simulation of asynchronous search on NAS-Bench-201 CIFAR-10: the real
loop (`run_loop`) with 1, 8 or 64 simulated workers; a trial's duration is drawn from a seeded lognormal (mean 1
time unit, log-spread {args.sigma}), the loop's asks and tells follow the completion times, and the driver's own
time counts as zero. {args.trials} trials per search, seeds 0-{args.seeds - 1}, de-duplication on. Figures: the
200-epoch test accuracy (%) of the best architecture by validation accuracy among the trials finished by
simulated time t (in mean trial durations), mean over seeds ("-": no trial finished yet in some seed).
"distinct asks": the smallest share, over seeds, of the search's proposals that are distinct cells (100% by
construction with de-duplication, unless it gave up after its retries; the strategies' own asks with 64 in
flight are checked in `tests/strategies_tests/test_many_workers.py`). The last column has every search done
(all {args.trials} trials), so it compares the workers at an equal number of trials: what asynchrony costs.
What each strategy does with trials in flight: evolution mutates tournament winners of the current population
(the results in, whatever runs); rl samples from its policy and updates it every `batch_size` results; optuna
(TPE) treats the running trials as bad results (`constant_liar=True`); gp_bo conditions its GP on the running
trials at their posterior mean (kriging believer) and excludes them from the candidates; de-duplication makes a
duplicate of a running trial wait for its result instead of running it again. As in a search, gp_bo is handed
the evaluator's zero-cost score (its warm start and prior; scoring takes no simulated time and is not a trial).

{provenance(load, date=date, version=version)}

**Figures.** (computed in {seconds:.0f} s)

{head}
{rule}
""" + "\n".join(rows) + "\n"
    publish(SECTION, body, write=not args.no_write)


if __name__ == "__main__":
    main()
