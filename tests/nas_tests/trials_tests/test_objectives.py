"""Objectives, constraints and Pareto tools (nas.trials.objectives) on small hand-computed cases."""

from __future__ import annotations

import math

import pytest

from nas.core.errors import ConfigError
from nas.trials.objectives import (
    Constraint,
    Objective,
    crowding_distance,
    feasible,
    hypervolume_2d,
    non_dominated_sort,
    oriented,
    pareto_front,
    parse_constraints,
    parse_objectives,
)
from nas.trials.trial import Result, Status

INF = math.inf


# -- Pareto tools (every objective maximised) ------------------------------------------------------------
def test_non_dominated_sort_ranks_fronts():
    points = [(1, 1), (2, 2), (0, 3), (2, 0), (1, 0)]
    # (2,2) and (0,3) are non-dominated; (1,1) and (2,0) only by (2,2); (1,0) also by (1,1) and (2,0)
    assert non_dominated_sort(points) == [1, 0, 0, 1, 2]
    assert pareto_front(points) == [1, 2]


def test_non_dominated_sort_edge_cases():
    assert non_dominated_sort([]) == []
    assert non_dominated_sort([(5.0, 1.0)]) == [0]
    assert non_dominated_sort([(1, 1), (1, 1)]) == [0, 0]  # equal points do not dominate each other
    assert non_dominated_sort([(1, 2), (1, 1)]) == [0, 1]  # equal in one objective, better in the other
    assert non_dominated_sort([(3,), (1,), (2,), (3,)]) == [0, 2, 1, 0]  # one objective: ranks by value
    assert non_dominated_sort([(1, 1, 1), (0, 2, 0), (0, 0, 0)]) == [0, 0, 1]
    assert pareto_front([]) == []


def test_crowding_distance_of_an_evenly_spread_front():
    # each inner point: (2 - 0) / 3 along each objective
    assert crowding_distance([(0, 3), (1, 2), (2, 1), (3, 0)]) == pytest.approx([INF, 4 / 3, 4 / 3, INF])


def test_crowding_distance_of_an_uneven_set():
    # objective 0 spans 10: (4-0)/10 and (10-1)/10; objective 1 spans 10: (6-0)/10 and (10-5)/10
    assert crowding_distance([(0, 0), (1, 5), (4, 6), (10, 10)]) == pytest.approx([INF, 1.0, 1.4, INF])
    # order of the input does not matter
    assert crowding_distance([(4, 6), (10, 10), (0, 0), (1, 5)]) == pytest.approx([1.4, INF, INF, 1.0])


def test_crowding_distance_edge_cases():
    assert crowding_distance([]) == []
    assert crowding_distance([(1, 2)]) == [INF]
    assert crowding_distance([(1, 2), (3, 4)]) == [INF, INF]
    # a constant objective adds nothing (but its extremes, by input order, are still boundary points)
    assert crowding_distance([(1, 0), (1, 1), (1, 2)]) == [INF, 1.0, INF]


def test_hypervolume_2d_of_a_staircase():
    staircase = [(1, 3), (2, 2), (3, 1)]
    assert hypervolume_2d(staircase, (0, 0)) == pytest.approx(6.0)  # 1*3 + 1*2 + 1*1
    assert hypervolume_2d(list(reversed(staircase)), (0, 0)) == pytest.approx(6.0)
    assert hypervolume_2d([*staircase, (1, 1), (2, 2)], (0, 0)) == pytest.approx(6.0)  # dominated and repeated
    assert hypervolume_2d(staircase, (1, 1)) == pytest.approx(1.0)  # only (2,2) exceeds the reference
    assert hypervolume_2d(staircase, (-1, -1)) == pytest.approx(2 * 4 + 1 * 3 + 1 * 2)


def test_hypervolume_2d_edge_cases():
    assert hypervolume_2d([], (0, 0)) == 0.0
    assert hypervolume_2d([(2, 3)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume_2d([(2, 1), (2, 3)], (0, 0)) == pytest.approx(6.0)  # tie in the first objective
    assert hypervolume_2d([(-1, 5), (5, -1), (0, 4)], (0, 0)) == 0.0  # on or below the reference
    assert hypervolume_2d([(-90.0, -2e5), (-80.0, -1e5)], (-100.0, -3e5)) == pytest.approx(20 * 2e5)


# -- parsing ---------------------------------------------------------------------------------------------
def test_parse_objectives_forms():
    assert parse_objectives(None) == (Objective("score", "max"),)
    assert parse_objectives("score") == (Objective("score", "max"),)
    assert parse_objectives("min:params") == (Objective("params", "min"),)
    assert parse_objectives(["max:score", "min:params", "latency_ms"]) == (
        Objective("score", "max"), Objective("params", "min"), Objective("latency_ms", "max"))
    assert parse_objectives([{"metric": "flops", "direction": "min"}, {}]) == (
        Objective("flops", "min"), Objective("score", "max"))
    objective = Objective("val_loss", "min")
    assert parse_objectives((objective,)) == (objective,)


@pytest.mark.parametrize("spec, words", [
    ([], "at least one"),
    (["sideways:score"], "direction 'sideways'"),
    ([{"metric": "params", "direction": "down"}], "direction 'down'"),
    ([3], "objective 3"),
    ([None], "objective None"),
])
def test_parse_objectives_errors(spec, words):
    with pytest.raises(ConfigError, match=words):
        parse_objectives(spec)


def test_objective_rejects_a_bad_direction():
    with pytest.raises(ConfigError, match="must be 'max' or 'min'"):
        Objective("score", "maximise")


def test_parse_constraints_forms():
    assert parse_constraints(None) == ()
    assert parse_constraints({}) == ()
    assert parse_constraints({"params": {"max": 1e6}}) == (Constraint("params", max=1e6),)
    assert parse_constraints({"params": {"max": 10, "min": 2}, "score": {"min": 50}}) == (
        Constraint("params", max=10, min=2), Constraint("score", min=50))
    given = [Constraint("latency_ms", max=5.0)]
    assert parse_constraints(given) == tuple(given)


@pytest.mark.parametrize("spec", [
    {"params": 5},
    {"params": {"maximum": 1}},
    {"params": {"max": 1, "mean": 2}},
    {"params": {}},
])
def test_parse_constraints_errors(spec):
    with pytest.raises(ConfigError, match="constraint 'params'"):
        parse_constraints(spec)


# -- results -> objective vectors ------------------------------------------------------------------------
def complete(score: float | None = 90.0, **metrics: float) -> Result:
    return Result(Status.COMPLETE, score=score, metrics=dict(metrics))


def test_oriented_negates_minimised_objectives():
    objectives = parse_objectives(["max:score", "min:params", "max:val_acc", "min:latency_ms"])
    result = complete(91.5, params=2e5, val_acc=91.5, latency_ms=3.0)
    assert oriented(result, objectives) == (91.5, -2e5, 91.5, -3.0)
    assert oriented(result, parse_objectives(["min:score"])) == (-91.5,)
    assert all(isinstance(v, float) for v in oriented(complete(90, params=7), parse_objectives(["min:params"])))


def test_oriented_is_none_for_failed_pruned_or_incomplete_results():
    objectives = parse_objectives(["max:score", "min:params"])
    assert oriented(Result.failed("boom"), objectives) is None
    assert oriented(Result.failed("boom", metrics={"params": 1.0}), objectives) is None
    assert oriented(Result(Status.PRUNED, score=80.0, metrics={"params": 1.0}), objectives) is None
    assert oriented(complete(90.0), objectives) is None  # no params metric
    assert oriented(complete(None, params=1.0), objectives) is None  # no score
    assert oriented(complete(math.nan, params=1.0), objectives) is None
    assert oriented(complete(90.0, params=math.inf), objectives) is None
    assert oriented(complete(90.0, params=1.0), objectives) == (90.0, -1.0)


def test_objective_raw_and_value():
    result = complete(80.0, params=10.0)
    assert Objective("params", "min").raw(result) == 10.0
    assert Objective("params", "min").value(result) == -10.0
    assert Objective("score").value(result) == 80.0
    assert Objective("flops").value(result) is None


def test_constraints_and_feasibility():
    small = complete(90.0, params=5.0)
    large = complete(90.0, params=50.0)
    limit = Constraint("params", max=10.0)
    assert limit.satisfied(small) and not limit.satisfied(large)
    assert Constraint("params", max=5.0).satisfied(small)  # bounds are inclusive
    assert Constraint("params", min=5.0).satisfied(small)
    assert not Constraint("params", min=6.0).satisfied(small)
    assert Constraint("score", min=85.0, max=95.0).satisfied(small)
    assert not Constraint("flops", max=1e9).satisfied(small)  # a missing metric is not feasible
    assert not limit.satisfied(complete(90.0, params=math.nan))
    assert feasible(small, []) and feasible(large, ())
    assert feasible(small, parse_constraints({"params": {"max": 10}, "score": {"min": 50}}))
    assert not feasible(large, parse_constraints({"params": {"max": 10}, "score": {"min": 50}}))
