"""Executors run evaluations: in-process (:class:`LocalExecutor`) or on Ray workers (the runner issue).

Interface: ``capacity`` (how many trials may run at once), ``submit(evaluator, trial)``,
``next_done() -> (trial, result)`` (blocks until one finishes; results arrive in any order),
``in_flight`` and ``shutdown()``.
"""

from __future__ import annotations

from collections import deque

from nas.evaluators import Evaluator
from nas.trial import Result, Trial

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Evaluates each trial in the calling process when it is submitted; one at a time."""

    capacity = 1

    def __init__(self) -> None:
        self._done: deque[tuple[Trial, Result]] = deque()

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        self._done.append((trial, evaluator.evaluate(trial)))

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def next_done(self) -> tuple[Trial, Result]:
        if not self._done:
            raise RuntimeError("next_done() with nothing submitted")
        return self._done.popleft()

    def shutdown(self) -> None:
        self._done.clear()
