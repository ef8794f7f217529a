"""BOHB's model half: it fits on the largest budget with enough observations and its proposals beat random ones
on a synthetic objective whose optimum is known (the ask/tell, determinism and state contracts are the
conformance suite's)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.core.errors import ConfigError
from nas.trials.trial import Result, Status
from search_spaces import get_space
from strategies import get_strategy
from strategies.bohb import BOHB

TARGET = 3  # decision value the synthetic objective rewards on every edge


def _result(decisions: list[int], epochs: int) -> Result:
    """A trial whose validation score at every epoch is its count of TARGET decisions (plus the epoch)."""
    score = float(sum(d == TARGET for d in decisions))
    status = Status.COMPLETE if epochs == 3 else Status.PRUNED
    history = [{"epoch": e, "score": score + e} for e in range(1, epochs + 1)]
    return Result(status, score=score + epochs, history=history)


def _run(strategy: BOHB, n: int, rng: np.random.Generator) -> list[float]:
    scores = []
    for _ in range(n):
        (trial,) = strategy.ask(1)
        x = strategy.space.encode(trial.arch)
        strategy.tell(trial, _result(x, int(rng.choice([1, 1, 3]))))
        scores.append(float(sum(d == TARGET for d in x)))
    return scores


def test_the_model_fits_the_largest_budget_with_enough_observations():
    space = get_space("nb201")
    bohb = BOHB(space=space, seed=0)
    assert bohb.n_min == len(space.decision_sizes()) + 1
    assert bohb.budget() is None
    _run(bohb, 30, np.random.default_rng(0))
    assert len(bohb.observations[1]) == 30
    # epoch 3 has about a third of the trials: fewer than n_min + 2 = 9 would leave the model on epoch 1
    expected = 3 if len(bohb.observations.get(3, [])) >= bohb.n_min + 2 else 1
    assert bohb.budget() == expected


def test_proposals_concentrate_where_the_scores_are_high():
    space = get_space("nb201")
    late_model, late_random = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        model = _run(BOHB(space=space, seed=seed, random_fraction=0.0), 60, rng)
        uniform = _run(BOHB(space=space, seed=seed, random_fraction=1.0), 60, rng)
        late_model += model[30:]
        late_random += uniform[30:]
    # random: 6 edges x 1/5 = 1.2 target ops on average; the model must do clearly better
    assert np.mean(late_model) > np.mean(late_random) + 1.0


def test_state_round_trip_continues_identically():
    space = get_space("nb201")
    a = BOHB(space=space, seed=4)
    _run(a, 20, np.random.default_rng(1))
    b = BOHB(space=space, seed=99)
    b.load_state_dict(a.state_dict())
    assert [t.arch for t in a.ask(5)] == [t.arch for t in b.ask(5)]


@pytest.mark.parametrize("options, fragment", [({"top_fraction": 2.0}, "top_fraction"),
                                               ({"n_min": 0}, "n_min"), ({"bandwidth": 3}, "bandwidth_factor")])
def test_bad_options_name_the_field(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        get_strategy("bohb", space=get_space("nb201"), **options)


def test_results_without_history_are_observed_at_budget_zero():
    space = get_space("nb201")
    bohb = BOHB(space=space, seed=0)
    for _ in range(10):
        (trial,) = bohb.ask(1)
        bohb.tell(trial, Result(Status.COMPLETE, score=1.0))
    assert len(bohb.observations[0]) == 10 and bohb.budget() == 0
