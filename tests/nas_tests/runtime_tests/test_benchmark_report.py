"""``BenchmarkReport.add_search``: the best-by-validation curve both our strategies and Optuna used directly are
reported by (one rule for both, so their tables compare like with like)."""

from __future__ import annotations

import math

from nas.runtime.benchmark import BenchmarkReport


def test_best_by_validation_so_far_keeps_the_earliest_of_a_tie_and_skips_failures() -> None:
    report = BenchmarkReport("s", "cifar10", seeds=1, queries=5)
    # (validation, test): a failure first, then a tie at 90 (the earlier query's test stays), a failure, a better one
    report.add_search([(None, None), (90.0, 93.0), (90.0, 94.0), (None, 99.0), (91.0, 92.5)])
    curve, guide = report.curves[0], report.guide_curves[0]
    assert math.isnan(curve[0]) and guide[0] == float("-inf")  # nothing succeeded yet
    assert curve[1:] == [93.0, 93.0, 93.0, 92.5]  # the test accuracy follows validation, not its own maximum
    assert guide[1:] == [90.0, 90.0, 90.0, 91.0]
    report.add_search([(80.0, 85.0)])
    assert report.curves[1] == [85.0] and len(report.guide_curves) == 2
