"""The peer a user would otherwise pick: Optuna's own ``TPESampler`` run directly on NAS-Bench-201 CIFAR-10.

No part of ``nas`` is used except the shipped table (:func:`nas.evaluation.benchmarks.load_nb201`): a plain
``optuna.create_study(direction="maximize", sampler=TPESampler(seed=s))`` and ``study.optimize`` over six
categorical parameters, one per NAS-Bench-201 edge (``edge_<src>_<dst>``), each choosing among the five op
names. The objective is the table's ``cifar10_val200`` (200-epoch validation accuracy) of the resulting
NAS-Bench-201 string. Every trial is a query: Optuna does not skip repeated or isomorphic cells.

Per seed, the reported number after ``q`` trials is the ``cifar10_test200`` of the best-by-validation trial
among the first ``q`` (ties: the earlier trial, as in :func:`nas.runtime.benchmark.run_benchmark`); the script
prints its mean and (population) standard deviation over seeds at 10, 25, 50, 100, 200 and 300 trials.

The result is a :class:`nas.runtime.benchmark.BenchmarkReport` so that ``nb201_strategies.py`` tables and
plots it next to our strategies; ``strategy_seconds`` is the time spent outside the table look-up (TPE
samples inside ``suggest_categorical``; plus study bookkeeping), so ``overhead_ms()`` is comparable with our
strategies' ask + tell overhead.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/optuna_direct_nb201.py [--seeds 50] [--trials 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import optuna

from nas.evaluation.benchmarks import load_nb201
from nas.runtime.benchmark import CHECKPOINTS, BenchmarkReport

__all__ = ["EDGES", "OPS", "LABEL", "arch_string", "run_optuna_direct"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = tuple((src, dst) for dst in range(1, 4) for src in range(dst))  # NAS-Bench-201 string order
LABEL = "Optuna TPESampler used directly"


def arch_string(ops: dict[tuple[int, int], str]) -> str:
    """The NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of an edge -> op mapping."""
    return "+".join("|" + "|".join(f"{ops[(s, d)]}~{s}" for s in range(d)) + "|" for d in range(1, 4))


def run_optuna_direct(seeds: int = 50, trials: int = 300) -> BenchmarkReport:
    """``seeds`` TPE studies (seeds ``0 .. seeds-1``) of ``trials`` trials each; see the module docstring."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = {r.arch_str: r for r in load_nb201()}
    report = BenchmarkReport(LABEL, "cifar10", seeds, trials)
    start = time.perf_counter()
    for seed in range(seeds):
        objective_seconds = 0.0
        tests: list[float] = []

        def objective(trial: optuna.Trial) -> float:
            nonlocal objective_seconds
            ops = {(s, d): trial.suggest_categorical(f"edge_{s}_{d}", OPS) for s, d in EDGES}  # TPE samples here
            t0 = time.perf_counter()
            record = table[arch_string(ops)]
            tests.append(record.cifar10_test200)
            value = record.cifar10_val200
            objective_seconds += time.perf_counter() - t0
            return value

        seed_start = time.perf_counter()
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
        report.strategy_seconds += time.perf_counter() - seed_start - objective_seconds

        curve, best_val, best_test = [], float("-inf"), float("nan")
        for trial in study.trials:  # in trial-number order, which is the order they were evaluated in
            if trial.state is optuna.trial.TrialState.COMPLETE and trial.value > best_val:
                best_val, best_test = trial.value, tests[trial.number]
            curve.append(best_test)
        report.curves.append(curve)
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="studies, seeded 0 .. SEEDS-1 (default 50)")
    parser.add_argument("--trials", type=int, default=300, help="trials per study (default 300)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    args = parser.parse_args(argv)
    report = run_optuna_direct(args.seeds, args.trials)
    summary = report.summary()
    summary["seconds"] = report.seconds
    summary["overhead_ms"] = report.overhead_ms()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"NAS-Bench-201 cifar10: {LABEL} (optuna {optuna.__version__}), {args.seeds} seeds, {args.trials} "
          f"trials ({report.seconds:.1f} s, sampler overhead {report.overhead_ms():.2f} ms per trial)")
    for q in CHECKPOINTS:
        if q <= args.trials:
            mean, std = report.at(q)
            print(f"  {q:>4} trials: {mean:.2f} +- {std:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
