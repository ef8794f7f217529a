"""Baselines: reference models (:mod:`nas.graph.references`) trained beside a search, for comparison.

The contract, as the runtime keeps it:

* A config's ``baselines: [resnet18, lenet5]`` trains each named reference with the search's evaluator (same
  task, trainer and training settings, the experiment's seed), before the search's first trial.
* A baseline is evaluated as a :class:`Trial` of id ``-(i + 1)`` for the ``i``-th name (:func:`baseline_trials`),
  so its id is never a search trial's; it is stored in the store's ``baselines`` table under its name.
* The strategy never proposes, sees or is told a baseline; baselines are not counted in ``budget.max_trials``
  (nor in the trials ``nas status`` counts); the time they take is part of the search's ``elapsed`` and of
  ``budget.max_seconds``.
* A finished baseline (complete or failed) is never run again: a resumed search runs only those that have no
  result yet.
* The ranking of the search's trials, ``best.json`` and ``nas export`` (without ``--baselines``) stay the
  search's own: a baseline is never "the best architecture". Status, the report and ``nas export --baselines``
  show the baselines beside the ranking, marked, with the place each would take in it (:func:`place`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nas.graph import references
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial

__all__ = ["baseline_trials", "BaselineProposer", "place"]


def baseline_trials(names: Sequence[str], seed: int,
                    architecture: Callable[[str], Architecture] = references.get) -> list[tuple[str, Trial]]:
    """``(name, trial)`` for each reference name, in order: trial id ``-(i + 1)``, the reference's architecture
    (``architecture(name)``: :func:`nas.graph.references.get` by default; a generator search passes its space's
    ``reference``) and the experiment's ``seed``. Unknown names raise :class:`~nas.core.errors.UnknownNameError`
    (with a close match)."""
    return [(name, Trial(-(i + 1), architecture(name), seed)) for i, name in enumerate(names)]


class BaselineProposer:
    """A fixed list of trials asked in order (what the loop drives while the baselines run); ``tell`` keeps
    nothing: no strategy learns from a baseline."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        self._todo = list(trials)

    def ask(self, n: int = 1) -> list[Trial]:
        asked, self._todo = self._todo[:n], self._todo[n:]
        return asked

    def tell(self, trial: Trial, result: Result) -> None:
        """Nothing to learn: baselines are fixed."""


def place(score: float, ranked_scores: Sequence[float]) -> int:
    """The 1-based place a baseline of validation ``score`` would take among the search's ranked scores (best
    first; a tie places the baseline after the search's trials of equal score): 1 means it beats every trial."""
    return 1 + sum(1 for s in ranked_scores if s >= score)
