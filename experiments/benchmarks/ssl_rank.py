"""Do self-supervised pretext scores rank architectures as supervised training does (Liu et al., 2020)?

``run`` samples ``--cells`` distinct architectures of ``--space`` with ``numpy.random.default_rng(--seed)`` and, for
each, measures on ``--task`` (splits from the same seed):

* the supervised validation accuracy (the ``train`` evaluator, ``--epochs`` epochs): the reference ranking;
* the score of every pretext that fits the data (the ``ssl`` evaluator, same epochs, optimiser and batch size):
  ``rotation`` (images: rotation accuracy), ``contrastive`` (minus NT-Xent), ``masked`` (minus masked MSE);
* ``synflow`` at initialisation (a free proxy: the bar a pretext must clear to be worth its cost);

appending one JSON line per cell to ``--raw`` (so a run stopped by ``--minutes`` keeps what it measured). ``report``
reads one or more raw files and writes the Spearman and Kendall rank correlations of every signal with the
supervised accuracy, with 95% bootstrap intervals (cells resampled with replacement), and the seconds per cell.

``probe`` pretrains ``--reference`` (default ``lenet5``) with each ``--pretexts`` on the inputs of the ``--task``
train split (no labels), then freezes its body and trains a new head on ``--labels`` (10%) of the train split's
labels (``nas finetune --mode features``: :func:`nas.transfer.apply_mode`), against the same architecture trained
from scratch on those labels with the same settings; test accuracy on the whole test split, ``--seeds`` seeds.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/ssl_rank.py run --space nb201 --task mnist --cells 50 --raw R.jsonl
    .venv/bin/python experiments/benchmarks/ssl_rank.py report R.jsonl [R2.jsonl] [--probe P.json] [--no-write]
    .venv/bin/python experiments/benchmarks/ssl_rank.py probe --task mnist --out P.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _results import DEFAULT_RESULTS, bootstrap_interval, load_average, provenance, publish
from scipy import stats

from nas.evaluation.evaluators import ProxyEvaluator, TrainEvaluator
from nas.evaluation.metrics import get_metric
from nas.evaluation.scoring import score_split
from nas.evaluation.ssl import PRETEXTS, SslEvaluator, build_pretext, labeled_subset, train_pretext
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.graph import references
from nas.graph.compiler import build_model
from nas.transfer import HEAD, TransferSpec, apply_mode, copy_matching
from nas.trials.trial import Status, Trial
from search_spaces import get_space

SECTION = "ssl_rank"
SPACE_OPTIONS = {"nb201": {"C": 8, "N": 1}, "rnn": {"steps": 4, "num_layers": 1, "d_model": 16},
                 "transformer": {}}


def _cells(space: Any, n: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    seen: dict[str, Any] = {}
    for _ in range(50 * n):
        arch = space.sample(rng)
        seen.setdefault(arch.canonical_hash(), arch)
        if len(seen) == n:
            break
    return list(seen.values())


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    options = json.loads(args.space_options) if args.space_options else SPACE_OPTIONS.get(args.space, {})
    space = get_space(args.space, **options)
    task_options = {"limit": args.limit} if args.limit else {}
    task = load_task(args.task, seed=args.seed, **task_options)
    train = {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": "adam", "lr": args.lr,
             "weight_decay": 0.0, "threads": args.threads, "device": "cpu"}
    compiler = space.compiler()
    evaluators: dict[str, Any] = {
        "supervised": TrainEvaluator(compiler=compiler, task=args.task, task_options=task_options,
                                     train={**train, "epochs": args.reference_epochs or args.epochs},
                                     data_seed=args.seed, latency_runs=0),
        "synflow": ProxyEvaluator(compiler=compiler, proxy="synflow", task=args.task, task_options=task_options,
                                  data_seed=args.seed)}
    for name, cls in PRETEXTS.items():
        if task.kind in cls.kinds:
            evaluators[name] = SslEvaluator(compiler=compiler, task=args.task, task_options=task_options,
                                            pretext=name, train=train, data_seed=args.seed)
    raw = Path(args.raw)
    done = {json.loads(line)["hash"] for line in raw.read_text().splitlines()} if raw.exists() else set()
    start = time.perf_counter()
    header = {"space": args.space, "space_options": options, "task": task.describe(), "epochs": args.epochs,
              "reference_epochs": args.reference_epochs or args.epochs, "batch_size": args.batch_size,
              "lr": args.lr, "seed": args.seed, "load": load_average()}
    print(json.dumps(header), file=sys.stderr, flush=True)
    for i, arch in enumerate(_cells(space, args.cells, args.seed)):
        if arch.canonical_hash() in done:
            continue
        if args.minutes and time.perf_counter() - start > 60 * args.minutes:
            print(f"stopped by --minutes {args.minutes} after {i} cells", file=sys.stderr)
            break
        row: dict[str, Any] = {"hash": arch.canonical_hash(), "cell": i, **header}
        for name, evaluator in evaluators.items():
            t0 = time.perf_counter()
            result = evaluator.evaluate(Trial(arch=arch, id=i, seed=args.seed + i))
            row[name] = result.score if result.status is Status.COMPLETE else None
            row[f"{name}_seconds"] = time.perf_counter() - t0
            if result.status is not Status.COMPLETE:
                row[f"{name}_error"] = result.error
        with raw.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"cell {i}: " + "  ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}=FAILED"
                                       for k in evaluators), file=sys.stderr, flush=True)


def probe(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    arch = references.get(args.reference)
    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        task = load_task(args.task, seed=seed)
        keep = labeled_subset(task.y_train, args.labels, seed)
        few = dataclasses.replace(task, x_train=task.x_train[keep], y_train=task.y_train[keep])
        sup = TrainConfig(epochs=args.head_epochs, batch_size=32, optimizer="adam", lr=3e-3, weight_decay=0.0,
                          device="cpu", threads=args.threads)

        def test_acc(model: torch.nn.Module) -> float:
            return score_split(model, torch.as_tensor(task.x_test), torch.as_tensor(task.y_test), task,
                               get_metric("accuracy")).acc

        t0 = time.perf_counter()
        with seeded(seed):
            scratch = build_model(arch, task.input_shape, task.num_classes)
            report = train(scratch, few, sup, seed=seed)
        rows.append({"seed": seed, "method": "scratch", "val_acc": report.val_acc, "test_acc": test_acc(scratch),
                     "seconds": time.perf_counter() - t0})
        for pretext in args.pretexts:
            t0 = time.perf_counter()
            cls = PRETEXTS[pretext]
            with seeded(seed):
                net = build_model(arch, task.input_shape, cls.out_dim(task.input_shape, {}))
                module = build_pretext(pretext, net, task.input_shape, task.kind, {})
                run = train_pretext(module, torch.as_tensor(task.x_train), torch.as_tensor(task.x_val),
                                    TrainConfig(epochs=args.epochs, batch_size=128, optimizer="adam", lr=1e-3,
                                                weight_decay=0.0, device="cpu", threads=args.threads),
                                    seed=seed, data_seed=seed)
                model = build_model(arch, task.input_shape, task.num_classes)
                copied = copy_matching(model, net.state_dict(), exclude=(HEAD,))
                plan = apply_mode(model, TransferSpec(mode="features"), copied)
                report = train(model, few, sup, seed=seed, lr_groups=plan.lr_groups, keep_eval=plan.eval_modules)
            rows.append({"seed": seed, "method": f"{pretext} + probe", "val_acc": report.val_acc,
                         "test_acc": test_acc(model), "seconds": time.perf_counter() - t0,
                         "pretext": run.metrics})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    header = {"task": args.task, "reference": args.reference, "labels": args.labels, "epochs": args.epochs,
              "head_epochs": args.head_epochs, "labeled_train": len(keep), "load": load_average()}
    Path(args.out).write_text(json.dumps({"header": header, "rows": rows}, indent=1))


def _probe_lines(path: str) -> list[str]:
    data = json.loads(Path(path).read_text())
    h, rows = data["header"], data["rows"]
    lines = [f"### Pretraining on unlabeled {h['task']}, then a frozen-body probe on {h['labels']:.0%} of the labels",
             "",
             f"{h['reference']}: pretext pretraining {h['epochs']} epoch(s) on the train split's inputs (no labels); "
             f"then the body frozen and a new head trained {h['head_epochs']} epochs on {h['labeled_train']} labeled "
             "train samples (`nas finetune --mode features`; the head is the network's whole classifier, for "
             "lenet5 three linear layers, so this probe is an MLP on the frozen features rather than a single "
             "linear layer), against the same architecture trained from scratch "
             "on those samples with the same settings. Test accuracy on the whole test split, mean and range over "
             f"{len({r['seed'] for r in rows})} seed(s).", "",
             "| method | test accuracy % (mean [min, max]) | validation accuracy % | seconds |", "|---|---|---|---|"]
    for method in dict.fromkeys(r["method"] for r in rows):
        chosen = [r for r in rows if r["method"] == method]
        test = [r["test_acc"] for r in chosen]
        lines.append(f"| {method} | {np.mean(test):.1f} [{min(test):.1f}, {max(test):.1f}] | "
                     f"{np.mean([r['val_acc'] for r in chosen]):.1f} | {np.mean([r['seconds'] for r in chosen]):.0f} |")
    return [*lines, ""]


def report(args: argparse.Namespace) -> None:
    load_start = load_average()
    lines = ["## Self-supervised pretext scores against supervised accuracy (`ssl_rank`)", "",
             "Rank agreement between each signal and the supervised validation accuracy of the same cells "
             "(Spearman rho and Kendall tau, 95% bootstrap intervals over 2,000 resamples of the cells). Every "
             "pretext and the supervised reference train with the same optimiser (Adam), batch size and data "
             "(epochs below); synflow is measured at initialisation.", ""]
    rng = np.random.default_rng(0)
    for path in args.raw:
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        if not rows:
            continue
        head = rows[0]
        signals = [k for k in ("rotation", "contrastive", "masked", "synflow") if k in head]
        accuracy = [r["supervised"] for r in rows if r["supervised"] is not None]
        lines += [f"### {head['space']} {head['space_options']} on {head['task']}", "",
                  f"{len(rows)} cells, pretexts {head['epochs']} epoch(s), supervised reference "
                  f"{head['reference_epochs']} epoch(s), batch {head['batch_size']}, lr {head['lr']}; "
                  f"supervised validation accuracy: median {np.median(accuracy):.1f}%, range {min(accuracy):.1f}-"
                  f"{max(accuracy):.1f}%.", "",
                  "| signal | Spearman rho [95% CI] | Kendall tau [95% CI] | cells | seconds per cell |",
                  "|---|---|---|---|---|"]
        for signal in signals:
            ok = [r for r in rows if r.get(signal) is not None and r.get("supervised") is not None
                  and math.isfinite(r[signal])]
            x = np.array([r[signal] for r in ok])
            y = np.array([r["supervised"] for r in ok])
            rho, tau = stats.spearmanr(x, y)[0], stats.kendalltau(x, y)[0]
            rho_ci = bootstrap_interval(x, y, stats.spearmanr, rng)
            tau_ci = bootstrap_interval(x, y, stats.kendalltau, rng)
            seconds = float(np.median([r[f"{signal}_seconds"] for r in ok]))
            lines.append(f"| {signal} | {rho:.3f} [{rho_ci[0]:.3f}, {rho_ci[1]:.3f}] | {tau:.3f} "
                         f"[{tau_ci[0]:.3f}, {tau_ci[1]:.3f}] | {len(ok)} | {seconds:.1f} |")
        sup = float(np.median([r["supervised_seconds"] for r in rows]))
        lines += [f"| (supervised reference) | 1 | 1 | {len(rows)} | {sup:.1f} |", ""]
    if args.probe:
        lines += _probe_lines(args.probe)
    lines.append(provenance(load_start, threads=1, command_note=args.note))
    publish(SECTION, "\n".join(lines), write=not args.no_write, results=args.results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--space", default="nb201")
    r.add_argument("--space-options", default=None, help="JSON; default: small settings per space")
    r.add_argument("--task", default="mnist")
    r.add_argument("--limit", type=int, default=2000)
    r.add_argument("--cells", type=int, default=50)
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--reference-epochs", type=int, default=None, help="epochs of the supervised reference "
                   "(default: --epochs)")
    r.add_argument("--batch-size", type=int, default=64)
    r.add_argument("--lr", type=float, default=3e-3)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--minutes", type=float, default=None, help="stop starting new cells after this long")
    r.add_argument("--raw", required=True)
    p = sub.add_parser("report")
    p.add_argument("raw", nargs="+")
    p.add_argument("--probe", default=None, help="the JSON a `probe` run wrote")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--note", default="")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    q = sub.add_parser("probe")
    q.add_argument("--task", default="mnist")
    q.add_argument("--reference", default="lenet5")
    q.add_argument("--pretexts", nargs="+", default=["rotation", "contrastive"])
    q.add_argument("--labels", type=float, default=0.1)
    q.add_argument("--epochs", type=int, default=5)
    q.add_argument("--head-epochs", type=int, default=20)
    q.add_argument("--seeds", type=int, default=2)
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    {"run": run, "report": report, "probe": probe}[args.command](args)


if __name__ == "__main__":
    main()
