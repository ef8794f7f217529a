"""Strategies under many workers: with 64 trials in flight, asked one at a time as results come back in any
order (what the loop does with 64 workers), each strategy still proposes distinct cells, and what it does with
the trials in flight is what its documentation says (TPE's constant liar, gp_bo's exclusion and believer)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.evaluation.evaluators import NB201Evaluator
from nas.trials.trial import Trial
from search_spaces import get_space
from strategies import Strategy, get_strategy

NB201 = get_space("nb201")
EVALUATOR = NB201Evaluator()
IN_FLIGHT = 64


def asynchronous(strategy: Strategy, *, warm: int = 16, rounds: int = 48, seed: int = 0) -> list[list[Trial]]:
    """Tell ``warm`` results, ask ``IN_FLIGHT`` trials, then ``rounds`` times tell one running trial (drawn at
    random: results arrive in any order) and ask one. Returns the trials in flight at each ask after the warm-up,
    the new one last."""
    rng = np.random.default_rng(seed)
    for t in strategy.ask(warm):
        strategy.tell(t, EVALUATOR.evaluate(t))
    flight = strategy.ask(IN_FLIGHT)
    snapshots = [list(flight)]
    for _ in range(rounds):
        done = flight.pop(int(rng.integers(len(flight))))
        strategy.tell(done, EVALUATOR.evaluate(done))
        flight += strategy.ask(1)
        snapshots.append(list(flight))
    return snapshots


@pytest.mark.parametrize("name", ["evolution", "rl", "optuna", "gp_bo"])
def test_asks_with_64_in_flight_are_mostly_distinct(name: str) -> None:
    """The strategy alone proposes distinct decision vectors (NAS-Bench-201 has cells that differ in their
    decisions but compute the same function, which only the de-duplication knows); inside the de-duplication
    (the default of a search) the cells running at any time are distinct functions."""
    strategy = get_strategy(name, space=NB201, seed=0, dedup=False)
    snapshots = asynchronous(strategy)
    asked = snapshots[0] + [s[-1] for s in snapshots[1:]]
    vectors = [tuple(NB201.encode(t.arch)) for t in asked]
    assert len(set(vectors)) >= 0.9 * len(vectors), (name, len(set(vectors)), len(vectors))
    for flight in snapshots:  # at no time do many running trials hold the same decisions
        running = {tuple(NB201.encode(t.arch)) for t in flight}
        assert len(running) >= 0.9 * len(flight), (name, len(running))
    assert [t.id for t in strategy.pending] == sorted(t.id for t in snapshots[-1])

    wrapped = get_strategy(name, space=NB201, seed=0)
    for flight in asynchronous(wrapped):
        assert len({t.arch.canonical_hash() for t in flight}) == len(flight)


def test_tpe_treats_trials_in_flight_as_bad_results() -> None:
    strategy = get_strategy("optuna", space=NB201, seed=0, dedup=False)
    assert strategy.study.sampler._constant_liar is True  # type: ignore[attr-defined]  # optuna's private flag
    chosen = get_strategy("optuna", space=NB201, seed=0, dedup=False, sampler_options={"constant_liar": False})
    assert chosen.study.sampler._constant_liar is False  # type: ignore[attr-defined]  # a user's choice is kept


def test_gp_bo_never_proposes_a_cell_in_flight_and_spreads_its_asks() -> None:
    """gp_bo proposes away from the running trials: none of its asks repeats a decision vector in flight, and
    with the running trials believed at their posterior mean its asks differ from what it proposes when
    blind to them."""
    strategy = get_strategy("gp_bo", space=NB201, seed=0, dedup=False)
    snapshots = asynchronous(strategy, rounds=16)
    for flight in snapshots[1:]:
        vectors = [tuple(NB201.encode(t.arch)) for t in flight]
        assert vectors[-1] not in vectors[:-1]
    state = strategy.state_dict()
    blind = get_strategy("gp_bo", space=NB201, seed=0, dedup=False)
    blind.load_state_dict({**state, "pending": []})
    seeing = get_strategy("gp_bo", space=NB201, seed=0, dedup=False)
    seeing.load_state_dict(state)
    assert seeing.ask(1)[0].arch != blind.ask(1)[0].arch
