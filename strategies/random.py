"""Random search: uniform samples from the space. The reference strategy; its whole contract is here."""

from __future__ import annotations

from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial
from strategies.base import Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Samples every architecture uniformly at random with its own RNG; results are ignored."""

    name = "random"

    def _propose(self, n: int) -> list[Architecture]:
        return [self.space.sample(self.rng) for _ in range(n)]

    def _observe(self, trial: Trial, result: Result) -> None:
        return None
