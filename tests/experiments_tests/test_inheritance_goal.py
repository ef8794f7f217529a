"""``experiments/benchmarks/inheritance.py``'s goal table: each setting's best validation accuracy at half the
reference's epochs against the reference's final best, paired by seed, with standard errors and the seeds that met
it, and against the control at equal epochs."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest
from _experiments import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("inheritance.py")


def search(*trials: tuple[float, float, float]) -> dict[str, Any]:
    """A saved search: its trials' (epochs, val, test) in completion order."""
    return {"seconds": 1.0, "rows": [{"id": i, "epochs": e, "val": v, "test": t, "copied": 0.0, "fresh": 1.0,
                                      "parent": None, "start": None, "wall": 1.0} for i, (e, v, t) in
                                     enumerate(trials)]}


def test_the_goal_is_paired_by_seed_and_counted(bench: ModuleType) -> None:
    todo = [{"label": "reference", "inherit": None}, {"label": "control", "inherit": None, "growth": True},
            {"label": "inheriting", "inherit": {"epochs": 1}}]
    runs = {  # the reference spends 8 epochs; half of them is 4
        (0, 0): search((4, 70, 71), (4, 80, 79)), (0, 1): search((4, 60, 61), (4, 90, 90)),
        (0, 2): search((4, 70, 71), (1, 85, 84)),  # at 4 epochs: 70; its 85 came after 5
        (1, 0): search((4, 75, 76), (4, 78, 77)), (1, 1): search((4, 74, 70), (4, 74, 70)),
        (1, 2): search((2, 79, 80), (2, 50, 50)),  # 79 at 2 epochs, still the best at 4
    }
    table = bench.goal_table(runs, todo, [0, 1])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    # the inheriting search against the reference's final: 70 - 80 = -10 and 79 - 78 = +1, met on seed 1 only
    diff, se = (-10 + 1) / 2, math.sqrt(((-10 + 4.5) ** 2 + (1 + 4.5) ** 2) / 1) / math.sqrt(2)
    assert f"| {diff:.2f} +/- {se:.2f} |" in rows["inheriting"] and "| 1 of 2 |" in rows["inheriting"]
    # against the control at the same 4 epochs: val 70 - 60 and 79 - 74, test 71 - 61 and 80 - 70
    assert rows["inheriting"].endswith("| 7.50 +/- 2.50 | 10.00 +/- 0.00 |")
    assert "| 0 of 2 | - | - |" in rows["control"]
    assert rows["1"].startswith("| 1 | 78.00 / 77.00 | 75.00 / 76.00 | 74.00 / 70.00 | 79.00 / 80.00 |")
    assert bench.goal_table({(0, 0): runs[(0, 0)]}, todo, [0]) == ""  # no whole seed: no table
