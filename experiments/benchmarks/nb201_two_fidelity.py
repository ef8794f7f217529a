"""Multi-fidelity search on NAS-Bench-201 CIFAR-10: the 12-epoch and the 200-epoch columns as two fidelities.

A candidate first "trains" 12 epochs (its ``cifar10_val12`` is read; cost 12/200 of a full run); if the pruner lets
it go on it trains to 200 epochs (``cifar10_val200`` is read; total cost 1, as if the 12-epoch value were the
200-epoch run's checkpoint at epoch 12). The selected cell is the best-by-200-epoch-validation among the candidates
trained to the end; the figure is its ``cifar10_test200`` against the total cost spent, in 200-epoch units.
CIFAR-10 only: it is the one dataset whose table has a 200-epoch validation column to select by.

Methods (one worker, sequential; seeds 0..S-1):

* ``random``, ``evolution``: every candidate trained to 200 epochs (no early stopping);
* ``asha``: random search with ASHA (one rung at 12 epochs, reduction factor 3);
* ``hyperband``: random search with the Hyperband pruner (``early_stopping: {name: hyperband, grace_epochs: 1,
  reduction_factor: 3}`` over "epochs" 1 = the 12-epoch value and 3 = the 200-epoch value: two brackets, one
  stopping at 12 epochs, one training everything to the end);
* ``bohb``: the ``bohb`` strategy with that Hyperband pruner;
* ``optuna_bohb``: Optuna's TPESampler with its HyperbandPruner (min_resource 1, max_resource 3, reduction
  factor 3: the same two brackets), used directly; what Optuna users call BOHB. No de-duplication (our strategies
  skip isomorphic cells at no cost, as everywhere in these benchmarks).

Writes the section ``nb201_two_fidelity`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/nb201_two_fidelity.py [--seeds 50]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish
from optuna_direct_nb201 import EDGES, OPS, arch_string

from nas.evaluation.benchmarks import load_nb201
from nas.evaluation.evaluators import NB201Evaluator
from nas.evaluation.pruning import ASHA, Hyperband, make_pruner
from nas.trials.trial import Result, Status
from search_spaces import get_space
from strategies import get_strategy

LOW = 12 / 200  # cost of the 12-epoch fidelity in 200-epoch units
COSTS = (5, 10, 25, 50, 100)
METHODS = ("random", "evolution", "asha", "hyperband", "bohb", "optuna_bohb")


class _Curve:
    """Best-so-far 200-epoch test accuracy (of the best-by-200-epoch-validation cell) at each cost checkpoint."""

    def __init__(self) -> None:
        self.cost = 0.0
        self.best: tuple[float, float] | None = None  # (val200, test200)
        self.at: dict[int, float] = {}

    def spend(self, cost: float) -> None:
        self.cost += cost
        for c in COSTS:
            if c not in self.at and self.cost > c + 1e-9:
                # the budget ran out during this evaluation: the figure is what was known before it
                self.at[c] = self.best[1] if self.best else math.nan

    def full(self, val: float, test: float) -> None:
        if self.best is None or val > self.best[0]:
            self.best = (val, test)

    def done(self) -> bool:
        return len(self.at) == len(COSTS)

    def close(self) -> dict[int, float]:
        for c in COSTS:
            self.at.setdefault(c, self.best[1] if self.best else math.nan)
        return self.at


def run_ours(method: str, seed: int, lookup: Any) -> dict[int, float]:
    space = get_space("nb201")
    strategy = get_strategy("bohb" if method == "bohb" else "evolution" if method == "evolution" else "random",
                            space=space, seed=seed)
    pruner: ASHA | Hyperband | None = None
    if method in ("hyperband", "bohb"):
        pruner = make_pruner(name="hyperband", grace_epochs=1, reduction_factor=3, max_epochs=3, seed=seed)
    elif method == "asha":
        pruner = ASHA(grace_epochs=1, reduction_factor=3)
    curve = _Curve()
    while not curve.done():
        (trial,) = strategy.ask(1)
        rec = lookup(trial.arch)
        go_on = True
        if pruner is not None:
            curve.spend(LOW)
            go_on = pruner.report(trial.id, 1, rec.cifar10_val12)
        if go_on:
            curve.spend(1.0 - LOW if pruner is not None else 1.0)
            if not curve.done():
                curve.full(rec.cifar10_val200, rec.cifar10_test200)
            history = ([{"epoch": 1.0, "score": rec.cifar10_val12}] if pruner is not None else []) + [
                {"epoch": 3.0, "score": rec.cifar10_val200}]
            result = Result(Status.COMPLETE, score=rec.cifar10_val200, history=history,
                            metrics={"test_acc": rec.cifar10_test200})
        else:
            result = Result(Status.PRUNED, score=rec.cifar10_val12, history=[{"epoch": 1.0,
                                                                              "score": rec.cifar10_val12}])
        strategy.tell(trial, result)
    return curve.close()


def run_optuna(seed: int, table: dict[str, Any]) -> dict[int, float]:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=3,
                                                                      reduction_factor=3))
    curve = _Curve()

    def objective(trial: optuna.Trial) -> float:
        ops = {edge: trial.suggest_categorical(f"edge_{edge[0]}_{edge[1]}", OPS) for edge in EDGES}
        rec = table[arch_string(ops)]
        curve.spend(LOW)
        trial.report(rec.cifar10_val12, 1)
        if trial.should_prune():
            raise optuna.TrialPruned()
        curve.spend(1.0 - LOW)
        if not curve.done():
            curve.full(rec.cifar10_val200, rec.cifar10_test200)
        trial.report(rec.cifar10_val200, 3)
        return float(rec.cifar10_val200)

    while not curve.done():
        study.optimize(objective, n_trials=1)
    return curve.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load = load_average()
    table = {r.arch_str: r for r in load_nb201()}
    lookup = NB201Evaluator(dataset="cifar10").lookup
    rows = []
    for method in METHODS:
        start = time.perf_counter()
        curves = [run_optuna(s, table) if method == "optuna_bohb" else run_ours(method, s, lookup)
                  for s in range(args.seeds)]
        seconds = time.perf_counter() - start
        cells = []
        for c in COSTS:
            values = np.array([curve[c] for curve in curves])
            ok = values[~np.isnan(values)]
            se = ok.std(ddof=1) / math.sqrt(len(ok)) if len(ok) > 1 else math.nan
            cells.append(f"{ok.mean():.2f} ± {se:.2f}" + (f" ({len(ok)}/{len(values)})" if len(ok) < len(values)
                                                          else ""))
        rows.append(f"| {method} | " + " | ".join(cells) + f" | {seconds:.0f} |")
        print(rows[-1], flush=True)
    header = " | ".join(f"cost {c}" for c in COSTS)
    body = f"""## NAS-Bench-201 CIFAR-10 with two fidelities, 12 and 200 epochs (`nb201_two_fidelity.py`)

**What was measured.** The table's 12-epoch validation accuracy as a cheap fidelity (cost 12/200) and its
200-epoch validation accuracy as the full one (cost 1, the 12 epochs included): a pruner decides after the 12-epoch
value whether a candidate trains on. Each cell: the mean (± standard error over {args.seeds} seeds) 200-epoch test
accuracy of the best-by-200-epoch-validation cell among those trained to the end, once the total cost in 200-epoch
units reached the column's budget. `random` and `evolution` train every candidate to the end; `asha` is random
search with one ASHA rung at 12 epochs (reduction factor 3); `hyperband` random search with the Hyperband pruner
(two brackets: one stopping at 12 epochs, one training everything); `bohb` the `bohb` strategy with that pruner;
`optuna_bohb` Optuna's `TPESampler` with its `HyperbandPruner` (the same two brackets) used directly. A count in
parentheses is the number of seeds that had trained any candidate to the end by then (the mean is over those).

{provenance(load)}

**Figures.** 200-epoch CIFAR-10 test accuracy (%), mean ± standard error; the last column is the time for all
seeds of that method (table look-ups plus the strategy's work).

| method | {header} | seconds |
|---|{'---:|' * len(COSTS)}---:|
{chr(10).join(rows)}
"""
    publish("nb201_two_fidelity", body, write=not args.no_write)


if __name__ == "__main__":
    main()
