"""Every search strategy on NAS-Bench-201 CIFAR-10, against Optuna used directly and the published numbers.

Runs :func:`nas.runtime.benchmark.run_benchmark` (what ``nas benchmark nb201`` runs) for ``random``,
``evolution``, ``rl``, ``optuna`` (TPE through our adapter) and ``gp_bo`` with ``--seeds`` seeds (0 ..
K-1) of ``--queries`` queries each, with de-duplication of isomorphic cells (the default), plus ``random``
and ``evolution`` without it (``dedup=False``, as ``--no-dedup``), plus Optuna's ``TPESampler`` used
directly (``optuna_direct_nb201.py``). A search's figure after ``q`` queries is the 200-epoch test accuracy
of its best architecture by 200-epoch validation accuracy among the first ``q``; the tables give the mean
and (population) standard deviation over seeds.

It also times the speed-check command ``nas benchmark nb201 --strategy evolution --queries 300 --seeds 50``
in a subprocess (run in a scratch directory, because the command writes its plot into the working
directory), measures on ``--diagnostic-seeds`` extra searches how many proposals de-duplication rejects,
writes the best-so-far curves of all runs to ``nb201_strategies.png`` beside this script
(:func:`nas.runtime.benchmark.plot_curves`) and a zoomed version to ``nb201_strategies_zoom.png``, and replaces
the ``nb201_strategies`` section of ``RESULTS.md`` (other sections are left alone). With the default 50 seeds
x 300 queries it takes about 20 minutes on a busy 2-CPU machine, mostly ``rl`` and ``gp_bo``.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/nb201_strategies.py [--seeds 50] [--queries 300] [--no-write]
        [--dump runs.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from _code_version import code_version
from _results import (
    DEFAULT_RESULTS,
    load_average,
    provenance,
    publish,
    utc_date,
)
from optuna_direct_nb201 import LABEL as DIRECT
from optuna_direct_nb201 import run_optuna_direct

from nas.evaluation.benchmarks import load_nb201
from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.benchmark import CHECKPOINTS, BenchmarkReport, plot_curves, run_benchmark
from nas.runtime.executors import LocalExecutor
from nas.runtime.loop import run_loop
from search_spaces import get_space
from strategies import Deduplicate, get_strategy

SECTION = "nb201_strategies"
HERE = Path(__file__).resolve().parent
DEFAULT_PLOT = HERE / "nb201_strategies.png"
STRATEGIES = ("random", "evolution", "rl", "optuna", "gp_bo")
NO_DEDUP = ("random", "evolution")
DIAGNOSED = ("random", "evolution", "rl", "optuna")  # gp_bo left out: slow, and it excludes seen decisions
SPEED_CHECK = "time .venv/bin/nas benchmark nb201 --strategy evolution --queries 300 --seeds 50"
SPEED_GOAL_SECONDS = 30.0
NEAR = 0.10  # "near" for the random-search goals: within this many points of the target

# NAS-Bench-201 paper (Dong & Yang, ICLR 2020), Table 5, CIFAR-10 test accuracy, mean +- std.
PUBLISHED = (("REA", 93.92, 0.30), ("REINFORCE", 93.85, 0.37), ("RS", 93.70, 0.36), ("BOHB", 93.61, 0.52))


def ceiling() -> tuple[float, str]:
    """Test accuracy of the cell with the best 200-epoch CIFAR-10 validation accuracy (the first such cell,
    should several tie), and its NAS-Bench-201 string."""
    best = max(load_nb201(), key=lambda r: r.cifar10_val200)
    return best.cifar10_test200, best.arch_str


def label(strategy: str, dedup: bool) -> str:
    return strategy if dedup else f"{strategy} (no dedup)"


def run_all(seeds: int, queries: int, strategies: Sequence[str], no_dedup: Sequence[str],
            with_direct: bool) -> dict[str, BenchmarkReport]:
    """Every run, by label; prints one line per run as it finishes."""
    reports: dict[str, BenchmarkReport] = {}
    plan: list[tuple[str, Callable[[], BenchmarkReport]]] = []
    for name in strategies:
        plan.append((label(name, True), lambda n=name: run_benchmark(n, queries=queries, seeds=seeds)))
    for name in no_dedup:
        plan.append((label(name, False),
                     lambda n=name: run_benchmark(n, queries=queries, seeds=seeds, dedup=False)))
    if with_direct:
        plan.append((DIRECT, lambda: run_optuna_direct(seeds, queries)))
    for key, run in plan:
        print(f"running {key} ...", flush=True)
        report = dataclasses.replace(run(), strategy=key)
        reports[key] = report
        marks = "  ".join(f"{q}: {report.at(q)[0]:.2f}" for q in CHECKPOINTS if q <= queries)
        print(f"  {key}: {report.seconds:.1f} s, {report.overhead_ms():.2f} ms/query; {marks}", flush=True)
    return reports


def dedup_diagnostics(strategies: Sequence[str], seeds: int, queries: int) -> dict[str, tuple[float, float, float]]:
    """Per strategy, over seeds ``0 .. seeds-1`` with de-duplication: mean proposals rejected as duplicates
    per query, mean queries per search that still repeat an evaluated cell (let through after
    ``Deduplicate.max_retries`` rejections in a row), and mean seconds per search."""
    space, evaluator = get_space("nb201"), NB201Evaluator()
    out = {}
    for name in strategies:
        skipped, repeats, seconds = [], [], []
        for seed in range(seeds):
            strategy = get_strategy(name, space=space, seed=seed)
            start = time.perf_counter()
            records = run_loop(strategy, evaluator, LocalExecutor(), max_trials=queries)
            seconds.append(time.perf_counter() - start)
            skipped.append(strategy.skipped / len(records))
            repeats.append(len(records) - len({r.trial.arch.canonical_hash() for r in records}))
        out[name] = (statistics.fmean(skipped), statistics.fmean(repeats), statistics.fmean(seconds))
    return out


def speed_check() -> tuple[float, int, str]:
    """Wall time, exit code and output of the speed-check command, run from a scratch directory."""
    nas = Path(sys.executable).parent / "nas"
    cmd = [str(nas), "benchmark", "nb201", "--strategy", "evolution", "--queries", "300", "--seeds", "50"]
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
        wall = time.perf_counter() - start
    return wall, proc.returncode, (proc.stdout + proc.stderr).strip()


def plot_zoom(reports: dict[str, BenchmarkReport], top: float, path: Path) -> None:
    """Mean best-so-far curves from 10 queries on, on an axis zoomed to where they differ, with the ceiling
    (``plot_curves`` draws from 1 query with ±1 s.d. bands, which squeeze the curves into a thin line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lows: list[float] = []
    colours: dict[str, str] = {}
    for key, rep in reports.items():
        base = key.replace(" (no dedup)", "")
        colour = colours.setdefault(base, f"C{len(colours)}")
        xs = list(range(10, rep.queries + 1))
        means = [rep.at(q)[0] for q in xs]
        lows.append(means[0])
        style = "--" if "no dedup" in key else ":" if key == DIRECT else "-"
        ax.plot(xs, means, style, color=colour, label=key, linewidth=1.6)
    ax.axhline(top, color="black", linewidth=0.8, alpha=0.6, label=f"ceiling {top:.2f}")
    ax.set_xscale("log")
    ax.set_xlim(10, max(r.queries for r in reports.values()))
    ax.set_ylim(math.floor(min(lows) * 4) / 4, top + 0.1)
    ax.set_xlabel("queries")
    ax.set_ylabel("mean test accuracy of best-by-validation (%)")
    ax.set_title(f"NAS-Bench-201 CIFAR-10, {next(iter(reports.values())).seeds} seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dump(path: Path, reports: dict[str, BenchmarkReport], speed: tuple[float, int, str] | None,
         diagnostics: dict[str, tuple[float, float, float]] | None) -> None:
    """Save every figure of the run as JSON (curves included), for later analysis."""
    data = {"reports": {k: dataclasses.asdict(r) for k, r in reports.items()}, "speed": speed,
            "diagnostics": diagnostics}
    path.write_text(json.dumps(data))


def _max_retries() -> int:
    return int(inspect.signature(Deduplicate.__init__).parameters["max_retries"].default)


def _zoom_path(plot: Path) -> Path:
    return plot.with_name(f"{plot.stem}_zoom{plot.suffix}")


def _duration(seconds: float) -> str:
    return f"about {seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"


def _cell(report: BenchmarkReport, q: int) -> str:
    if q > report.queries:
        return "—"
    mean, std = report.at(q)
    return f"{mean:.2f} ± {std:.2f}"


def _se(r: BenchmarkReport, q: int) -> float:
    """Standard error of the mean of ``r`` after ``q`` queries (sample standard deviation / sqrt(seeds))."""
    std = r.at(q)[1] * math.sqrt(r.seeds / max(1, r.seeds - 1))
    return std / math.sqrt(r.seeds)


def _se_diff(a: BenchmarkReport, b: BenchmarkReport, q: int) -> float:
    """Standard error of the difference of two means (independent seeds)."""
    return math.hypot(_se(a, q), _se(b, q))


Goal = tuple[str, str, bool, float]  # (goal, what was measured, met, margin in standard errors)


def goals(reports: dict[str, BenchmarkReport]) -> list[Goal]:
    """Each goal of the issue whose runs are present. The margin is how far the measured mean clears the bar
    (negative: misses it), in standard errors of the mean (of the difference, for comparisons)."""
    out: list[Goal] = []

    def mean(key: str, q: int) -> float:
        return reports[key].at(q)[0]

    def have(*keys: str) -> bool:
        return all(k in reports for k in keys)

    def at_least(key: str, q: int, target: float) -> None:
        if q > reports[key].queries:
            return
        m, se = mean(key, q), _se(reports[key], q)
        out.append((f"{key} ≥ {target:.2f} at {q} queries", f"{m:.3f} (margin {m - target:+.3f}, s.e. {se:.3f})",
                    m >= target, (m - target) / se if se else math.inf))

    def beats(key: str, q: int, text: str, strict: bool) -> None:
        if q > min(reports[key].queries, reports[DIRECT].queries):
            return
        a, b, se = mean(key, q), mean(DIRECT, q), _se_diff(reports[key], reports[DIRECT], q)
        out.append((f"{text} at {q} queries", f"{a:.3f} vs {b:.3f} (difference {a - b:+.3f}, s.e. {se:.3f})",
                    a > b if strict else a >= b, (a - b) / se if se else math.inf))

    if have("evolution"):
        at_least("evolution", 100, 94.10)
        at_least("evolution", 300, 94.20)
    if have("optuna", DIRECT):
        for q in (50, 100, 300):
            beats("optuna", q, "optuna (adapter) ≥ Optuna used directly", strict=False)
    if have("rl"):
        at_least("rl", 300, 94.00)
    if have("gp_bo", DIRECT):
        for q in (50, 100):
            beats("gp_bo", q, "gp_bo ahead of Optuna used directly", strict=True)
    if have("gp_bo"):
        at_least("gp_bo", 300, 94.25)
    if have("random"):
        for q, target in ((100, 93.75), (300, 93.90)):
            if q > reports["random"].queries:
                continue
            m, se = mean("random", q), _se(reports["random"], q)
            out.append((f"random near {target:.2f} at {q} queries (within ±{NEAR:.2f})",
                        f"{m:.3f} (difference {m - target:+.3f}, s.e. {se:.3f})", abs(m - target) <= NEAR,
                        (NEAR - abs(m - target)) / se if se else math.inf))
    return out


def render(reports: dict[str, BenchmarkReport], seeds: int, queries: int, speed: tuple[float, int, str] | None,
           plot: Path | None, date: str, load_at_start: str, version: str = "",
           diagnostics: dict[str, tuple[float, float, float]] | None = None, diag_seeds: int = 0) -> str:
    """The Markdown section."""
    top, top_arch = ceiling()
    marks = [q for q in CHECKPOINTS if q <= queries]
    lines = [
        "## Search strategies on NAS-Bench-201 CIFAR-10 (`nb201_strategies.py`)",
        "",
        f"**What was measured.** {seeds} independent searches (seeds 0 .. {seeds - 1}) of {queries} queries per "
        "strategy through `nas.runtime.benchmark.run_benchmark` (the code behind `nas benchmark nb201`: the "
        "real search loop `run_loop` with `LocalExecutor` and the `nb201` table evaluator). A query is one "
        "evaluation; the search sees the table's 200-epoch validation accuracy (`cifar10_val200`), and what is "
        "reported after q queries is the 200-epoch test accuracy (`cifar10_test200`) of the search's best cell "
        "by validation accuracy among its first q queries, mean ± standard deviation over seeds (population "
        f"s.d.; the standard error of a mean is about s.d./{math.sqrt(seeds):.1f}). Our strategies run with "
        "their default options and, unless labelled *no dedup*, with de-duplication of isomorphic cells by "
        "canonical hash (a cell computing the same function as one already evaluated is not queried again, "
        "and does not count). *Optuna TPESampler used directly* is `optuna_direct_nb201.py`: a plain "
        "`optuna.create_study(direction=\"maximize\", sampler=TPESampler(seed=s))` with `study.optimize` over "
        "six categorical parameters (one per edge, the five op names), every trial a query (Optuna does not "
        "skip repeats). The ceiling is the test accuracy of the cell with the best validation accuracy in the "
        f"whole table (`{top_arch}`, validation {max(r.cifar10_val200 for r in load_nb201()):.2f}), computed "
        "from the shipped table.",
        "",
        provenance(load_at_start, threads=torch.get_num_threads(), date=date, version=version, command_note=(
            f" ({_duration(sum(r.seconds for r in reports.values()))} here for "
            "the searches, most of it `gp_bo` and `rl`; `--no-write` prints the section instead; "
            "`optuna_direct_nb201.py` alone: `.venv/bin/python experiments/benchmarks/optuna_direct_nb201.py`). "
            "One strategy from the command "
            f"line: `.venv/bin/nas benchmark nb201 --strategy NAME --queries {queries} --seeds {seeds}` "
            "(add `--no-dedup` for the *no dedup* rows).")),
    ]
    lines += ["", "**Test accuracy (%) of the best-by-validation cell after q queries, mean ± s.d. over "
              f"{seeds} seeds.**", ""]
    header = "| strategy | " + " | ".join(f"{q}" for q in marks) + f" | seeds at the ceiling after {queries} |"
    lines += [header, "|---|" + "---:|" * len(marks) + "---:|"]
    for key, rep in reports.items():
        at_top = sum(1 for c in rep.curves if abs(c[-1] - top) < 1e-9)
        name = key if key == DIRECT else key.replace(" (no dedup)", " (ours, no dedup)") if "no dedup" in key \
            else f"{key} (ours)"
        lines.append(f"| {name} | " + " | ".join(_cell(rep, q) for q in marks) + f" | {at_top} / {rep.seeds} |")
    for name, mean, std in PUBLISHED:
        lines.append(f"| {name}, NAS-Bench-201 paper: **{mean:.2f} ± {std:.2f}** for a time budget, not a query "
                     "count † | " + " | ".join("—" for _ in marks) + " | — |")
    lines.append("| ceiling (test accuracy of the best-by-validation cell of the table) | "
                 + " | ".join(f"{top:.2f}" for _ in marks) + " | — |")
    lines += [
        "",
        "† The NAS-Bench-201 paper's figures (Dong & Yang, ICLR 2020, Table 5: REA 93.92 ± 0.30, REINFORCE "
        "93.85 ± 0.37, RS 93.70 ± 0.36, BOHB 93.61 ± 0.52) are for a simulated *time budget* (12,000 s of "
        "training time per search in the authors' scripts), not for a number of queries, so they sit in no "
        "query column. As far as the "
        "authors' public search scripts show, those searches were also guided by the 12-epoch validation "
        "accuracy, a weaker signal than the 200-epoch validation accuracy used here, so they are context, not "
        "a like-for-like comparison.",
    ]
    if plot is not None:
        rel = plot.relative_to(HERE) if plot.is_relative_to(HERE) else plot
        zoom = _zoom_path(plot)
        zrel = zoom.relative_to(HERE) if zoom.is_relative_to(HERE) else zoom
        lines += ["", f"Best-so-far curves of every run from `nas.runtime.benchmark.plot_curves` (mean, shaded ± 1 "
                  f"s.d., from the first query; log scale): [`{rel}`]({rel}). The same means from 10 queries on, "
                  f"zoomed to where the strategies differ, with the ceiling: [`{zrel}`]({zrel}).",
                  "", f"![best-so-far curves, zoomed]({zrel})"]

    lines += ["", f"**Time for {seeds} seeds x {queries} queries** (wall clock, in one process, torch "
              f"{torch.get_num_threads()} thread). *ask + tell* is the strategy's own time per query "
              "(`BenchmarkReport.overhead_ms()`: the time inside `ask` and `tell`, de-duplication included, "
              "divided by seeds x queries); for Optuna used directly it is everything but the table look-up "
              "(TPE samples inside `suggest_categorical`).", "",
              "| strategy | total seconds | ask + tell per query (ms) |", "|---|---:|---:|"]
    for key, rep in reports.items():
        lines.append(f"| {key} | {rep.seconds:.1f} | {rep.overhead_ms():.2f} |")

    if diagnostics:
        lines += ["", f"**Where de-duplication spends time** (separate runs of seeds 0 .. {diag_seeds - 1}, "
                  f"{queries} queries, through `run_loop` as above; *rejected* are proposals of a cell already "
                  "evaluated, which `Deduplicate` answers from its cache and replaces by asking again; *repeats* "
                  "are queries of an already evaluated cell that still happen, when a strategy proposes "
                  f"`max_retries` = {_max_retries()} duplicates in a row and `Deduplicate` lets one through).", "",
                  "| strategy | rejected proposals per query | repeated queries per search | seconds per search |",
                  "|---|---:|---:|---:|"]
        for name, (rejected, repeats, secs) in diagnostics.items():
            lines.append(f"| {name} | {rejected:.2f} | {repeats:.1f} | {secs:.2f} |")

    if speed is not None:
        wall, code, output = speed
        ok = code == 0 and wall < SPEED_GOAL_SECONDS
        lines += ["", f"**Speed check.** `{SPEED_CHECK}` (run by this script as a subprocess, from a scratch "
                  "directory because the command writes `benchmark_nb201_evolution_cifar10.png` into the working "
                  f"directory): **{wall:.1f} s** wall clock, including interpreter start-up, imports and the plot "
                  f"(goal < {SPEED_GOAL_SECONDS:.0f} s: {'✅' if ok else '❌'}; exit code {code}). Its output:",
                  "", "```", output, "```"]

    lines += ["", "**Goals of the issue** (on the unrounded means; ✅ met, ❌ not met; *s.e.* is the standard "
              "error of the mean, or of the difference of two means over independent seeds; *margin* is how "
              "far the bar is cleared, in standard errors).", "",
              "| goal | measured | margin (s.e.) | met |", "|---|---|---:|:---:|"]
    checked = goals(reports)
    for goal, measured, met, z in checked:
        lines.append(f"| {goal} | {measured} | {z:+.1f} | {'✅' if met else '❌'} |")
    thin = [goal for goal, _, met, z in checked if met and z < 2]
    if thin:
        lines += ["", f"Met, but by less than two standard errors, so not established beyond seed noise with "
                  f"{seeds} seeds: " + "; ".join(thin) + "."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="searches per strategy, seeded 0 .. SEEDS-1")
    parser.add_argument("--queries", type=int, default=300, help="queries per search")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES,
                        help="our strategies to run (default: all)")
    parser.add_argument("--no-dedup-strategies", nargs="*", default=list(NO_DEDUP), choices=STRATEGIES,
                        help="strategies also run with dedup=False (default: random evolution)")
    parser.add_argument("--no-direct", action="store_true", help="skip Optuna used directly")
    parser.add_argument("--no-speed-check", action="store_true", help="skip timing the speed-check command")
    parser.add_argument("--diagnostic-seeds", type=int, default=10,
                        help="seeds of the de-duplication diagnostics (0 skips them; default 10)")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="where to write the curves (PNG)")
    parser.add_argument("--dump", type=Path, help="also save every figure and curve of the run as JSON here")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="the RESULTS.md to update")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    load_at_start = load_average()
    date = utc_date()
    version = code_version()
    speed = None
    if not args.no_speed_check:
        print(f"speed check: {SPEED_CHECK} ...", flush=True)
        speed = speed_check()
        print(f"  {speed[0]:.1f} s, exit code {speed[1]}", flush=True)
    reports = run_all(args.seeds, args.queries, args.strategies, args.no_dedup_strategies, not args.no_direct)
    plot_curves(list(reports.values()), str(args.plot))
    plot_zoom(reports, ceiling()[0], _zoom_path(args.plot))
    diag_names = [n for n in args.strategies if n in DIAGNOSED]
    diagnostics = None
    if args.diagnostic_seeds and diag_names:
        print(f"de-duplication diagnostics: {', '.join(diag_names)}, {args.diagnostic_seeds} seeds ...", flush=True)
        diagnostics = dedup_diagnostics(diag_names, args.diagnostic_seeds, args.queries)
    if args.dump:
        dump(args.dump, reports, speed, diagnostics)
    section = render(reports, args.seeds, args.queries, speed, args.plot.resolve(), date, load_at_start, version,
                     diagnostics, args.diagnostic_seeds)
    publish(SECTION, section, write=not args.no_write, results=args.results)
    if not args.no_write:
        print(f"curves: {args.plot}")
        for goal, measured, met, z in goals(reports):
            print(f"  {'OK ' if met else 'NO '} {goal}: {measured}, margin {z:+.1f} s.e.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
