"""Checkpoint size and strategy cost per trial of the ``optuna`` strategy (TPE) as a search grows.

The loop writes the strategy's ``state_dict()`` to the checkpoint once per ask; this script drives the strategy
with one worker on the NAS-Bench-201 table (the evaluator's look-up is not timed), times ``ask`` + ``tell`` per
trial and hands the strategy's journal records to a list after each trial, as the experiment's checkpoint hands
them to its trial store (and, as the experiment does, lets the de-duplication read results back by trial id). At
each mark it prints the checkpoint's strategy part (``state_dict()`` as JSON) in bytes, the mean ask + tell time
per trial since the previous mark, and the mean time of ``state_dict()`` + ``json.dumps`` over the ``--sampled``
trials before the mark (what the loop pays per checkpoint there). The same script runs on code from before the
journal (no ``journal()``: nothing is handed out) for the comparison. It prints and writes nothing.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/optuna_checkpoint.py [--marks 100 1000 5000] [--seed 0] [--no-dedup]
"""

from __future__ import annotations

import argparse
import json
import time

from nas.evaluation.evaluators import NB201Evaluator
from nas.trials.trial import Result
from search_spaces import get_space
from strategies import Deduplicate, get_strategy

__all__ = ["measure"]


def measure(marks: list[int], seed: int = 0, dedup: bool = True, sampled: int = 20) -> list[dict[str, float]]:
    """One TPE search (de-duplicated, the default, or not) up to ``max(marks)`` trials; a row per mark."""
    strategy = get_strategy("optuna", space=get_space("nb201"), seed=seed, dedup=dedup)
    evaluator = NB201Evaluator()
    kept: list[object] = []
    results: dict[int, Result] = {}  # the store's results, read back by the de-duplication (as in an experiment)
    if isinstance(strategy, Deduplicate):
        strategy.use_result_source(results.__getitem__)
    rows = []
    strategy_s = checkpoint_s = 0.0
    since = 0
    for n in range(1, max(marks) + 1):
        start = time.perf_counter()
        (trial,) = strategy.ask(1)
        asked = time.perf_counter()
        result = evaluator.evaluate(trial)
        told = time.perf_counter()
        results[trial.id] = result
        strategy.tell(trial, result)
        strategy_s += (asked - start) + (time.perf_counter() - told)
        kept += getattr(strategy, "journal", list)()  # the store's part (absent before the journal existed)
        if any(0 <= mark - n < sampled for mark in marks):
            start = time.perf_counter()
            text = json.dumps(strategy.state_dict())
            checkpoint_s += time.perf_counter() - start
        if n in marks:
            rows.append({"trials": n, "checkpoint_bytes": len(text), "ask_tell_ms": 1000 * strategy_s / (n - since),
                         "checkpoint_ms": 1000 * checkpoint_s / min(sampled, n)})
            print(f"{n:>6} trials: checkpoint (strategy part) {len(text):>10,} bytes; ask+tell "
                  f"{rows[-1]['ask_tell_ms']:.1f} ms per trial since the previous mark; state_dict+json "
                  f"{rows[-1]['checkpoint_ms']:.2f} ms", flush=True)
            strategy_s = checkpoint_s = 0.0
            since = n
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-dedup", action="store_true", help="without the de-duplicating wrapper")
    parser.add_argument("--sampled", type=int, default=20, help="checkpoints timed before each mark")
    args = parser.parse_args()
    measure(sorted(args.marks), args.seed, dedup=not args.no_dedup, sampled=args.sampled)


if __name__ == "__main__":
    main()
