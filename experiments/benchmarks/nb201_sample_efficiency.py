"""Sample efficiency on the three NAS-Bench-201 datasets: ``gp_bo`` against Optuna's samplers used directly.

Optuna's TPE and GP samplers used directly, and our other strategies, at 25 / 50 / 100 / 300 queries.

Two steps, because Optuna's ``GPSampler`` costs about half a second per trial and the runs are best spread out:

``run``  runs :func:`nas.runtime.benchmark.run_benchmark` (what ``nas benchmark nb201`` runs, de-duplication on,
         default options) for each ``--strategies`` x ``--datasets`` with seeds ``--first-seed ..`` (``--seeds`` of
         them) and writes one JSON file per run (summary, per-seed best-so-far curves, the zero-cost work: cells
         scored and seconds, which are not queries) into ``--out``. ``--options JSON`` passes strategy options
         (``--tag T`` names such runs ``<strategy> T``, a column of their own): settings are chosen this way on
         held-out seeds (``--first-seed 100``), never on the reported ones. ``--no-zero-cost`` withholds the
         table's zero-cost score from the strategy, as a search on an evaluator without one (real training) runs.
``table`` reads every JSON file in ``--runs`` (these, and ``optuna_direct_nb201.py --json`` outputs saved there as
         ``<anything>.json``; runs of one strategy and dataset over disjoint seeds are pooled) and prints, or with
         ``--write`` replaces, the ``nb201_sample_efficiency`` section of ``RESULTS.md``: per dataset, mean +-
         standard error at 25 / 50 / 100 / 300 queries (each column over the seeds that reached it), the margin of
         ``gp_bo`` over the better of the two Optuna samplers in standard errors of the difference, and the
         zero-cost cells and seconds per search.

A search's figure after ``q`` queries is the 200-epoch test accuracy of its best cell by the validation accuracy
the ``nb201`` evaluator gives (200-epoch for CIFAR-10, 12-epoch for CIFAR-100 and ImageNet16-120).

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/nb201_sample_efficiency.py run --out runs/se [--seeds 50]
        [--queries 300] [--first-seed 0] [--strategies gp_bo,evolution,random]
        [--datasets cifar10,cifar100,imagenet16-120]
    .venv/bin/python experiments/benchmarks/optuna_direct_nb201.py --sampler gp --dataset cifar100 --json \\
        > runs/se/gp_cifar100.json
    .venv/bin/python experiments/benchmarks/nb201_sample_efficiency.py table --runs runs/se [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _results import provenance, publish
from optuna_direct_nb201 import SIGNALS

from nas.core.io import atomic_write_text
from nas.evaluation.benchmarks import load_nb201
from nas.runtime.benchmark import run_benchmark

SECTION = "nb201_sample_efficiency"
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
MARKS = (25, 50, 100, 300)
OURS = "gp_bo"
#: ``OURS`` run with ``--no-zero-cost --tag nozc``: as on an evaluator without a zero-cost score (real training)
BLIND = f"{OURS} nozc"
DIRECT = ("Optuna TPESampler used directly", "Optuna GPSampler used directly")
ORDER = (OURS, BLIND, "evolution", "random", *DIRECT)
LABELS = {OURS: f"{OURS} (ours)", BLIND: f"{OURS} without the zero-cost score (ours)", "evolution": "evolution (ours)",
          "random": "random (ours)", DIRECT[0]: "Optuna TPE direct", DIRECT[1]: "Optuna GPSampler direct"}
SIGNAL = {"cifar10": "200-epoch validation", "cifar100": "12-epoch validation", "imagenet16-120": "12-epoch validation"}


def run(strategies: Sequence[str], datasets: Sequence[str], seeds: int, queries: int, out: Path,
        first_seed: int = 0, options: dict[str, Any] | None = None, tag: str = "", zero_cost: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for dataset in datasets:
        for name in strategies:
            start = time.perf_counter()
            report = run_benchmark(name, queries=queries, seeds=seeds, dataset=dataset, first_seed=first_seed,
                                   options=options, zero_cost=zero_cost)
            summary = report.summary()
            calls, seconds = report.zero_cost_per_run()
            summary.update(seconds=time.perf_counter() - start, overhead_ms=report.overhead_ms(),
                           first_seed=first_seed, zero_cost_calls=calls, zero_cost_seconds=seconds,
                           curves=report.curves, guide_curves=report.guide_curves, options=options or {},
                           zero_cost=zero_cost)
            if tag:
                summary["strategy"] = f"{name} {tag}"
            path = out / f"{name}{tag and '_' + tag}_{dataset}_{first_seed}+{seeds}x{queries}.json"
            atomic_write_text(path, json.dumps(summary))
            print(f"{dataset} {name}: {summary['seconds']:.0f} s, {report.overhead_ms():.1f} ms per query, "
                  f"zero-cost {calls:.0f} cells / {seconds:.2f} s per search", flush=True)


Key = tuple[str, str]  # (strategy, dataset)


@dataclass(frozen=True)
class Runs:
    """What the JSON files of a runs directory hold, pooled per (strategy, dataset): ``curves`` and ``guides`` (test
    accuracy, and validation accuracy, of the best-by-validation cell so far) one per seed, the longest of a seed
    where runs overlap, ``guides`` only from the runs that record them; ``zero`` maps queries per search to the mean
    zero-cost (cells, seconds) per search over the runs that report it."""

    curves: dict[Key, list[list[float]]]
    guides: dict[Key, list[list[float]]]
    zero: dict[Key, dict[int, tuple[float, float]]]

    def names(self, dataset: str, guides: bool = False) -> list[str]:
        """The strategies run on ``dataset`` (of those with guide curves when ``guides``): ``ORDER`` first."""
        keys = self.guides if guides else self.curves
        return [n for n in ORDER if (n, dataset) in keys] + sorted(
            n for n, d in keys if d == dataset and n not in ORDER)


def _longest_per_seed(into: dict[int, list[float]], first_seed: int, curves: list[list[float]]) -> None:
    for i, curve in enumerate(curves):
        if len(curve) > len(into.get(first_seed + i, [])):
            into[first_seed + i] = curve


def load_runs(runs: Path) -> Runs:
    """Read every JSON file in ``runs`` once (files without ``curves`` are skipped) and pool them (:class:`Runs`)."""
    curves: dict[Key, dict[int, list[float]]] = {}
    guides: dict[Key, dict[int, list[float]]] = {}
    zero: dict[tuple[str, str, int], list[tuple[float, float, int]]] = {}
    for path in sorted(runs.glob("*.json")):
        data = json.loads(path.read_text())
        if "curves" not in data:
            continue
        key, first = (data["strategy"], data["dataset"]), data.get("first_seed", 0)
        if "zero_cost_calls" in data:
            n, budget = len(data["curves"]), len(data["curves"][0])
            zero.setdefault((*key, budget), []).append((data["zero_cost_calls"], data["zero_cost_seconds"], n))
        _longest_per_seed(curves.setdefault(key, {}), first, data["curves"])
        if "guide_curves" in data:
            _longest_per_seed(guides.setdefault(key, {}), first, data["guide_curves"])
    per_search: dict[Key, dict[int, tuple[float, float]]] = {}
    for (name, dataset, budget), v in sorted(zero.items()):
        total = sum(n for *_, n in v)
        per_search.setdefault((name, dataset), {})[budget] = (sum(c * n for c, _, n in v) / total,
                                                             sum(s * n for _, s, n in v) / total)

    def by_seed(pooled: dict[Key, dict[int, list[float]]]) -> dict[Key, list[list[float]]]:
        return {key: [c for _, c in sorted(v.items())] for key, v in pooled.items()}

    return Runs(by_seed(curves), by_seed(guides), per_search)


def guide_ceiling(dataset: str) -> tuple[float, list[float]]:
    """The guide's maximum over the 15,625 cells and the 200-epoch test accuracies of the cells that reach it (what
    a search holding the guide's best cell reports; several when cells tie), distinct functions once each."""
    val_field, test_field = SIGNALS[dataset]
    records = load_nb201()
    top = max(getattr(r, val_field) for r in records)
    tests = {r.unique_str: getattr(r, test_field) for r in records if getattr(r, val_field) == top}
    return top, sorted(tests.values())


def guide_table(runs: Runs) -> str:
    """Per dataset: how many searches hold a cell at the guide's maximum after 25 / 50 / 100 / 300 queries, per
    strategy (of the seeds whose runs record guide curves), and what such a search reports."""
    guides = runs.guides
    lines: list[str] = []
    for dataset in DATASETS:
        names = runs.names(dataset, guides=True)
        if not names:
            continue
        top, tests = guide_ceiling(dataset)
        reports = " or ".join(f"{t:.2f}" for t in tests)
        tied = f" ({len(tests)} cells tied, mean {statistics.fmean(tests):.2f})" if len(tests) > 1 else ""
        lines += [f"**{dataset}**: searches holding a cell at the guide's maximum ({top:g}; such a search reports "
                  f"{reports}{tied}), of the seeds whose runs record the guide", "",
                  "| queries | " + " | ".join(LABELS.get(n, n) for n in names) + " |",
                  "|---:|" + "---:|" * len(names)]
        for q in MARKS:
            cells = []
            for name in names:
                held = [c[q - 1] >= top for c in guides[(name, dataset)] if len(c) >= q]
                cells.append(f"{sum(held)} / {len(held)}" if held else "—")
            lines.append(f"| {q} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _at(curves: list[list[float]], q: int) -> list[float]:
    return [c[q - 1] for c in curves if len(c) >= q]


def _mean_se(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0] if values else math.nan), math.nan
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _cell(values: list[float]) -> str:
    mean, se = _mean_se(values)
    if not values:
        return "—"
    spread = "" if math.isnan(se) else f" ± {se:.2f}"  # one seed: no standard error
    return f"{mean:.2f}{spread}" + ("" if len(values) >= 50 else f" [{len(values)}]")


def _margin(pooled: dict[Key, list[list[float]]], dataset: str, q: int, name: str = OURS) -> str:
    """``name`` (``OURS`` by default) minus the better Optuna sampler used directly at ``q`` queries, in points
    and in standard errors of the difference (independent seeds)."""
    if (name, dataset) not in pooled or not _at(pooled[(name, dataset)], q):
        return "—"
    ours = _mean_se(_at(pooled[(name, dataset)], q))
    peers = [(peer, _mean_se(_at(pooled[(peer, dataset)], q))) for peer in DIRECT
             if (peer, dataset) in pooled and len(_at(pooled[(peer, dataset)], q)) >= 2]  # a margin needs an s.e.
    if not peers:
        return "—"
    peer, (mean, se) = max(peers, key=lambda p: p[1][0])
    diff = ours[0] - mean
    short = "TPE" if "TPE" in peer else "GP"
    spread = math.hypot(ours[1], se)
    if spread == 0:  # every search of both at one value (at a ceiling)
        return f"{diff:+.2f} (every search of both at one value, vs {short})"
    return f"{diff:+.2f} ({diff / spread:+.1f} s.e., vs {short})"


def table(runs: Runs) -> str:
    """Per dataset: a row per query count, a column per strategy (mean ± s.e. over seeds), the margin of
    ``OURS`` (and of ``BLIND``, where run) over the better Optuna sampler used directly, and ``OURS``'s zero-cost
    work per search."""
    pooled, zero = runs.curves, runs.zero
    lines: list[str] = []
    for dataset in DATASETS:
        names = runs.names(dataset)
        if not names:
            continue
        heads = [LABELS.get(n, n) for n in names]
        ours = [n for n in (OURS, BLIND) if n in names]
        margins = [f"margin of {LABELS[n].removesuffix(' (ours)')} over the better Optuna column" for n in ours]
        lines += [f"**{dataset}** (guided by the {SIGNAL[dataset]} accuracy; 200-epoch test accuracy of the "
                  "best-by-validation cell, mean ± s.e. over seeds; [n]: seeds, where fewer than 50)", "",
                  "| queries | " + " | ".join(heads + margins) + " |",
                  "|---:|" + "---:|" * (len(names) + len(ours))]
        for q in MARKS:
            cells = [_cell(_at(pooled[(name, dataset)], q)) for name in names]
            cells += [_margin(pooled, dataset, q, name) for name in ours]
            lines.append(f"| {q} | " + " | ".join(cells) + " |")
        lines.append("")
        if (OURS, dataset) in zero:
            work = "; ".join(f"{calls:.0f} cells scored, {seconds:.2f} s in a search of {budget} queries"
                             for budget, (calls, seconds) in zero[(OURS, dataset)].items())
            lines += [f"Zero-cost work of {OURS} per search (not queries, but time; mean over its runs): {work}.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("run")
    p.add_argument("--strategies", default="gp_bo,evolution,random")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--options", type=json.loads, default=None,
                   help="strategy options as a JSON object, e.g. '{\"depth_weight\": 0.3}' (default: none)")
    p.add_argument("--tag", default="", help="a label for runs with --options: named '<strategy> <tag>' in tables")
    p.add_argument("--no-zero-cost", action="store_true",
                   help="withhold the table's zero-cost score, as on an evaluator without one (give a --tag)")
    t = sub.add_parser("table")
    t.add_argument("--runs", type=Path, required=True)
    t.add_argument("--write", action="store_true", help=f"replace the {SECTION} section of RESULTS.md")
    t.add_argument("--notes", type=Path, help="a Markdown file of notes to put under the tables")
    args = parser.parse_args(argv)
    if args.step == "run":
        run(args.strategies.split(","), args.datasets.split(","), args.seeds, args.queries, args.out, args.first_seed,
            args.options, args.tag, zero_cost=not args.no_zero_cost)
        return 0
    runs = load_runs(args.runs)
    body = table(runs)
    guides = guide_table(runs)
    if guides:
        body += "\n" + guides
    if args.notes:
        body += "\n" + args.notes.read_text()
    if not args.write:
        print(body)
        return 0
    section = "\n".join([
        "## Sample efficiency on NAS-Bench-201, three datasets, against Optuna used directly "
        "(`nb201_sample_efficiency.py`)", "", provenance(), "", body])
    publish(SECTION, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
