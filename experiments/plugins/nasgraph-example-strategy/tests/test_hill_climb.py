"""nasgraph's strategy conformance suite, run on the installed plugin, and what the plugin itself promises."""

from __future__ import annotations

from nasgraph_example_strategy import HillClimb

from nas.testing.strategies import StrategyConformance, nb201
from nas.trials.trial import Result, Status
from strategies import STRATEGIES, get_strategy, strategy_class


class TestHillClimb(StrategyConformance):
    strategy = "hill_climb"


def test_found_through_its_entry_point() -> None:
    assert strategy_class("hill_climb") is HillClimb
    assert STRATEGIES.plugin("hill_climb") == "nasgraph-example-strategy 0.1.0"


def test_proposes_neighbours_then_restarts_after_patience_results_without_improvement() -> None:
    space = nb201()
    strategy = HillClimb(space=space, seed=0, patience=3)
    (first,) = strategy.ask(1)
    strategy.tell(first, Result(Status.COMPLETE, score=1.0))
    assert strategy.current == first.arch
    for told in range(1, 4):
        (trial,) = strategy.ask(1)
        assert sum(a != b for a, b in zip(space.encode(trial.arch), space.encode(first.arch))) == 1
        strategy.tell(trial, Result.failed("diverged"))
        assert strategy.restarts == (told == 3)
    assert strategy.current is None and strategy.stall == 0


def test_moves_only_to_results_at_least_as_good() -> None:
    strategy = get_strategy("hill_climb", space=nb201(), seed=1, dedup=False, patience=1000)
    best_so_far = float("-inf")
    for _ in range(30):
        (trial,) = strategy.ask(1)
        score = float(sum(op == "nor_conv_3x3" for _, _, op in trial.arch.cell("cell").edges))
        strategy.tell(trial, Result(Status.COMPLETE, score=score))
        best_so_far = max(best_so_far, score)
        assert strategy.current_fit == (best_so_far,)
