"""GAN search benchmark: the FID floor, the DCGAN and WGAN-GP references, and a small evolution search in the
``gan`` space, all at one per-candidate budget on a task (default ``mnist``, 28x28).

FIDs are Fréchet distances in the features of a classifier trained on the task once (cached), NOT Inception FIDs:
Inception weights cannot be downloaded offline. Lower is better; they compare only with each other.

    python experiments/benchmarks/gan.py --steps 100 --candidates 24

prints one line per run (as it finishes) and a summary; RESULTS.md's ``gan`` section was written from that output.
"""

from __future__ import annotations

import argparse
import time

from nas.evaluation.gan import FID_NOTE, GanConfig, GanEvaluator
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from search_spaces.gan import GAN_REFERENCES
from strategies import get_strategy


def _row(label: str, result: Result) -> str:
    m = result.metrics
    if not result.ok:
        return f"{label:<28} FAILED: {result.error}  params={m.get('params', 0):,.0f}"
    return (f"{label:<28} fid={m['fid']:8.3f}  density={m['density']:.3f}  coverage={m['coverage']:.3f}  "
            f"params={m['params']:,.0f}  seconds={m['train_seconds']:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--steps", type=int, default=100, help="generator steps per candidate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=24, help="evolution candidates (0: references only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="where the feature classifier is cached")
    args = parser.parse_args()

    space = get_space("gan", C=args.channels, latent_dim=args.latent_dim)
    budget = {"steps": args.steps, "batch_size": args.batch_size}

    def evaluator(loss: str) -> GanEvaluator:
        return GanEvaluator(compiler=space.compiler(), task=args.task, gan=GanConfig(loss=loss, **budget),
                            eval_samples=args.eval_samples, cache_dir=args.cache_dir, data_seed=args.seed)

    ns = evaluator("ns")
    start = time.perf_counter()
    floor = ns.prepared()[-1]
    print(f"# {FID_NOTE}")
    print(f"# task {args.task}, budget {budget}, C={args.channels}, latent_dim={args.latent_dim}, "
          f"eval_samples={args.eval_samples}; feature network ready in {time.perf_counter() - start:.0f}s")
    print(f"{'floor (val vs train)':<28} fid={floor:8.3f}", flush=True)
    best_ref = float("inf")
    for name, (_, loss) in GAN_REFERENCES.items():
        ev = ns if loss == "ns" else evaluator(loss)
        if loss != "ns":
            ev._state = ns.prepared()  # the same task, images and feature network
        result = ev.evaluate(Trial(id=0, arch=space.reference(name), seed=args.seed))
        print(_row(f"reference {name} ({loss})", result), flush=True)
        if result.ok:
            best_ref = min(best_ref, result.metrics["fid"])
    if args.candidates:
        strategy = get_strategy("evolution", space=space, seed=args.seed, population=8, sample_size=3)
        best = (float("inf"), None)
        search_start = time.perf_counter()
        done = 0
        while done < args.candidates:
            for trial in strategy.ask(1):
                result = ns.evaluate(trial)
                strategy.tell(trial, result)
                done += 1
                print(_row(f"candidate {done}", result), flush=True)
                if result.ok and result.metrics["fid"] < best[0]:
                    best = (result.metrics["fid"], trial.arch)
        print(f"search: {done} candidates in {time.perf_counter() - search_start:.0f}s; best fid {best[0]:.3f} "
              f"(best reference {best_ref:.3f}); best generator: {best[1]!r}")


if __name__ == "__main__":
    main()
