"""The loop with several workers: results already in are taken together, and the strategy is asked once for all
the workers they freed (one checkpoint per batch in an experiment), with the same trials told and recorded."""

from __future__ import annotations

from collections import deque

from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.loop import run_loop
from nas.trials.protocols import Completion, Evaluator
from nas.trials.trial import Trial
from search_spaces import get_space
from strategies import get_strategy


class Workers:
    """``capacity`` in-process workers that finish every trial as it is submitted, in submission order; with
    ``says_ready`` the executor tells the loop how many results it holds (``ready``), as the Ray executor does."""

    def __init__(self, capacity: int, says_ready: bool) -> None:
        self.capacity = capacity
        self.says_ready = says_ready
        self._done: deque[Completion] = deque()

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        self._done.append(Completion(trial, evaluator.evaluate(trial)))

    def next_done(self) -> Completion:
        return self._done.popleft()

    @property
    def ready(self) -> int:
        return len(self._done) if self.says_ready else 0


def search(says_ready: bool) -> tuple[list[int], list[tuple[int, float | None]]]:
    strategy = get_strategy("evolution", space=get_space("nb201"), seed=3, dedup=False)
    asks: list[int] = []
    records = run_loop(strategy, NB201Evaluator(), Workers(4, says_ready), max_trials=30,
                       on_submit=lambda trials: asks.append(len(trials)))
    return asks, [(r.trial.id, r.result.score) for r in records]


def test_results_in_together_are_told_together_and_asked_for_at_once() -> None:
    asks, records = search(says_ready=True)
    assert asks == [4] * 7 + [2]  # each ask covers the four workers freed at once (the budget's last two)
    assert [i for i, _ in records] == list(range(30))
    one_by_one, _ = search(says_ready=False)
    assert one_by_one == [4] + [1] * 26  # an executor that does not say: one ask per result, as before
