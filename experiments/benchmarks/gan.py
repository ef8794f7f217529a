"""GAN search benchmark: the FID floor, the DCGAN and WGAN-GP references and an evolution search in the ``gan``
space, every run through the normal path (a config, :class:`~nas.runtime.experiment.Experiment`, the runner and its
SQLite store; the local executor), all at one per-candidate budget on a task (default ``mnist``, 28x28).

Budget: ``--steps`` discriminator steps per candidate. The non-saturating (DCGAN) loss takes one discriminator step
per generator step, so a candidate and the DCGAN reference train ``--steps`` generator steps; WGAN-GP takes 5 critic
steps per generator step, so it trains ``--steps / 5`` generator steps: every run sees the same number of real
batches in its discriminator (equal discriminator steps, not equal wall time: a WGAN-GP critic step with its gradient
penalty costs several non-saturating ones).

FIDs are Fréchet distances in the features of a classifier trained on the task once (cached), NOT Inception FIDs:
Inception weights cannot be downloaded offline. Lower is better; they compare only with each other.

    python experiments/benchmarks/gan.py --steps 100 --channels 16 --disc-width 32 --candidates 24 --out runs/gan_bench
    # the RESULTS.md run: references and search in two processes at once, the search on 2 Ray workers
    A="--steps 500 --channels 16 --disc-width 32 --candidates 24 --out runs/gan_bench500"
    python experiments/benchmarks/gan.py $A --part references &
    python experiments/benchmarks/gan.py $A --part search --workers 2

prints one line per run and a summary (search cost, best architecture), and writes the best generator's sample
grid to ``--grid`` (``experiments/benchmarks/gan_best_samples.png``) and the references' grids side by side (DCGAN
left, WGAN-GP right, the same fixed latent vectors) to ``--reference-grid``
(``experiments/benchmarks/gan_reference_samples.png``). ``--workers 2`` runs the search's candidates two at a time
on an embedded Ray cluster (one CPU and ``--threads`` torch threads each); the references run one after the other
on the local executor (``--part references`` and ``--part search`` run them in two processes at once). A run that
was stopped resumes from ``--out``.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import image as mpl_image

from nas.evaluation.gan import FID_NOTE, GanEvaluator
from nas.evaluation.gan.evaluator import png_bytes
from nas.graph.architecture import Architecture
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.store import StoredTrial
from nas.trials.trial import Result, Trial
from search_spaces.gan import GAN_REFERENCES
from strategies import Strategy, register_strategy

HERE = Path(__file__).resolve().parent


@register_strategy
class GanReference(Strategy):
    """Proposes one hand-designed generator of the ``gan`` space (``reference``, see ``GAN_REFERENCES``): how a
    reference runs through the same runner and store as the search."""

    name = "gan_reference"

    def __init__(self, *, reference: str = "dcgan", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reference = reference

    def _propose(self, n: int) -> Sequence[Architecture]:
        return [self.space.reference(self.reference)] * n  # type: ignore[attr-defined]  # the gan space

    def _observe(self, trial: Trial, result: Result) -> None:
        return None


def _row(label: str, t: StoredTrial) -> str:
    m = t.metrics
    if t.status != "COMPLETE":
        return f"{label:<28} {t.status}: {t.error}  params={m.get('params', 0):,.0f}"
    return (f"{label:<28} fid={m['fid']:8.3f}  density={m['density']:.3f}  coverage={m['coverage']:.3f}  "
            f"params={m['params']:,.0f}  seconds={m['train_seconds']:.0f}")


def _grid_pixels(t: StoredTrial) -> np.ndarray:
    """The stored sample grid of trial ``t`` as 8-bit grey pixels at 1x (the evaluator draws it at 2x)."""
    stored = mpl_image.imread(io.BytesIO(base64.b64decode(t.info["samples_png"])))
    return ((stored if stored.ndim == 2 else stored[..., 0])[::2, ::2] * 255).round().astype(np.uint8)


def _side_by_side(grids: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """``grids`` (same height) in a row, ``gap`` white pixel columns between them."""
    spacer = np.full((grids[0].shape[0], gap), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for g in grids:
        parts += [spacer, g] if parts else [g]
    return np.concatenate(parts, axis=1)


def _load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def _run(name: str, directory: Path, config: dict[str, Any]) -> tuple[Experiment, float]:
    """Run (or resume) the experiment of ``config`` in ``directory``; returns it and the wall seconds it took."""
    start = time.perf_counter()
    exp = (Experiment.open(directory) if (directory / "config.yaml").exists()
           else Experiment.create(parse_config(config), directory))
    exp.run()
    return exp, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--steps", type=int, default=100, help="discriminator steps per candidate (see the docstring)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per trial (1: fastest under load)")
    parser.add_argument("--disc-width", type=int, default=64, help="width of the fixed DCGAN discriminator")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=24, help="evolution candidates (0: references only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/gan_bench", help="experiment directories (resumed when present)")
    parser.add_argument("--grid", default=str(HERE / "gan_best_samples.png"), help="the best generator's samples")
    parser.add_argument("--reference-grid", default=str(HERE / "gan_reference_samples.png"),
                        help="the references' samples, DCGAN left, WGAN-GP right")
    parser.add_argument("--part", choices=("all", "references", "search"), default="all",
                        help="run only the references or only the search (e.g. at once, in two processes)")
    parser.add_argument("--references", default=",".join(GAN_REFERENCES),
                        help="the references to run, comma-separated")
    parser.add_argument("--reference-seeds", type=int, default=1,
                        help="trials (trial seeds) per reference: > 1 shows how much a reference's FID moves by seed")
    parser.add_argument("--workers", type=int, default=1,
                        help="candidates trained at once (> 1: on an embedded Ray cluster, one CPU each)")
    args = parser.parse_args()
    out = Path(args.out)
    cache = out / "feature_cache"
    space = {"name": "gan", "options": {"C": args.channels, "latent_dim": args.latent_dim}}

    def config(name: str, strategy: dict[str, Any], loss: str, trials: int, workers: int = 1) -> dict[str, Any]:
        steps = args.steps if loss == "ns" else max(1, args.steps // 5)
        options = {"loss": loss, "steps": steps, "batch_size": args.batch_size, "disc_width": args.disc_width,
                   "eval_samples": args.eval_samples,
                   "cache_dir": str(cache.resolve()), "grid_samples": 64, "device": "cpu"}
        return {"name": name, "seed": args.seed, "space": space, "strategy": strategy,
                "evaluator": {"name": "gan", "task": args.task, "options": options},
                "budget": {"max_trials": trials},
                "execution": {"executor": "ray" if workers > 1 else "local", "workers": workers,
                              "threads_per_trial": args.threads}}

    floor_evaluator = GanEvaluator(compiler=None, task=args.task,  # type: ignore[arg-type]  # the floor compiles nothing
                                   eval_samples=args.eval_samples, cache_dir=cache, data_seed=args.seed)
    start = time.perf_counter()
    floor = floor_evaluator.prepared()[-1]
    print(f"# {FID_NOTE}")
    print(f"# started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {_load()}")
    print(f"# task {args.task}, {args.steps} discriminator steps per candidate (ns: {args.steps} generator steps, "
          f"wgan-gp: {max(1, args.steps // 5)}), batch {args.batch_size}, C={args.channels}, "
          f"latent_dim={args.latent_dim}, eval_samples={args.eval_samples}; feature network ready in "
          f"{time.perf_counter() - start:.0f}s")
    print(f"{'floor (val vs train)':<28} fid={floor:8.3f}", flush=True)
    best_ref = float("inf")
    reference_grids = []
    chosen = [name for name in args.references.split(",") if name]
    unknown = sorted(set(chosen) - set(GAN_REFERENCES))
    if unknown:
        parser.error(f"--references {args.references}: unknown {', '.join(unknown)}; choose from "
                     f"{', '.join(GAN_REFERENCES)}")
    for name in chosen if args.part != "search" else ():
        loss = GAN_REFERENCES[name][1]
        exp, _ = _run(name, out / f"reference_{name}",
                      config(f"gan_reference_{name}", {"name": "gan_reference", "options": {"reference": name},
                                                       "dedup": False},  # the same generator, one seed per trial
                             loss, args.reference_seeds))
        runs = sorted(exp.store.trials(), key=lambda t: t.id)
        for t in runs:
            print(_row(f"reference {name} ({loss})" + (f" seed {t.seed}" if len(runs) > 1 else ""), t), flush=True)
        fids = [t.metrics["fid"] for t in runs if t.status == "COMPLETE"]
        if len(fids) > 1:
            print(f"reference {name}: fid over {len(fids)} seeds: min {min(fids):.3f}, mean {np.mean(fids):.3f}, "
                  f"max {max(fids):.3f}", flush=True)
        if runs[0].status == "COMPLETE":  # the first seed is the one the search's candidates are compared with
            best_ref = min(best_ref, runs[0].metrics["fid"])
            reference_grids.append(_grid_pixels(runs[0]))
    if len(reference_grids) == len(GAN_REFERENCES) and len(chosen) == len(GAN_REFERENCES):
        Path(args.reference_grid).write_bytes(png_bytes(_side_by_side(reference_grids), scale=1))
        print(f"sample grids of the references ({', '.join(chosen)}, left to right): {Path(args.reference_grid).name}")
    if not args.candidates or args.part == "references":
        return
    exp, seconds = _run("search", out / "search",
                        config("gan_search", {"name": "evolution", "options": {"population": 8, "sample_size": 3}},
                               "ns", args.candidates, args.workers))
    trials = sorted(exp.store.trials(), key=lambda t: t.id)
    for i, t in enumerate(trials, start=1):
        print(_row(f"candidate {i} (trial {t.id})", t), flush=True)
    ranked = exp.ranking().ranked
    train_seconds = sum(t.metrics.get("train_seconds", 0.0) for t in trials)
    print(f"search: {len(trials)} candidates, {sum(t.status == 'COMPLETE' for t in trials)} complete; "
          f"{train_seconds:.0f}s of training and evaluation, {seconds:.0f}s wall in this run "
          f"({args.workers} worker{'s' if args.workers > 1 else ''}); ended {time.strftime('%H:%M:%S %Z')}, "
          f"load average {_load()}")
    if ranked:
        best = ranked[0]
        print(f"best: trial {best.id}, fid {best.metrics['fid']:.3f} (best reference {best_ref:.3f}), "
              f"coverage {best.metrics['coverage']:.3f}, params {best.metrics['params']:,.0f}")
        print("best generator: " + "; ".join(f"{n}: " + " ".join(f"{s}>{d}:{op}" for s, d, op in c.edges)
                                             for n, c in best.arch.cells.items()))
        Path(args.grid).write_bytes(png_bytes(_grid_pixels(best), scale=1))
        print(f"sample grid of the best generator: {Path(args.grid).name}")


if __name__ == "__main__":
    main()
