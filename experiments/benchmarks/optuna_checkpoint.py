"""Checkpoint size and strategy cost per trial of the ``optuna`` strategy (TPE) as a search grows.

The loop writes the strategy's ``state_dict()`` to the checkpoint once per ask; this script does the same with one
worker on the NAS-Bench-201 table (the evaluator's look-up is not timed): per trial it times ``ask`` + ``tell``
and, apart, ``state_dict()`` + ``json.dumps`` (the checkpoint's strategy part), handing the strategy's journal
records to a list first, as the experiment hands them to its trial store. At each mark it prints the
checkpoint's strategy part in bytes and the mean times over the trials since the previous mark.

Usage (from the repository root)::

    .venv/bin/python experiments/benchmarks/optuna_checkpoint.py [--marks 100 1000 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

from nas.evaluation.evaluators import NB201Evaluator
from search_spaces import get_space
from strategies import get_strategy

__all__ = ["measure"]


def measure(marks: list[int], seed: int = 0) -> list[dict[str, float]]:
    """One TPE search (with de-duplication, the default) up to ``max(marks)`` trials; a row per mark."""
    strategy = get_strategy("optuna", space=get_space("nb201"), seed=seed)
    evaluator = NB201Evaluator()
    kept: list[object] = []
    rows = []
    strategy_s = checkpoint_s = 0.0
    since = 0
    for n in range(1, max(marks) + 1):
        start = time.perf_counter()
        (trial,) = strategy.ask(1)
        asked = time.perf_counter()
        result = evaluator.evaluate(trial)
        told = time.perf_counter()
        strategy.tell(trial, result)
        strategy_s += (asked - start) + (time.perf_counter() - told)
        start = time.perf_counter()
        kept += getattr(strategy, "journal", list)()  # the store's part (absent before the journal existed)
        text = json.dumps(strategy.state_dict())
        checkpoint_s += time.perf_counter() - start
        if n in marks:
            rows.append({"trials": n, "checkpoint_bytes": len(text), "ask_tell_ms": 1000 * strategy_s / (n - since),
                         "checkpoint_ms": 1000 * checkpoint_s / (n - since)})
            print(f"{n:>6} trials: checkpoint (strategy part) {len(text):>10,} bytes; mean per trial since the "
                  f"previous mark: ask+tell {rows[-1]['ask_tell_ms']:.1f} ms, state_dict+json "
                  f"{rows[-1]['checkpoint_ms']:.2f} ms", flush=True)
            strategy_s = checkpoint_s = 0.0
            since = n
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marks", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    measure(sorted(args.marks), args.seed)


if __name__ == "__main__":
    main()
