"""The optuna strategy's state has a constant size: finished Optuna trials leave it as journal records (which the
experiment keeps in its store) and come back through ``restore``; states that kept every trial still load.
Results come from the NAS-Bench-201 table: nothing is trained."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nas.core.errors import ConfigError
from nas.testing.strategies import drive, key, nb201, nb201_result, unwrap
from nas.trials.trial import Result, Status
from strategies import Strategy, get_strategy

OPTIONS: dict[str, Any] = {"sampler_options": {"n_startup_trials": 5}}  # TPE proper after 5 trials


def make(dedup: bool = True, **options: Any) -> Strategy:
    return get_strategy("optuna", space=nb201(), seed=2, dedup=dedup, **{**OPTIONS, **options})


def run(strategy: Strategy, rounds: int, kept: dict[int, Any]) -> None:
    """``rounds`` rounds of two trials, the journal taken after each (as the experiment's checkpoint does)."""
    for _ in range(rounds):
        drive(strategy, 1, nb201_result, batch=2)
        kept.update(json.loads(json.dumps(strategy.journal())))


def own(state: dict[str, Any]) -> dict[str, Any]:
    return (state["inner"] if "inner" in state else state)["own"]


@pytest.mark.parametrize("dedup", [True, False], ids=["dedup", "raw"])
def test_the_state_keeps_no_finished_trial_and_its_size_is_flat(dedup: bool) -> None:
    strategy = make(dedup)
    kept: dict[int, Any] = {}
    sizes = []
    for _ in range(4):
        run(strategy, 10, kept)
        held = strategy.ask(2)
        kept.update(strategy.journal())  # with de-duplication an ask tells the duplicates it skips
        state = json.loads(json.dumps(strategy.state_dict()))
        sizes.append(len(json.dumps(own(state))))  # (the wrapper's results stay in a state without a store)
        assert own(state)["journal"] == []
        assert sorted(r["number"] for r in own(state)["running"]) == sorted(own(state)["numbers"].values())
        assert len(own(state)["running"]) == 2
        for t in held:
            strategy.tell(t, nb201_result(t))
        kept.update(strategy.journal())
    n_trials = len(unwrap(strategy).study.trials)  # type: ignore[attr-defined]  # an OptunaStrategy
    assert sorted(kept) == list(range(n_trials)) and n_trials >= 88
    assert max(sizes) - min(sizes) < 200, sizes  # a few digits more, not a trial more


def test_a_state_without_its_records_refuses_to_propose_until_restored() -> None:
    strategy = make()
    kept: dict[int, Any] = {}
    run(strategy, 8, kept)
    state = json.loads(json.dumps(strategy.state_dict()))
    restored = make()
    restored.load_state_dict(state)
    with pytest.raises(ConfigError, match=r"restore\(\)"):
        restored.ask(1)
    restored.restore(sorted(kept.items()))
    assert [key(t) for t in restored.ask(2)] == [key(t) for t in strategy.ask(2)]


def test_a_missing_record_is_refused_naming_the_trial() -> None:
    strategy = make(dedup=False)
    kept: dict[int, Any] = {}
    run(strategy, 5, kept)
    state = json.loads(json.dumps(strategy.state_dict()))
    del kept[3]
    restored = make(dedup=False)
    restored.load_state_dict(state)
    with pytest.raises(ConfigError, match=r"Optuna trial 3 .*out of step with the checkpoint"):
        restored.restore(sorted(kept.items()))


def test_a_state_nobody_took_records_from_is_whole() -> None:
    """Without an experiment (nobody calls journal()) the state holds every finished trial, as before."""
    strategy = make()
    drive(strategy, 10, nb201_result, batch=2)
    held = strategy.ask(1)
    restored = make()
    restored.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
    for s in (strategy, restored):
        s.tell(held[0], Result(Status.PRUNED, score=1.0, error="pruned"))
    assert drive(restored, 10, nb201_result) == drive(strategy, 10, nb201_result)


def test_a_state_with_every_trial_in_it_still_loads_and_journals_them_for_the_store() -> None:
    """States written before the journal kept every Optuna trial (``trials``); they resume exactly, and their
    finished trials are handed out as records once, so that the store gets them before the next checkpoint."""
    strategy = make()
    drive(strategy, 10, nb201_result, batch=2)
    held = strategy.ask(2)
    state = json.loads(json.dumps(strategy.state_dict()))
    new = own(state)
    trials = sorted(new["journal"] + new["running"], key=lambda t: t["number"])
    state["inner"]["own"] = {"trials": trials, "rng_states": new["rng_states"], "numbers": new["numbers"]}
    restored = make()
    restored.load_state_dict(state)
    records = restored.journal()
    assert [n for n, _ in records] == [t["number"] for t in trials if t["state"] != "RUNNING"]
    assert len(records) >= 20
    assert restored.journal() == []
    for s in (strategy, restored):
        for t in held:
            s.tell(t, nb201_result(t))
    assert drive(restored, 10, nb201_result) == drive(strategy, 10, nb201_result)
    assert own(restored.state_dict())["n_trials"] == own(strategy.state_dict())["n_trials"]
