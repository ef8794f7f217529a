"""``nas benchmark nb201 --objectives ... --constraint ...``: parsing, the true front of the table, and what a
run reports (hypervolume ratio in [0, 1], feasible test accuracy, share of feasible queries)."""

from __future__ import annotations

import json

import pytest

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.benchmarks import load_nb201, load_nb201_hw
from nas.runtime.benchmark import parse_benchmark_objectives, run_objectives_benchmark, true_front
from nas.trials.objectives import Constraint, Objective


def test_objectives_and_constraints_parse() -> None:
    objectives, constraints = parse_benchmark_objectives("max:score, min:pixel3_latency", ["pixel3_latency <= 5"])
    assert objectives == (Objective("score", "max"), Objective("pixel3_latency", "min"))
    assert constraints == (Constraint("pixel3_latency", max=5.0),)
    assert parse_benchmark_objectives(None, None) == ((Objective(),), ())


@pytest.mark.parametrize(("objectives", "constraint", "message"), [
    ("max:score,min:pixel3_latncy", [], r"no metric 'pixel3_latncy'.*did you mean 'pixel3_latency'"),
    ("max:score,min:params,min:flops", [], r"3 objectives.*at most two"),
    ("min:params,max:score", [], r"first objective must be max:score"),
    ("max:score,,", [], r"comma-separated"),
    ("max:score,least:params", [], r"'least' must be 'max' or 'min'"),
    (None, ["pixel3_latency < 5"], r"--constraint = 'pixel3_latency < 5' is not a bound.*METRIC <= NUMBER"),
    (None, ["raspi_latency <= 5"], r"no metric 'raspi_latency'.*did you mean 'raspi4_latency'"),
])
def test_bad_objectives_and_constraints_are_refused(objectives: str | None, constraint: list[str],
                                                    message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_benchmark_objectives(objectives, constraint)


def test_true_front_from_the_table() -> None:
    objectives, constraints = parse_benchmark_objectives("max:score,min:pixel3_latency")
    true = true_front("cifar10", objectives, constraints)
    hw, records = load_nb201_hw("cifar10"), load_nb201()
    points = {(r.cifar10_val200, -hw[r.index]["pixel3_latency"]) for r in records}
    assert set(true.points) <= points
    for a, b in true.points:  # nothing in the table dominates a front point
        assert not any(x >= a and y >= b and (x, y) != (a, b) for x, y in points)
    assert true.points[-1][0] == max(p[0] for p in points)  # the most accurate cell ends the front
    assert true.hv > 0
    _, constraints = parse_benchmark_objectives(None, ["pixel3_latency <= 5"])
    bounded = true_front("cifar10", (Objective(),), constraints)
    feasible = [r for r in records if hw[r.index]["pixel3_latency"] <= 5]
    assert bounded.feasible_share == len(feasible) / len(records)
    assert bounded.best_test == max(feasible, key=lambda r: r.cifar10_val200).cifar10_test200


def test_a_run_reports_hypervolume_and_feasibility() -> None:
    objectives, constraints = parse_benchmark_objectives("max:score,min:jetson_tx2_energy", ["params <= 800000"])
    report = run_objectives_benchmark("evolution", objectives=objectives, constraints=constraints, queries=30,
                                      seeds=2)
    summary = report.summary()
    assert set(summary["queries"]) == {"10", "25"}
    for q in ("10", "25"):
        entry = summary["queries"][q]
        assert 0 <= entry["hv_ratio"]["mean"] <= 1 and 0 < entry["feasible_rate"] <= 1
    ratios = [h[-1] for h in report.hv]
    assert all(0 < r <= 1 for r in ratios)
    assert all(h == sorted(h) for h in report.hv)  # the found front only grows


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "nb201", "--strategy", "random", "--constraint", "pixel3_latency <= 5",
                 "--queries", "25", "--seeds", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["constraints"] == ["pixel3_latency <= 5"]
    assert 0 < summary["queries"]["25"]["feasible_rate"] < 1
    assert summary["true"]["best_test"] == pytest.approx(90.7167)
