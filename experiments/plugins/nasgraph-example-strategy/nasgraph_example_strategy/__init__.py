"""``hill_climb``: seeded hill climbing with restarts, an example of a nasgraph strategy plugin.

The current architecture is mutated (one decision changed, through ``space.mutate``) to make each proposal.
A result at least as good as the current one's moves the search there; ``patience`` results in a row without
a strict improvement (failures included) mean a local optimum: the search restarts from a random sample.
Until a first result arrives (and after a restart) proposals are random samples.
"""

from __future__ import annotations

from typing import Any

from nas.core.checks import check_int
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial
from strategies import Strategy

__all__ = ["HillClimb"]
__version__ = "0.1.0"


class HillClimb(Strategy):
    """Options: ``patience`` (10): results without a strict improvement before a restart."""

    name = "hill_climb"

    def __init__(self, *, patience: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patience = check_int(f"strategy {self.name} option patience", patience, minimum=1)
        self.current: Architecture | None = None
        self.current_fit: tuple[float, ...] | None = None
        self.stall = 0
        self.restarts = 0

    def _propose(self, n: int) -> list[Architecture]:
        if self.current is None:
            return [self.space.sample(self.rng) for _ in range(n)]
        return [self.space.mutate(self.current, self.rng) for _ in range(n)]

    def _observe(self, trial: Trial, result: Result) -> None:
        fit = self.fitness(result)
        if fit is not None and (self.current_fit is None or fit >= self.current_fit):
            improved = self.current_fit is None or fit > self.current_fit
            self.current, self.current_fit = trial.arch, fit  # sideways moves cross plateaus
            if improved:
                self.stall = 0
                return
        self.stall += 1
        if self.stall >= self.patience:
            self.current, self.current_fit, self.stall = None, None, 0
            self.restarts += 1

    def _state(self) -> dict[str, Any]:
        return {"current": None if self.current is None else self.current.to_json(),
                "current_fit": None if self.current_fit is None else list(self.current_fit),
                "stall": self.stall, "restarts": self.restarts}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.current = None if state["current"] is None else Architecture.from_json(state["current"])
        self.current_fit = None if state["current_fit"] is None else tuple(state["current_fit"])
        self.stall = state["stall"]
        self.restarts = state["restarts"]
