"""Does a label-free search find cells as good as a supervised search, or as random cells at equal cost?

``search`` runs one evolution search through the normal path (config -> :class:`~nas.runtime.experiment.Experiment`
-> SQLite store, local executor, 1 torch thread per trial) on the data of ``ssl_rank.py``'s ``nb201``/MNIST table
(``load_task("mnist", seed=0, limit=1500)``: train/val/test = 1060/220/220):

* ``--mode label_free``: ``evaluator: {name: ssl, options: {pretext: contrastive}}`` on an ``.npz`` holding the
  inputs ``x`` only (no ``y`` array: the search cannot see a label), laid out so that the unlabeled task's shuffled
  split with the search's seed puts exactly the reference's train, validation and test images in its train,
  validation and test splits (checked before the search starts);
* ``--mode supervised``: the ``train`` evaluator with the reference's settings (2 epochs, Adam, lr 0.003, batch 64)
  on an ``.npz`` of ``x`` and ``y`` laid out the same way for the stratified split.

Both searches evaluate ``--candidates`` cells with the same strategy settings and seed. The winner (rank 1) is then
trained supervised with exactly the reference settings of ``ssl_rank_data/nb201_mnist.jsonl`` (same task, split,
epochs, optimiser, batch, data seed; fresh initialisation seeds ``--retrain-seeds``), so its validation accuracy is
comparable with the 60 random cells there. One JSON line per search is appended to ``--raw``.

``report`` reads those lines and the 60 random cells and writes, per search: the winner's supervised validation and
test accuracy, its percentile among the random cells, the search's cost (wall time, epochs) and what random search
buys at the same cost (how many random cells, and the expected best of that many drawn from the 60).

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/ssl_search.py search --mode label_free --seed 0 --raw R.jsonl --work W
    .venv/bin/python experiments/benchmarks/ssl_search.py search --mode supervised --seed 0 --raw R.jsonl --work W
    .venv/bin/python experiments/benchmarks/ssl_search.py report R.jsonl [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import DEFAULT_RESULTS, load_average, provenance, publish
from ssl_rank import _cells

from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.tasks import Task, load_task, split_shuffled, split_stratified
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.trials.trial import Status, Trial
from search_spaces import get_space

SECTION = "ssl_search"
HERE = Path(__file__).resolve().parent
RANDOM_CELLS = HERE / "ssl_rank_data" / "nb201_mnist.jsonl"
DATA = HERE / "ssl_search_data"
#: the reference of ssl_rank's nb201/mnist table (its header): task, split seed, subset, space, supervised training
TASK, DATA_SEED, LIMIT = "mnist", 0, 1500
SPACE_OPTIONS = {"C": 8, "N": 1}
SUPERVISED = {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 0.003, "weight_decay": 0.0, "threads": 1,
              "device": "cpu"}
PRETEXT_EPOCHS = 1  # ssl_rank's contrastive column (Spearman 0.48 with the supervised accuracy)
#: 220 of 1500 samples: the shuffled split of the unlabeled file then has the reference's 1060/220/220 sizes
UNLABELED_FRACTION = 220 / 1500


def reference_task() -> Task:
    return load_task(TASK, seed=DATA_SEED, limit=LIMIT)


def _raw_images(task: Task) -> dict[str, np.ndarray]:
    """The reference's splits in original units (the task holds them standardised with the train statistics)."""
    mean = np.asarray(task.mean, dtype=np.float64).reshape(1, -1, 1, 1)
    std = np.asarray(task.std, dtype=np.float64).reshape(1, -1, 1, 1)
    return {split: getattr(task, f"x_{split}").astype(np.float64) * std + mean for split in ("train", "val", "test")}


def write_npz(path: Path, seed: int, labeled: bool) -> dict[str, Any]:
    """An ``.npz`` whose split with ``seed`` (shuffled without labels, stratified with) reproduces the reference's
    splits image for image; without ``labeled`` it has no ``y``. Returns the task options to load it."""
    task = reference_task()
    images = _raw_images(task)
    n = sum(len(v) for v in images.values())
    x = np.zeros((n, *task.input_shape), dtype=np.float32)
    if labeled:
        y_ref = {"train": task.y_train, "val": task.y_val, "test": task.y_test}
        y = np.concatenate(list(y_ref.values()))  # any order: the split only sees the class of each position
        parts = split_stratified(y, (0.7, 0.15, 0.15), seed)
        for split, idx in zip(("train", "val", "test"), parts):
            for cls in np.unique(y):
                x[idx[y[idx] == cls]] = images[split][y_ref[split] == cls]
        np.savez(path, x=x, y=y)
        options: dict[str, Any] = {"path": str(path)}
    else:
        f = UNLABELED_FRACTION
        for split, idx in zip(("train", "val", "test"), split_shuffled(n, (1 - 2 * f, f, f), seed)):
            x[idx] = images[split]
        np.savez(path, x=x)
        options = {"path": str(path), "val_fraction": f, "test_fraction": f}
    loaded = load_task("npz", seed=seed, labels="optional", **options)
    for split in ("train", "val", "test"):  # the same images (labeled: each class's, in its order) per split
        ours, ref = getattr(loaded, f"x_{split}"), getattr(task, f"x_{split}")
        if labeled:
            ours, ref = ours[np.argsort(getattr(loaded, f"y_{split}"), kind="stable")], \
                ref[np.argsort(getattr(task, f"y_{split}"), kind="stable")]
        if ours.shape != ref.shape or not np.allclose(ours, ref, atol=1e-4):
            raise RuntimeError(f"the {split} split of {path} does not reproduce the reference's")
    if not labeled and (loaded.labeled or loaded.num_classes != 0):
        raise RuntimeError(f"{path} loaded as labeled data")
    return options


def config(mode: str, seed: int, candidates: int, task_options: dict[str, Any]) -> dict[str, Any]:
    if mode == "label_free":
        evaluator = {"name": "ssl", "task": "npz", "task_options": task_options,
                     "train": {**SUPERVISED, "epochs": PRETEXT_EPOCHS}, "options": {"pretext": "contrastive"}}
    else:
        evaluator = {"name": "train", "task": "npz", "task_options": task_options, "train": SUPERVISED,
                     "options": {"latency_runs": 0}}
    return {"name": f"ssl_search_{mode}_{seed}", "seed": seed, "space": {"name": "nb201", "options": SPACE_OPTIONS},
            "strategy": {"name": "evolution", "options": {"population": 8, "sample_size": 3}},
            "evaluator": evaluator, "budget": {"max_trials": candidates},
            "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}


def retrain(arch: Any, seeds: Sequence[int]) -> list[dict[str, float]]:
    """``arch`` trained supervised exactly as ssl_rank's reference (its evaluator and settings), once per seed."""
    space = get_space("nb201", **SPACE_OPTIONS)
    evaluator = TrainEvaluator(compiler=space.compiler(), task=TASK, task_options={"limit": LIMIT},
                               train=SUPERVISED, data_seed=DATA_SEED, latency_runs=0)
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        result = evaluator.evaluate(Trial(arch=arch, id=seed, seed=seed))
        if result.status is not Status.COMPLETE:
            raise RuntimeError(f"retraining the winner failed: {result.error}")
        runs.append({"seed": seed, "val_acc": result.metrics["val_acc"], "test_acc": result.metrics["test_acc"],
                     "seconds": time.perf_counter() - t0})
    return runs


def search(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_start = load_average()
    options = write_npz(work / f"{args.mode}_{args.seed}.npz", args.seed, labeled=args.mode == "supervised")
    directory = work / f"{args.mode}_{args.seed}"
    exp = (Experiment.open(directory, max_trials=args.candidates) if (directory / "trials.db").exists()
           else Experiment.create(parse_config(config(args.mode, args.seed, args.candidates, options)), directory))
    try:
        ranked = exp.run()
        trials = exp.store.trials()
    finally:
        exp.close()
    done = [t for t in trials if t.finished is not None]
    winner = ranked[0]
    runs = retrain(winner.arch, args.retrain_seeds)
    row = {"mode": args.mode, "seed": args.seed, "candidates": len(trials), "completed": len(ranked),
           "winner_hash": winner.hash, "winner_trial": winner.id, "winner_search_score": winner.score,
           "winner_arch": winner.arch.to_dict(),
           "wall_seconds": max(t.finished for t in done) - min(t.submitted for t in done),  # type: ignore[type-var]  # finished is set on done trials
           "trial_seconds": float(sum(t.metrics.get("train_seconds", 0.0) for t in done)),
           "epochs": float(sum(t.metrics.get("epochs", 0.0) for t in done)),
           "retrain": runs, "val_acc": float(np.mean([r["val_acc"] for r in runs])),
           "test_acc": float(np.mean([r["test_acc"] for r in runs])),
           "retrain_seconds": float(np.mean([r["seconds"] for r in runs])),
           "load_start": load_start, "load_end": load_average(), "finished": time.strftime("%H:%M:%S", time.gmtime())}
    with open(args.raw, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "winner_arch"}), file=sys.stderr, flush=True)


def random_top(args: argparse.Namespace) -> None:
    """Retrain the ``--rank``-th best random cell (by its recorded validation accuracy) with the winners' seeds:
    what a random search's pick is worth once its lucky initialisation is gone, like a search winner's."""
    torch.set_num_threads(1)
    cells = [json.loads(line) for line in RANDOM_CELLS.read_text().splitlines() if line.strip()]
    order = sorted(cells, key=lambda c: -c["supervised"])
    chosen = order[args.rank - 1]
    archs = {a.canonical_hash(): a for a in _cells(get_space("nb201", **SPACE_OPTIONS), len(cells), DATA_SEED)}
    runs = retrain(archs[chosen["hash"]], args.retrain_seeds)
    row = {"rank": args.rank, "hash": chosen["hash"], "recorded_val_acc": chosen["supervised"], "retrain": runs,
           "val_acc": float(np.mean([r["val_acc"] for r in runs])), "load_end": load_average()}
    with open(args.raw, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr, flush=True)


def percentile(value: float, population: Sequence[float]) -> float:
    """The share (%) of ``population`` below ``value``, ties counted half."""
    pop = np.asarray(population)
    return float(100 * (np.sum(pop < value) + 0.5 * np.sum(pop == value)) / len(pop))


def best_of(k: int, population: Sequence[float], rng: np.random.Generator, draws: int = 10000) -> np.ndarray:
    """The best of ``k`` cells drawn without replacement from ``population``, ``draws`` times."""
    pop = np.asarray(population)
    k = max(1, min(k, len(pop)))
    return np.array([pop[rng.choice(len(pop), k, replace=False)].max() for _ in range(draws)])


def report(args: argparse.Namespace) -> None:
    load_start = load_average()
    cells = [json.loads(line) for line in RANDOM_CELLS.read_text().splitlines() if line.strip()]
    acc = [c["supervised"] for c in cells if c.get("supervised") is not None]
    by_hash = {c["hash"]: c["supervised"] for c in cells}
    rows = [json.loads(line) for path in args.raw for line in Path(path).read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: (r["seed"], r["mode"] != "label_free"))
    sup = {r["seed"]: r for r in rows if r["mode"] == "supervised"}
    rng = np.random.default_rng(0)
    n = rows[0]["candidates"] if rows else 0
    lines = ["## Label-free search against supervised search and random cells (`ssl_search`)", "",
             f"Evolution (population 8, tournament 3) over `nb201` C=8 cells, {n} candidates per search, on the "
             f"MNIST subset of the `ssl_rank` nb201 table (train/val/test = 1060/220/220, split seed 0). Label-free: "
             f"the `ssl` evaluator, pretext `contrastive`, {PRETEXT_EPOCHS} epoch per candidate, on an `.npz` without "
             "`y` laid out so the search's split holds exactly the reference's train and validation images; "
             "supervised: the `train` evaluator, 2 epochs, on the labeled `.npz` laid out the same way. Both Adam "
             "lr 0.003, batch 64, 1 torch thread, the local executor, the SQLite store. Each winner was then trained "
             f"supervised with the reference settings (2 epochs, same split and data seed) with "
             f"{len(rows[0]['retrain']) if rows else 0} fresh initialisation seed(s) (mean below), comparable with "
             f"the {len(acc)} random cells of `ssl_rank_data/nb201_mnist.jsonl` (validation accuracy median "
             f"{np.median(acc):.1f}%, best {max(acc):.1f}%). Percentile: share of those random cells whose validation "
             "accuracy is below the winner's. Equal cost: the random cells (2 supervised epochs each) that the "
             "same wall time buys, one cell costing one trial of the supervised search that ran at the same time, "
             "or the same number of training epochs; a label-free search is charged one more cell for training "
             "its winner supervised; the expected best of that many cells drawn from the 60 without replacement "
             "(10,000 draws), and how often the winner beats it.", "",
             "| seed | search | winner val % | winner test % | percentile among random cells | search wall s "
             "| epochs | random cells at equal wall time | their expected best val % | P(winner > best of them) "
             "| random cells at equal epochs | their expected best val % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = sup.get(r["seed"])
        # one random cell costs one trial of the supervised search that ran at the same time (same machine load);
        # the label-free search's cost includes training its winner supervised once (a random cell comes trained)
        per_cell = ref["wall_seconds"] / ref["candidates"] if ref else float("nan")
        extra = 1 if r["mode"] == "label_free" else 0
        k = int(r["wall_seconds"] // per_cell) + extra if ref else r["candidates"]
        k_epochs = int(r["epochs"] // SUPERVISED["epochs"]) + extra
        best, best_epochs = best_of(k, acc, rng), best_of(k_epochs, acc, rng)
        lines.append(f"| {r['seed']} | {r['mode'].replace('_', '-')} | {r['val_acc']:.1f} | {r['test_acc']:.1f} | "
                     f"{percentile(r['val_acc'], acc):.0f} | {r['wall_seconds']:.0f} | {r['epochs']:.0f} | {k} | "
                     f"{best.mean():.1f} | {np.mean(r['val_acc'] > best):.2f} | {k_epochs} | "
                     f"{best_epochs.mean():.1f} |")
    lines.append("")
    for mode in ("label_free", "supervised"):
        chosen = [r for r in rows if r["mode"] == mode]
        if chosen:
            lines.append(f"- {mode.replace('_', '-')}: winner val {np.mean([r['val_acc'] for r in chosen]):.1f}% "
                         f"(test {np.mean([r['test_acc'] for r in chosen]):.1f}%) over {len(chosen)} seed(s); the "
                         "winners' search scores: " + ", ".join(f"{r['winner_search_score']:.3g}" for r in chosen)
                         + "; winner among the random cells: "
                         + ", ".join(f"{by_hash[r['winner_hash']]:.1f}%" if r["winner_hash"] in by_hash else "no"
                                     for r in chosen))
    if args.random_top:
        lines += ["", *_random_top_lines(args.random_top, cells, rng, sorted({r["candidates"] for r in rows}))]
    note = Path(args.note).read_text().strip() if args.note and Path(args.note).exists() else ""
    lines += ["", provenance(load_start, threads=1, command_note=f" {note}" if note else "")]
    if args.reading and Path(args.reading).exists():
        lines += ["", f"**Reading.** {Path(args.reading).read_text().strip()}"]
    publish(SECTION, "\n".join(lines), write=not args.no_write, results=args.results)


def _random_top_lines(path: str, cells: list[dict[str, Any]], rng: np.random.Generator, ks: list[int]
                      ) -> list[str]:
    """The best recorded random cells retrained with fresh seeds, and what a random search of ``k`` cells picks
    once retrained (over the draws whose pick is one of the retrained cells)."""
    top = sorted((json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()),
                 key=lambda r: r["rank"])
    retrained = {r["hash"]: r["val_acc"] for r in top}
    seeds = len(top[0]["retrain"]) if top else 0
    lines = ["The best random cells by their recorded (one-seed) validation accuracy, retrained like the winners "
             f"(their first {seeds} seed(s)): what a random search's pick is worth without its lucky initialisation.",
             "",
             "| rank among the 60 | recorded val % | retrained val % (mean) | retrained runs |", "|---|---|---|---|"]
    lines += [f"| {r['rank']} | {r['recorded_val_acc']:.1f} | {r['val_acc']:.1f} | "
              + ", ".join(f"{x['val_acc']:.1f}" for x in r["retrain"]) + " |" for r in top]
    lines.append("")
    acc = np.array([c["supervised"] for c in cells])
    hashes = [c["hash"] for c in cells]
    for k in [*ks, 13]:
        picks = [hashes[int(idx[np.argmax(acc[idx])])] for idx in
                 (rng.choice(len(cells), k, replace=False) for _ in range(10000))]
        covered = [retrained[h] for h in picks if h in retrained]
        reported = np.mean([acc[hashes.index(h)] for h in picks if h in retrained]) if covered else 0.0
        if covered:
            lines.append(f"- a random search of {k} cells picks one of these {len(top)} in "
                         f"{len(covered) / len(picks):.0%} of 10,000 draws; its pick then retrains to "
                         f"{np.mean(covered):.1f}% on average (it reported {reported:.1f}%).")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search")
    s.add_argument("--mode", choices=["label_free", "supervised"], required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--candidates", type=int, default=24)
    s.add_argument("--retrain-seeds", type=int, nargs="+", default=[1000, 1001])
    s.add_argument("--work", required=True, help="folder for the .npz files and the experiments (resumed if there)")
    s.add_argument("--raw", required=True)
    t = sub.add_parser("random-top")
    t.add_argument("--rank", type=int, default=1, help="1: the random cell with the best recorded accuracy")
    t.add_argument("--retrain-seeds", type=int, nargs="+", default=[1000, 1001])
    t.add_argument("--raw", required=True)
    r = sub.add_parser("report")
    r.add_argument("raw", nargs="+")
    r.add_argument("--random-top", default=None, help="the JSON lines `random-top` runs wrote")
    r.add_argument("--no-write", action="store_true")
    r.add_argument("--note", default=str(DATA / "note.md"), help="a text file said after the command (how the "
                   "rows were measured)")
    r.add_argument("--reading", default=str(DATA / "reading.md"), help="a text file with the reading paragraph")
    r.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    {"search": search, "random-top": random_top, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
