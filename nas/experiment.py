"""The search loop, written once for every strategy, evaluator and executor.

ask for as many trials as the executor has free slots -> submit -> collect a finished result -> tell the
strategy -> record -> repeat until the budget is spent; then rank by the validation score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nas.evaluators import Evaluator
from nas.trial import Result, Trial

__all__ = ["TrialRecord", "run_loop", "rank"]


@dataclass
class TrialRecord:
    """A finished trial: what was evaluated, what came back, and when (seconds since the loop started)."""

    trial: Trial
    result: Result
    finished_at: float


def run_loop(strategy: object, evaluator: Evaluator, executor: object, *, max_trials: int,
             max_seconds: float | None = None,
             on_record: Callable[[TrialRecord], None] | None = None) -> list[TrialRecord]:
    """Run the search until ``max_trials`` results have been told (or ``max_seconds`` elapsed; trials in
    flight then still finish). Returns the records in completion order."""
    start = time.perf_counter()
    records: list[TrialRecord] = []
    submitted = 0
    in_flight = 0
    while len(records) < max_trials:
        out_of_time = max_seconds is not None and time.perf_counter() - start >= max_seconds
        free = min(executor.capacity - in_flight, max_trials - submitted)  # type: ignore[attr-defined]
        if free > 0 and not out_of_time:
            for trial in strategy.ask(free):  # type: ignore[attr-defined]
                executor.submit(evaluator, trial)  # type: ignore[attr-defined]
                submitted += 1
                in_flight += 1
        if in_flight == 0:
            break
        trial, result = executor.next_done()  # type: ignore[attr-defined]
        in_flight -= 1
        strategy.tell(trial, result)  # type: ignore[attr-defined]
        record = TrialRecord(trial, result, time.perf_counter() - start)
        records.append(record)
        if on_record is not None:
            on_record(record)
    return records


def rank(records: list[TrialRecord]) -> list[TrialRecord]:
    """Completed records, best validation score first (ties: earlier trial first). Test accuracy plays no part."""
    done = [r for r in records if r.result.ok and r.result.score is not None]
    return sorted(done, key=lambda r: (-r.result.score, r.trial.id))  # type: ignore[operator]
