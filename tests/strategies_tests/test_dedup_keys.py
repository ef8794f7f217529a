"""De-duplication keys on the canonical hash only while every objective and constraint is hash-invariant; with a
cost objective or constraint it keys on the exact architecture, so members of one hash class are each evaluated
and each strategy is told every cell's own cost (the flaw: it was told the first member's cost)."""

from __future__ import annotations

from typing import Any

import pytest

from nas.core.errors import ConfigError
from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.api import search
from nas.runtime.executors import LocalExecutor
from nas.runtime.experiment import Experiment
from nas.runtime.loop import run_loop
from nas.trials.objectives import hash_invariant
from nas.trials.trial import Result, Trial
from search_spaces import get_space
from strategies import Deduplicate, get_strategy
from strategies.dedup import exact_key

NB201 = get_space("nb201")
# two cells of one canonical-hash class (the conv on edge 0->1 feeds only node 1, whose outputs are all `none`:
# a dead branch), with different Pixel 3 latencies and parameter counts
LIVE = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
DEAD = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"


def test_the_two_cells_are_one_hash_class_with_different_costs() -> None:
    live, dead = NB201.from_string(LIVE), NB201.from_string(DEAD)
    assert live.canonical_hash() == dead.canonical_hash() and live != dead
    ev = NB201Evaluator()
    a, b = ev.evaluate(Trial(0, live)), ev.evaluate(Trial(1, dead))
    assert a.metrics["pixel3_latency"] < b.metrics["pixel3_latency"]
    assert a.metrics["params"] < b.metrics["params"]


@pytest.mark.parametrize(("objectives", "constraints", "mode"), [
    (None, None, "hash"),
    (["max:score"], {"score": {"min": 50}}, "hash"),
    (["max:val_acc", "max:test_acc"], None, "hash"),
    (["max:score", "min:params"], None, "exact"),
    (["max:score", "min:pixel3_latency"], None, "exact"),
    (None, ["pixel3_latency <= 5"], "exact"),
    (None, {"jetson_tx2_energy": {"max": 20}}, "exact"),
])
def test_auto_key_follows_what_objectives_and_constraints_read(objectives: Any, constraints: Any, mode: str) -> None:
    strategy = get_strategy("random", space=NB201, objectives=objectives, constraints=constraints)
    assert isinstance(strategy, Deduplicate) and strategy.key_mode == mode
    arch = NB201.from_string(DEAD)
    assert strategy.key(arch) == (arch.canonical_hash() if mode == "hash" else exact_key(arch.to_json()))


def test_hash_invariant_metrics() -> None:
    assert all(hash_invariant(m) for m in ("score", "val_acc", "test_rmse"))
    assert not any(hash_invariant(m) for m in ("params", "flops", "latency_ms", "pixel3_latency", "nb201_index"))


def test_forced_keys_and_a_bad_key() -> None:
    inner = get_strategy("random", space=NB201, dedup=False, objectives=["max:score", "min:pixel3_latency"])
    assert Deduplicate(inner, key="hash").key_mode == "hash"
    assert Deduplicate(get_strategy("random", space=NB201, dedup=False), key="exact").key_mode == "exact"
    with pytest.raises(ConfigError, match="key = 'isomorphism' is not one of auto, hash, exact"):
        Deduplicate(inner, key="isomorphism")


def _scripted_inner(strings: list[str], **options: Any) -> Any:
    """A random strategy whose proposals are ``strings`` in turn (then random cells), recording what it is told."""
    inner = get_strategy("random", space=NB201, dedup=False, **options)
    told: list[tuple[str, Result]] = []
    propose, tell = inner._propose, inner.tell
    queue = [NB201.from_string(s) for s in strings]

    def scripted(n: int) -> list[Any]:
        return [queue.pop(0) if queue else arch for arch in propose(n)]

    def spy(trial: Trial, result: Result) -> None:
        told.append((NB201.to_string(trial.arch), result))
        tell(trial, result)

    inner._propose, inner.tell = scripted, spy  # type: ignore[method-assign]  # a scripted inner strategy
    return inner, told


def test_cost_objective_evaluates_each_member_and_tells_each_its_own_cost() -> None:
    inner, told = _scripted_inner([DEAD, LIVE, DEAD], objectives=["max:score", "min:pixel3_latency"])
    ev = NB201Evaluator()
    records = run_loop(Deduplicate(inner), ev, LocalExecutor(), max_trials=3)
    evaluated = [NB201.to_string(r.trial.arch) for r in records]
    assert evaluated[:2] == [DEAD, LIVE]  # the cheaper member is evaluated although its hash class is known
    assert DEAD not in evaluated[2:]  # an exact repeat is still skipped
    for string, result in told:  # every result told carries the told cell's own cost
        own = ev.evaluate(Trial(0, NB201.from_string(string))).metrics["pixel3_latency"]
        assert result.metrics["pixel3_latency"] == own
    assert [s for s, _ in told].count(DEAD) == 2  # the repeat was told the stored result


def test_hash_key_keeps_the_old_behaviour_of_skipping_the_class() -> None:
    inner, told = _scripted_inner([DEAD, LIVE])
    records = run_loop(Deduplicate(inner), NB201Evaluator(), LocalExecutor(), max_trials=2)
    assert LIVE not in [NB201.to_string(r.trial.arch) for r in records]
    live_told = [r for s, r in told if s == LIVE]
    assert live_told and live_told[0].metrics["pixel3_latency"] != NB201Evaluator().evaluate(
        Trial(0, NB201.from_string(LIVE))).metrics["pixel3_latency"]  # the flaw the exact key removes


def test_random_search_is_never_told_a_wrong_cost_with_a_cost_objective() -> None:
    ev = NB201Evaluator()
    for key, wrong_expected in (("auto", False), ("hash", True)):
        inner, told = _scripted_inner([], objectives=["max:score", "min:pixel3_latency"], seed=3)
        run_loop(Deduplicate(inner, key=key), ev, LocalExecutor(), max_trials=400)
        wrong = sum(r.metrics["pixel3_latency"] != ev.evaluate(Trial(0, NB201.from_string(s))).metrics[
            "pixel3_latency"] for s, r in told)
        assert (wrong > 0) is wrong_expected, (key, wrong)


def test_state_keeps_the_key_and_an_old_state_loads_as_hash() -> None:
    objectives = ["max:score", "min:pixel3_latency"]
    strategy = get_strategy("evolution", space=NB201, seed=1, objectives=objectives)
    run_loop(strategy, NB201Evaluator(), LocalExecutor(), max_trials=10)
    state = strategy.state_dict()
    assert state["key"] == "exact"
    restored = get_strategy("evolution", space=NB201, seed=1, objectives=objectives)
    restored.load_state_dict(state)
    assert restored.key_mode == "exact" and restored.results.keys() == strategy.results.keys()
    old = dict(state)
    del old["key"]
    restored.load_state_dict(old)
    assert restored.key_mode == "hash"


def test_resumed_experiment_restores_exact_keys_from_the_store(tmp_path: Any) -> None:
    cfg = {"name": "hw", "seed": 0, "space": {"name": "nb201"}, "strategy": {"name": "random"},
           "evaluator": {"name": "nb201"}, "objectives": ["max:score", "min:pixel3_latency"],
           "budget": {"max_trials": 20}, "execution": {"executor": "local", "workers": 1}}
    exp = search(cfg, directory=tmp_path / "exp")
    keys = dict(exp.strategy.results)
    exp.close()
    resumed = Experiment.open(tmp_path / "exp", max_trials=30)
    try:
        assert isinstance(resumed.strategy, Deduplicate) and resumed.strategy.key_mode == "exact"
        assert resumed.strategy.results.keys() == keys.keys()
        assert all(k.startswith("exact:") for k in keys)
        resumed.run()
        archs = [t.arch.to_json() for t in resumed.store.trials()]
        assert len(archs) == 30 and len(set(archs)) == 30  # no exact architecture evaluated twice
    finally:
        resumed.close()
