"""The search loop, written once for every strategy, evaluator and executor.

ask for as many trials as the executor has free slots -> submit -> collect a finished result -> tell the
strategy -> record -> repeat until the budget is spent; then rank by the validation score. The experiment
(:mod:`nas.runtime.experiment`) adds the directory around it: store, checkpoint, log, resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nas.trials.objectives import Constraint
from nas.trials.protocols import Evaluator, Proposer, TrialExecutor
from nas.trials.ranking import rank as rank_items
from nas.trials.trial import Result, Trial

__all__ = ["TrialRecord", "run_loop", "rank"]


@dataclass
class TrialRecord:
    """A finished trial: what was evaluated, what came back, when (seconds since the loop started), on which
    worker (None in-process) and with how many extra attempts after a worker died."""

    trial: Trial
    result: Result
    finished_at: float
    worker: str | None = None
    retries: int = 0


def run_loop(strategy: Proposer, evaluator: Evaluator, executor: TrialExecutor, *, max_trials: int,
             max_seconds: float | None = None, done: int = 0, resubmit: Iterable[Trial] = (),
             on_submit: Callable[[list[Trial]], None] | None = None,
             on_record: Callable[[TrialRecord], None] | None = None, keep_records: bool = True
             ) -> list[TrialRecord]:
    """Run the search until ``max_trials`` results in all (``done`` of them from earlier sessions) have been
    told, or ``max_seconds`` have passed (trials in flight then still finish). ``resubmit`` are trials asked
    earlier whose results never arrived; they run first. Returns this session's records in completion order;
    with ``keep_records=False`` none are kept (``on_record`` sees each) and the list is empty, so memory stays
    flat however long the search. Each iteration costs the same whatever the number of trials done.

    After waiting for one result, the loop also takes those the executor already holds (its ``ready`` count,
    when it has one) before asking again: the strategy is then asked once for all the freed workers, and
    ``on_submit`` (the experiment's checkpoint) runs once per batch rather than once per result."""
    start = time.perf_counter()
    records: list[TrialRecord] = []
    recorded = 0
    in_flight = 0
    resubmit = list(resubmit)
    submitted = done
    for trial in resubmit:
        executor.submit(evaluator, trial)
    submitted += len(resubmit)
    in_flight += len(resubmit)
    while done + recorded < max_trials:
        out_of_time = max_seconds is not None and time.perf_counter() - start >= max_seconds
        free = min(executor.capacity - in_flight, max_trials - submitted)
        if free > 0 and not out_of_time:
            trials = strategy.ask(free)
            if on_submit is not None:
                on_submit(trials)
            for trial in trials:
                executor.submit(evaluator, trial)
            submitted += len(trials)
            in_flight += len(trials)
        if in_flight == 0:
            break
        # one result (waiting for it), then every result already in (not waiting): the next ask covers them all,
        # so with many workers one ask, one checkpoint and one round of submits serve a batch of results
        while True:
            completion = executor.next_done()
            in_flight -= 1
            strategy.tell(completion.trial, completion.result)
            record = TrialRecord(completion.trial, completion.result, time.perf_counter() - start, completion.worker,
                                 completion.retries)
            recorded += 1
            if keep_records:
                records.append(record)
            if on_record is not None:
                on_record(record)
            if in_flight == 0 or done + recorded >= max_trials or not _ready(executor):
                break
    return records


def _ready(executor: TrialExecutor) -> int:
    """How many results ``executor`` holds that :meth:`next_done` returns without waiting (0 for an executor
    that does not say: the loop then takes one result per ask)."""
    return int(getattr(executor, "ready", 0))


def rank(records: list[TrialRecord], constraints: Sequence[Constraint] = ()) -> list[TrialRecord]:
    """Completed records that meet ``constraints``, best validation score first (ties: earlier trial first), as
    :func:`nas.trials.ranking.rank` orders them. Test accuracy plays no part."""
    return rank_items(records, constraints, ident=lambda r: r.trial.id, outcome=lambda r: r.result).ranked
