"""The peers a user would otherwise pick: Optuna's own ``TPESampler`` and ``GPSampler`` run directly on NAS-Bench-201.

No part of ``nas`` is used except the shipped table (:func:`nas.evaluation.benchmarks.load_nb201`): a plain
``optuna.create_study(direction="maximize", sampler=TPESampler(seed=s))`` (or ``GPSampler(seed=s)``, which
measures the distance of categorical parameters as Hamming) and ``study.optimize`` over six categorical
parameters, one per NAS-Bench-201 edge (``edge_<src>_<dst>``), each choosing among the five op names. The
objective is the validation accuracy the table holds for the resulting NAS-Bench-201 string, the same signal the
``nb201`` evaluator gives our strategies: ``cifar10_val200`` (200 epochs) for CIFAR-10, the 12-epoch validation
accuracy for CIFAR-100 and ImageNet16-120 (the only validation column the table has for them). Every trial is a
query: Optuna does not skip repeated or isomorphic cells.

Per seed, the reported number after ``q`` trials is the 200-epoch test accuracy of the best-by-validation trial
among the first ``q`` (ties: the earlier trial, as in :func:`nas.runtime.benchmark.run_benchmark`); the script
prints its mean and (population) standard deviation over seeds at 10, 25, 50, 100, 200 and 300 trials.

The result is a :class:`nas.runtime.benchmark.BenchmarkReport` so that ``nb201_strategies.py`` tables and
plots it next to our strategies; ``strategy_seconds`` is the time spent outside the table look-up (TPE
samples inside ``suggest_categorical``; plus study bookkeeping), so ``overhead_ms()`` is comparable with our
strategies' ask + tell overhead.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/optuna_direct_nb201.py [--sampler tpe|gp] [--dataset cifar10]
        [--seeds 50] [--trials 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import optuna

from nas.evaluation.benchmarks import load_nb201
from nas.runtime.benchmark import CHECKPOINTS, BenchmarkReport

__all__ = ["EDGES", "OPS", "LABEL", "LABELS", "SIGNALS", "arch_string", "run_optuna_direct"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = tuple((src, dst) for dst in range(1, 4) for src in range(dst))  # NAS-Bench-201 string order
LABEL = "Optuna TPESampler used directly"
LABELS = {"tpe": LABEL, "gp": "Optuna GPSampler used directly"}
#: dataset -> (the validation column that guides the search, the 200-epoch test column reported), as the
#: ``nb201`` evaluator's default signal
SIGNALS = {"cifar10": ("cifar10_val200", "cifar10_test200"),
           "cifar100": ("cifar100_val12", "cifar100_test200"),
           "imagenet16-120": ("imagenet16_val12", "imagenet16_test200")}


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(LABELS)}, got {name!r}")


def arch_string(ops: dict[tuple[int, int], str]) -> str:
    """The NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of an edge -> op mapping."""
    return "+".join("|" + "|".join(f"{ops[(s, d)]}~{s}" for s in range(d)) + "|" for d in range(1, 4))


def run_optuna_direct(seeds: int = 50, trials: int = 300, *, sampler: str = "tpe", dataset: str = "cifar10",
                      first_seed: int = 0) -> BenchmarkReport:
    """``seeds`` studies with ``sampler`` (``tpe`` or ``gp``; seeds ``first_seed ..``) of ``trials`` trials each
    on ``dataset``; see the module docstring."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if dataset not in SIGNALS:
        raise ValueError(f"dataset must be one of {', '.join(SIGNALS)}, got {dataset!r}")
    val_field, test_field = SIGNALS[dataset]
    table = {r.arch_str: r for r in load_nb201()}
    report = BenchmarkReport(LABELS[sampler], dataset, seeds, trials)
    start = time.perf_counter()
    for seed in range(first_seed, first_seed + seeds):
        objective_seconds = 0.0
        tests: list[float] = []

        def objective(trial: optuna.Trial) -> float:
            nonlocal objective_seconds
            ops = {(s, d): trial.suggest_categorical(f"edge_{s}_{d}", OPS) for s, d in EDGES}  # TPE samples here
            t0 = time.perf_counter()
            record = table[arch_string(ops)]
            tests.append(getattr(record, test_field))
            value = getattr(record, val_field)
            objective_seconds += time.perf_counter() - t0
            return value

        seed_start = time.perf_counter()
        study = optuna.create_study(direction="maximize", sampler=_sampler(sampler, seed))
        study.optimize(objective, n_trials=trials)
        report.strategy_seconds += time.perf_counter() - seed_start - objective_seconds

        complete = optuna.trial.TrialState.COMPLETE  # trials are in number order, the order they were evaluated in
        report.add_search((t.value if t.state is complete else None, tests[t.number]) for t in study.trials)
    report.seconds = time.perf_counter() - start
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=sorted(LABELS), default="tpe", help="Optuna sampler (default tpe)")
    parser.add_argument("--dataset", choices=sorted(SIGNALS), default="cifar10", help="(default cifar10)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first study (default 0)")
    parser.add_argument("--seeds", type=int, default=50, help="studies, seeded 0 .. SEEDS-1 (default 50)")
    parser.add_argument("--trials", type=int, default=300, help="trials per study (default 300)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    args = parser.parse_args(argv)
    report = run_optuna_direct(args.seeds, args.trials, sampler=args.sampler, dataset=args.dataset,
                               first_seed=args.first_seed)
    summary = report.summary()
    summary["seconds"] = report.seconds
    summary["overhead_ms"] = report.overhead_ms()
    if args.json:
        summary.update(first_seed=args.first_seed, curves=report.curves, guide_curves=report.guide_curves)
        print(json.dumps(summary))
        return 0
    print(f"NAS-Bench-201 {args.dataset}: {LABELS[args.sampler]} (optuna {optuna.__version__}), {args.seeds} seeds, "
          f"{args.trials} trials ({report.seconds:.1f} s, sampler overhead {report.overhead_ms():.2f} ms per trial)")
    for q in CHECKPOINTS:
        if q <= args.trials:
            mean, std = report.at(q)
            print(f"  {q:>4} trials: {mean:.2f} +- {std:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
