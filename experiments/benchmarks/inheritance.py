"""Weight inheritance in evolution: the same regularized evolution (same seed, same first population) with and
without ``evaluator.inherit``, on a real task with real training, for several inheritance settings.

Per seed it runs the search without inheritance (every candidate trained ``--epochs`` from scratch), the same search
training every candidate ``--short-epochs`` from scratch (the cheap baseline inheritance must beat), and one search per
``--variant EPOCHS:LR_SCALE:SCHEDULE[:TRIALS]`` (``evaluator.inherit: {epochs, lr_scale, schedule}``; TRIALS: a
budget of its own, e.g. to spend as many epochs as the reference); ``--variant scratch:growth`` is the control: the
reference's from-scratch training with evolution's ``mutation: {prefer: growth}``. It reports the best
validation accuracy found and the test accuracy of that trial against the cumulative training epochs of the search
(a curve, averaged over seeds), and after what share of the plain search's epochs each setting reached the plain
search's final best validation accuracy (and after how many wall seconds), the share of each inheriting child's
tensors copied from its parent, and the training epochs the best trial's weights carry through its lineage. Runs go
to ``--jobs`` processes. Writes the section ``inheritance`` of RESULTS.md and the figure ``inheritance.png`` (best
validation accuracy against cumulative epochs) beside this script; ``--save`` keeps the raw runs (written after each
search, so finished searches survive an interruption) and ``--load`` reports them again without running.

    .venv/bin/python experiments/benchmarks/inheritance.py [--seeds 0 1 2] [--trials 20] [--epochs 4]
        [--short-epochs 2] [--variant 1:1:cosine 1:0.2:constant 2:0.3:cosine] [--task digits] [--limit 0]
        [--space nb201] [--space-options '{"C": 8, "N": 1}'] [--population 6] [--lr 0.05] [--batch-size 64]
        [--jobs 3] [--save runs.json | --load runs.json]

The underfit case (training longer keeps paying): ``--task mnist --limit 1200 --population 4 --trials 16``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.core.io import atomic_write_text
from nas.evaluation.tasks import load_task
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def run(seed: int, args: argparse.Namespace, setting: dict[str, Any]) -> dict[str, Any]:
    """One search with ``setting`` (``epochs``; ``inherit``: the ``evaluator.inherit`` mapping or None); returns
    its trials' (epochs, val, test, copied) in completion order (id order: local executor)."""
    torch.set_num_threads(1)
    evaluator: dict[str, Any] = {
        "name": "train", "task": args.task, "task_options": task_options(args),
        "train": {"epochs": setting["epochs"], "batch_size": args.batch_size, "lr": args.lr, "optimizer": "sgd",
                  "schedule": "cosine"},
        "options": {"latency_runs": 0}}
    if setting["inherit"] is not None:
        # measure_start: each child's validation accuracy before training, for the "child at epoch 0" column
        evaluator["inherit"] = {**setting["inherit"], "keep": args.population, "measure_start": True}
    data = {"name": "inheritance", "seed": seed, "space": {"name": args.space, "options": space_options(args)},
            "strategy": {"name": "evolution", "options": {"population": args.population, "sample_size": 3,
                                                           **({"mutation": {"prefer": "growth"}}
                                                              if setting.get("growth") else {})}},
            "evaluator": evaluator, "budget": {"max_trials": setting.get("trials", args.trials)},
            "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment.create(parse_config(data), Path(tmp) / "exp")
        start, clock = time.perf_counter(), time.time()
        try:
            exp.run()
            seconds = time.perf_counter() - start
            trials = [t for t in exp.store.trials() if t.status == "COMPLETE"]
        finally:
            exp.close()
    rows = [{"id": t.id, "epochs": t.metrics["epochs"], "val": t.metrics["val_acc"], "test": t.metrics["test_acc"],
             "copied": t.metrics.get("tensors_copied", 0.0), "fresh": t.metrics.get("tensors_fresh", 0.0),
             "parent": t.parent, "start": t.metrics.get("start_val_acc"), "wall": (t.finished or clock) - clock}
            for t in trials]
    print(f"seed {seed} {setting['label']}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return {"seconds": seconds, "rows": rows}


def task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The task's options: ``--limit`` and the split's ``--val-fraction`` / ``--test-fraction`` where given."""
    out: dict[str, Any] = {"limit": args.limit} if args.limit else {}
    if args.val_fraction:
        out["val_fraction"] = args.val_fraction
    if args.test_fraction:
        out["test_fraction"] = args.test_fraction
    return out


def space_options(args: argparse.Namespace) -> dict[str, Any]:
    """The space's options: ``--space-options`` (JSON), by default nb201's C=8, N=1."""
    if args.space_options:
        return dict(json.loads(args.space_options))
    return {"C": 8, "N": 1} if args.space == "nb201" else {}


def curve(rows: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(cumulative epochs, best validation so far, test accuracy of that trial) after each trial."""
    out, total, best = [], 0.0, None
    for r in rows:
        total += r["epochs"]
        if best is None or r["val"] > best["val"]:
            best = r
        out.append((total, best["val"], best["test"]))
    return out


def at(points: list[tuple[float, float, float]], epochs: float) -> tuple[float, float]:
    """Best validation and its test accuracy once ``epochs`` epochs were spent (the last trial within them)."""
    within = [p for p in points if p[0] <= epochs]
    return (within[-1][1], within[-1][2]) if within else (float("nan"), float("nan"))


def settings(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The plain search, the short from-scratch one, then one per ``--variant``."""
    out: list[dict[str, Any]] = [{"label": f"scratch, {args.epochs} epochs", "epochs": args.epochs, "inherit": None}]
    if args.short_epochs:
        out.append({"label": f"scratch, {args.short_epochs} epochs", "epochs": args.short_epochs, "inherit": None})
    for text in args.variant:
        if text.split(":")[0] == "scratch":  # the reference's training with the variant's mutations: the control
            growth = "growth" in text.split(":")[1:]
            out.append({"label": f"scratch, {args.epochs} epochs" + (", growth mutations" if growth else ""),
                        "epochs": args.epochs, "inherit": None, "growth": growth})
            continue
        epochs, scale, schedule, *trials = text.split(":")
        zero, morph, growth = "zero" in trials, "morph" in trials, "growth" in trials
        trials = [t for t in trials if t not in ("zero", "morph", "growth")]
        setting = {"label": f"inherit {epochs} ep, lr x{float(scale):g}, {schedule}" + (", new ops at 0" if zero
                                                                                           else "")
                   + (", morphisms" if morph else "") + (", growth mutations" if growth else ""),
                   "epochs": args.epochs, "growth": growth,
                   "inherit": {"epochs": int(epochs), "lr_scale": float(scale), "schedule": schedule,
                               **({"zero_new_ops": True} if zero else {}), "morph": morph}}
        if trials:
            setting.update(trials=int(trials[0]), label=f"{setting['label']}, {trials[0]} trials")
        out.append(setting)
    return out


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.mean(values) if values else float("nan")


def _se(values: list[float]) -> float:
    """The standard error of the mean of ``values`` (nan for fewer than two)."""
    values = [v for v in values if not math.isnan(v)]
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")


def _pm(values: list[float]) -> str:
    """``mean +/- s.e.`` of ``values``."""
    return f"{_mean(values):.2f} +/- {_se(values):.2f}"


def goal_table(runs: dict[tuple[int, int], dict[str, Any]], todo: list[dict[str, Any]], seeds: list[int],
               half: float = 0.5) -> str:
    """The goal, per seed and on average: each setting's best validation / its test accuracy once ``half`` of the
    reference's epochs were spent beside the reference's final best (paired by seed: the same first population),
    the paired differences (mean +/- s.e. over seeds) and on how many seeds each setting at ``half`` reached the
    reference's final best validation accuracy; against the control (``scratch:growth``) too where it ran."""
    seeds = [s for s in seeds if all((s, k) in runs for k in range(len(todo)))]  # whole seeds only
    if not seeds:
        return ""
    points = {(s, k): curve(runs[(s, k)]["rows"]) for s in seeds for k in range(len(todo))}
    final = {s: points[(s, 0)][-1][1:] for s in seeds}
    mid = {(s, k): at(points[(s, k)], half * points[(s, 0)][-1][0]) for s in seeds for k in range(len(todo))}
    control = next((k for k, t in enumerate(todo) if t["inherit"] is None and t.get("growth")), None)
    pct = f"{100 * half:.0f}%"
    names = " | ".join(f"{t['label']}: at {pct}" for t in todo)
    head = (f"| seed | reference: final | {names} |\n"
            f"|---:|---:|{'---:|' * len(todo)}")
    rows = [f"| {s} | {final[s][0]:.2f} / {final[s][1]:.2f} | "
            + " | ".join(f"{mid[(s, k)][0]:.2f} / {mid[(s, k)][1]:.2f}" for k in range(len(todo))) + " |"
            for s in seeds]
    rows.append(f"| mean +/- s.e. | {_pm([final[s][0] for s in seeds])} / {_pm([final[s][1] for s in seeds])} | "
                + " | ".join(f"{_pm([mid[(s, k)][0] for s in seeds])} / {_pm([mid[(s, k)][1] for s in seeds])}"
                             for k in range(len(todo))) + " |")
    diffs = ["| setting at " + pct + " of the reference's epochs | minus the reference's final: val | test | "
             "seeds where val >= the reference's final | minus the control at the same epochs: val | test |",
             "|---|---:|---:|---:|---:|---:|"]
    for k, setting in enumerate(todo):
        if k == 0:
            continue
        val = [mid[(s, k)][0] - final[s][0] for s in seeds]
        test = [mid[(s, k)][1] - final[s][1] for s in seeds]
        met = sum(v >= 0 for v in val)
        if control is not None and k != control:
            versus = (f"{_pm([mid[(s, k)][0] - mid[(s, control)][0] for s in seeds])} | "
                      f"{_pm([mid[(s, k)][1] - mid[(s, control)][1] for s in seeds])}")
        else:
            versus = "- | -"
        diffs.append(f"| {setting['label']} | {_pm(val)} | {_pm(test)} | {met} of {len(seeds)} | {versus} |")
    return "\n".join([head, *rows, "", *diffs])


def lineage_epochs(rows: list[dict[str, Any]], row: dict[str, Any]) -> float:
    """The training epochs ``row``'s weights carry: its own plus, while it inherited, its parent's lineage's."""
    by_id = {r["id"]: r for r in rows}
    total = row["epochs"]
    while row["copied"] > 0 and row["parent"] in by_id:
        row = by_id[row["parent"]]
        total += row["epochs"]
    return total


def plot(runs: dict[tuple[int, int], dict[str, Any]], todo: list[dict[str, Any]], seeds: list[int],
         path: Path, title: str) -> None:
    """Best validation accuracy so far against cumulative training epochs, one line per setting and seed (thin)
    and the mean over seeds at each trial (thick)."""
    import matplotlib  # only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=90)
    for k, setting in enumerate(todo):
        color = f"C{k}"
        curves = [curve(runs[(s, k)]["rows"]) for s in seeds if (s, k) in runs]
        if not curves:
            continue
        for c in curves:
            ax.plot([p[0] for p in c], [p[1] for p in c], color=color, alpha=0.25, lw=0.8)
        n = min(len(c) for c in curves)
        ax.plot([statistics.mean(c[i][0] for c in curves) for i in range(n)],
                [statistics.mean(c[i][1] for c in curves) for i in range(n)], color=color, lw=2,
                label=setting["label"])
    for s in seeds:
        ax.axhline(curve(runs[(s, 0)]["rows"])[-1][1], color="C0", ls=":", lw=0.6)
    ax.set_xlabel("cumulative training epochs of the search")
    ax.set_ylabel("best validation accuracy so far (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--short-epochs", type=int, default=2, help="0: no short from-scratch baseline")
    parser.add_argument("--variant", nargs="+", default=["1:1:cosine", "1:0.2:constant", "2:0.3:cosine"],
                        help="EPOCHS:LR_SCALE:SCHEDULE[:TRIALS][:zero][:morph][:growth] of evaluator.inherit, one "
                             "search each (TRIALS: its own budget, default --trials; zero: zero_new_ops; morph: "
                             "morph; growth: the strategy's mutation: {prefer: growth}); scratch:growth: no "
                             "inheritance, --epochs from scratch, growth mutations (the control)")
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--task", default="digits")
    parser.add_argument("--limit", type=int, default=0, help="samples of the task (0: all)")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="the task's validation share (0: the task's default, 15%%)")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="the task's test share (0: the task's default, 15%%)")
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--space-options", default="", help="JSON mapping (default for nb201: C=8, N=1)")
    parser.add_argument("--lr", type=float, default=0.05, help="train.lr (SGD, cosine)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=3, help="searches run at once (processes)")
    parser.add_argument("--save", type=Path, help="also write the raw runs to this JSON file")
    parser.add_argument("--load", type=Path, nargs="+",
                        help="report the runs of --save files (merged; a run belongs to the setting of its label) "
                             "instead of running")
    parser.add_argument("--only", type=int, nargs="+",
                        help="run only these settings (0: the reference, then the short one, then the variants)")
    parser.add_argument("--plot", type=Path, default=Path(__file__).resolve().parent / "inheritance.png",
                        help="the best-validation-against-epochs figure (written unless --no-write)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    todo = settings(args)
    if args.load:
        files = [json.loads(path.read_text()) for path in args.load]
        saved = files[0]
        load, date, version = saved["load"], saved["date"], saved["version"]
        index = {setting["label"]: k for k, setting in enumerate(todo)}  # runs match settings by their label
        runs = {(int(r["seed"]), index[r["label"]]): r["run"] for f in files for r in f["runs"]
                if r["label"] in index}
        original = "; ".join(" ".join([Path(f["command"][0]).name, *f["command"][1:]]) for f in files)
        note = f" (the figures of the saved runs of `{original}`)"
    else:
        load, date, version = load_average(), utc_date(), code_version()
        keys = [(seed, k) for seed in args.seeds for k in range(len(todo)) if args.only is None or k in args.only]
        # seed by seed (so an interrupted run leaves whole seeds), the most epochs first within a seed
        cost = {k: todo[k]["epochs"] * todo[k].get("trials", args.trials) for k in range(len(todo))}
        order = sorted(keys, key=lambda key: (args.seeds.index(key[0]), -cost[key[1]]))
        done: dict[tuple[int, int], dict[str, Any]] = {}
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run, key[0], args, todo[key[1]]): key for key in order}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                if args.save:  # after each search, so that finished searches survive an interrupted run
                    atomic_write_text(args.save, json.dumps({
                        "load": load, "date": date, "version": version, "command": sys.argv,
                        "runs": [{"seed": s, "label": todo[k]["label"], "run": r} for (s, k), r in done.items()]}))
        runs = {key: done[key] for key in keys}
        note = ""
        if args.only is not None:
            return
    plain_total = {seed: curve(runs[(seed, 0)]["rows"])[-1][0] for seed in args.seeds}
    fractions = (0.25, 0.5, 0.75, 1.0)
    lines, seed_lines = [], []
    for k, setting in enumerate(todo):
        seeds = [s for s in args.seeds if (s, k) in runs]  # all of them, unless a search was cut short
        if not seeds:
            continue
        label = setting["label"] + ("" if len(seeds) == len(args.seeds) else
                                    f" (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))} only)")
        points = {seed: curve(runs[(seed, k)]["rows"]) for seed in seeds}
        cells = []
        for f in fractions:
            vals = [at(points[s], f * plain_total[s]) for s in seeds]
            cells.append(f"{_mean([v[0] for v in vals]):.2f} / {_mean([v[1] for v in vals]):.2f}")
        share = _mean([points[s][-1][0] / plain_total[s] for s in seeds])
        reach = []
        for s in seeds:
            target = curve(runs[(s, 0)]["rows"])[-1][1]
            rows = runs[(s, k)]["rows"]
            hit = next((i for i, p in enumerate(points[s]) if p[1] >= target), None)
            reach.append("-" if hit is None else
                         f"{100 * points[s][hit][0] / plain_total[s]:.0f}% ({rows[hit]['wall']:.0f} s)")
        by_id = {(s, r["id"]): r for s in seeds for r in runs[(s, k)]["rows"]}
        children = [r for s in seeds for r in runs[(s, k)]["rows"] if r["copied"] > 0]
        inheriting = len(children) / len(seeds)
        copied = _mean([100 * r["copied"] / (r["copied"] + r["fresh"]) for r in children])
        gains = [r["val"] - by_id[(s, r["parent"])]["val"] for s in seeds for r in runs[(s, k)]["rows"]
                 if r["copied"] > 0 and (s, r["parent"]) in by_id]
        better = f"{100 * sum(g > 0 for g in gains) / len(gains):.0f}% ({_mean(gains):+.1f})" if gains else "-"
        # the child right after inheritance, before training ("epoch 0"), its parent's score, the child's after training
        started = [(r["start"], by_id[(s, r["parent"])]["val"], r["val"]) for s in seeds for r in runs[(s, k)]["rows"]
                   if r["copied"] > 0 and r.get("start") is not None and (s, r["parent"]) in by_id]
        epoch0 = (f"{_mean([a for a, _, _ in started]):.1f} ({_mean([b for _, b, _ in started]):.1f}; "
                  f"{_mean([c for _, _, c in started]):.1f})" if started else "-")
        wall = _mean([runs[(s, k)]["seconds"] for s in seeds])
        lines.append(f"| {label} | {' | '.join(cells)} | {100 * share:.0f}% | {'; '.join(reach)} | "
                     f"{inheriting:.1f} | {'-' if math.isnan(copied) else f'{copied:.0f}%'} | {better} | {epoch0} | "
                     f"{wall:.0f} |")
        for s in seeds:
            rows = runs[(s, k)]["rows"]
            end = points[s][-1]
            best = max(rows, key=lambda r: r["val"])
            seed_lines.append(f"| {s} | {setting['label']} | {end[0]:.0f} | {end[1]:.2f} / {end[2]:.2f} | "
                              f"{lineage_epochs(rows, best):.0f} |")
    pct = " | ".join(f"{int(100 * f)}% of the epochs" for f in fractions)
    variants = ", ".join(f"`{t}`" for t in args.variant if not t.startswith("scratch"))
    short = (f"every candidate trained from scratch for {args.short_epochs} epochs (the cheap baseline), "
             if args.short_epochs else "")
    control = (f"every candidate trained from scratch for {args.epochs} epochs with evolution's `mutation: {{prefer: "
               "growth}` (the control: the growth bias without inheritance), " if any(
                   t.startswith("scratch") for t in args.variant) else "")
    data = f"`{args.task}` ({f'{args.limit:,} samples, stratified' if args.limit else 'all of it'})"
    options = ", ".join(f"{k}={v}" for k, v in space_options(args).items())
    val_share, test_share = args.val_fraction or 0.15, args.test_fraction or 0.15
    split = f"{100 * (1 - val_share - test_share):.0f}/{100 * val_share:.0f}/{100 * test_share:.0f}"
    if args.limit:  # the split's sizes, as the task draws them
        sizes = load_task(args.task, seed=args.seeds[0], **task_options(args))
        split += f" ({len(sizes.x_train):,} / {len(sizes.x_val):,} / {len(sizes.x_test):,} samples)"
    body = f"""## Weight inheritance in evolution (`inheritance.py`)

**What was measured.** Regularized evolution (population {args.population}, tournament 3, de-duplication on) of
{args.trials} `{args.space}` candidates ({options}) on {data}, split {split}, local executor, seeds
{", ".join(map(str, args.seeds))}. Every search of a seed starts from the same first population (same seed). Settings:
every candidate trained from scratch for {args.epochs} epochs (SGD lr {args.lr:g} cosine, batch {args.batch_size}: the
reference), {short}{control}and
`evaluator.inherit` as `epochs:lr_scale:schedule` = {variants}: a mutated child starts from its parent's trained
weights (all unchanged ops, batch-norm statistics included; the optimizer state is not inherited) and trains that many
epochs at `lr_scale` x {args.lr:g} with that schedule; its parent's weights already carry the training of the whole
lineage. "Epochs" are the training epochs summed over the search's trials (a parent's epochs counted once, in its own
trial). The curve gives, averaged over seeds, the best validation accuracy found (%) / the test accuracy of that trial
once 25/50/75/100% of the epochs the reference search spent were spent. "Reached at" is, per seed, the share of the
reference's epochs (and the search's wall seconds) after which the setting's best validation accuracy first equalled
or passed the reference's final best. "Copied" is the share of a child's tensors (parameters and buffers) taken from
its parent, over the children that inherited; "above parent": the share of those children whose validation accuracy
passed their parent's (and the mean change, in points). Real training throughout; settings are compared on
validation accuracy, the test accuracy is reported, never used to choose.

{provenance(load, threads=1, date=date, version=version, command_note=note)}
Searches ran {args.jobs} at a time, one torch thread each.

**Figures (mean over seeds).**

| setting | {pct} | epochs spent | reference's final best val reached at | children inheriting | copied | \
above parent | child at epoch 0 (parent; child after training) | wall (s) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(lines)}

Per seed, at the end of each search ("lineage epochs": the training epochs the best trial's weights carry, its own
plus its inherited lineage's):

| seed | setting | epochs | best val / its test | lineage epochs |
|---:|---|---:|---:|---:|
{chr(10).join(seed_lines)}

**The goal, per seed and on average.** Best validation / its test accuracy (%) once half the reference's epochs
were spent, beside the reference's final best (the goal: reach it at half the epochs or less), then the paired
differences over seeds (mean +/- standard error; a seed's searches share their first population):

{goal_table(runs, todo, args.seeds)}

![best validation accuracy against cumulative training epochs](inheritance.png)
"""
    publish("inheritance", body, write=not args.no_write)
    if not args.no_write:
        plot(runs, todo, args.seeds, args.plot, f"{args.space} on {args.task}: best val vs training epochs")


if __name__ == "__main__":
    main()
