"""``nb201_sample_efficiency.py table``: runs of one strategy over the same or disjoint seeds are pooled per seed
(the longest curve of a seed wins), so Optuna's ``GPSampler`` run in chunks of seeds at 300 trials fills the 300
row with its seed count while its 100-trial runs of every seed still fill the rows up to 100."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from _experiments import benchmark_script

GP = "Optuna GPSampler used directly"


@pytest.fixture(scope="module")
def se() -> Iterator[ModuleType]:
    with benchmark_script("nb201_sample_efficiency.py") as module:  # on sys.path: it imports its sibling _results
        yield module


def write(path: Path, strategy: str, first_seed: int, curves: list[list[float]]) -> None:
    path.write_text(json.dumps({"strategy": strategy, "dataset": "cifar100", "first_seed": first_seed,
                                "curves": curves}))


def test_chunked_300_trial_runs_fill_the_300_row_with_their_seed_count(se: ModuleType, tmp_path: Path) -> None:
    write(tmp_path / "gp_bo.json", "gp_bo", 0, [[72.0 + 0.01 * s] * 300 for s in range(50)])
    write(tmp_path / "direct_gp.json", GP, 0, [[71.0 + 0.01 * s] * 100 for s in range(50)])
    # 300-trial chunks: seeds 0-4 and seed 5; seeds 0-5 replace their 100-trial curves, the others stay
    write(tmp_path / "direct_gp300_0.json", GP, 0, [[71.0 + 0.01 * s] * 100 + [72.5] * 200 for s in range(5)])
    write(tmp_path / "direct_gp300_5+1.json", GP, 5, [[71.05] * 100 + [72.5] * 200])
    pooled = se.load_runs(tmp_path).curves
    assert len(pooled[(GP, "cifar100")]) == 50
    assert len(se._at(pooled[(GP, "cifar100")], 100)) == 50
    assert se._at(pooled[(GP, "cifar100")], 300) == [72.5] * 6
    text = se.table(se.load_runs(tmp_path))
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| 3")}
    assert "72.50 ± 0.00 [6]" in rows["| 300"]
    assert "vs GP" in rows["| 300"]  # the margin is taken over the 300-trial GPSampler column


def test_a_column_of_one_seed_has_no_standard_error_and_sets_no_margin(se: ModuleType, tmp_path: Path) -> None:
    write(tmp_path / "gp_bo.json", "gp_bo", 0, [[72.0 + 0.01 * s] * 300 for s in range(50)])
    write(tmp_path / "direct_tpe.json", "Optuna TPESampler used directly", 0, [[71.0] * 300 for _ in range(50)])
    write(tmp_path / "direct_gp300_5+1.json", GP, 5, [[73.0] * 300])
    row = next(line for line in se.table(se.load_runs(tmp_path)).splitlines() if line.startswith("| 300 "))
    assert "| 73.00 [1] |" in row and "nan" not in row
    assert "vs TPE" in row  # not over the one-seed GPSampler column, which has the higher mean


def test_margin_over_a_column_without_spread_says_so(se: ModuleType, tmp_path: Path) -> None:
    write(tmp_path / "gp_bo.json", "gp_bo", 0, [[72.0] * 300 for _ in range(50)])
    write(tmp_path / "direct_gp300.json", GP, 0, [[72.0] * 300 for _ in range(3)])
    row = next(line for line in se.table(se.load_runs(tmp_path)).splitlines() if line.startswith("| 300 "))
    assert "+0.00 (every search of both at one value, vs GP)" in row  # not a division by a zero s.e.


def test_guide_ceiling_is_the_validation_maximum_and_what_its_cells_test_at(se: ModuleType) -> None:
    top, tests = se.guide_ceiling("cifar100")
    assert top == 61.32 and tests == [72.28, 73.0933]  # NAS-Bench-201: two cells tie at the 12-epoch maximum
    top, tests = se.guide_ceiling("cifar10")
    assert top == 91.57 and tests == [94.2967]


def test_guide_table_counts_searches_at_the_guides_maximum(se: ModuleType, tmp_path: Path) -> None:
    at_top = [59.0] * 40 + [61.32] * 260  # reaches the maximum at query 41
    never = [60.0] * 300
    (tmp_path / "gp_bo.json").write_text(json.dumps({
        "strategy": "gp_bo", "dataset": "cifar100", "first_seed": 0, "curves": [[72.0] * 300] * 3,
        "guide_curves": [at_top, at_top, never]}))
    write(tmp_path / "old.json", GP, 0, [[71.0] * 100] * 3)  # no guide curves: left out of the guide table
    text = se.guide_table(se.load_runs(tmp_path))
    assert "61.32; such a search reports 72.28 or 73.09 (2 cells tied, mean 72.69)" in text
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert rows["| 25"] == "| 25 | 0 / 3 |" and rows["| 50"] == "| 50 | 2 / 3 |"
    assert GP not in text


def test_gp_bo_without_the_zero_cost_score_gets_its_own_column_and_margin(se: ModuleType, tmp_path: Path) -> None:
    write(tmp_path / "gp_bo.json", "gp_bo", 0, [[73.0 + 0.01 * (s % 3)] * 300 for s in range(50)])
    write(tmp_path / "blind.json", se.BLIND, 0, [[72.0 + 0.01 * (s % 3)] * 300 for s in range(50)])
    write(tmp_path / "direct_gp.json", GP, 0, [[72.5 + 0.01 * (s % 3)] * 300 for s in range(50)])
    lines = se.table(se.load_runs(tmp_path)).splitlines()
    head = next(line for line in lines if line.startswith("| queries "))
    assert "gp_bo without the zero-cost score (ours)" in head
    assert head.endswith("margin of gp_bo over the better Optuna column | margin of gp_bo without the zero-cost "
                         "score over the better Optuna column |")
    row = next(line for line in lines if line.startswith("| 100 "))
    assert re.search(r"\| \+0\.50 \(\+[\d.]+ s\.e\., vs GP\) \| -0\.50 \(-[\d.]+ s\.e\., vs GP\) \|$", row), row
