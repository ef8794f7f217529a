"""``train_zero_cost.py``'s arithmetic: the best-by-validation trial so far (failures skipped, ties to the earlier)
and the paired difference of the arms, on made-up outcomes (the searches themselves are the benchmark's)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import ModuleType

import pytest
from _experiments import benchmark_script


@pytest.fixture(scope="module")
def tzc() -> Iterator[ModuleType]:
    with benchmark_script("train_zero_cost.py") as module:  # on sys.path: it imports its sibling _results
        yield module


def test_best_so_far_skips_failures_and_keeps_the_earlier_of_a_tie(tzc: ModuleType) -> None:
    trials = [(None, None), (50.0, 48.0), (50.0, 60.0), (70.0, 65.0)]
    assert math.isinf(tzc.best_so_far(trials, 1)[0]) and math.isnan(tzc.best_so_far(trials, 1)[1])
    assert tzc.best_so_far(trials, 3) == (50.0, 48.0)
    assert tzc.best_so_far(trials, 4) == (70.0, 65.0)


def test_the_table_pairs_the_arms_by_seed(tzc: ModuleType) -> None:
    plain, scored = tzc.ARMS
    runs = {}
    for seed in range(3):
        runs[(plain, seed)] = {"trials": [(40.0 + seed, 39.0 + seed)] * 4, "zero_cost_calls": 0,
                               "zero_cost_seconds": 0.0, "seconds": 10.0}
        runs[(scored, seed)] = {"trials": [(42.0 + seed, 40.0 + seed)] * 4, "zero_cost_calls": 3000,
                                "zero_cost_seconds": 15.0, "seconds": 25.0}
    text = tzc._budget_tables("digits", 10, 3, 4, runs)
    row = next(line for line in text.splitlines() if line.startswith("| 4 |"))
    # every seed 2 points higher with the score: the paired difference has no spread
    assert row == "| 4 | 41.00 ± 0.58 | 43.00 ± 0.58 | 2.00 ± 0.00 | 40.00 ± 0.58 | 41.00 ± 0.58 | 1.00 ± 0.00 |"
    assert "| zero_cost: params | 3,000 | 15.0 | 25 |" in text
