"""The search loop (nas.runtime.loop), the in-process executor (nas.runtime.executors), the NAS-Bench-201 strategy
benchmark (nas.runtime.benchmark) and the ``nas benchmark`` command. Results are table lookups: no training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ready  # one-shot strategies get a real search outcome first

from nas.cli import main
from nas.evaluation.evaluators import Evaluator, NB201Evaluator
from nas.runtime.benchmark import run_benchmark
from nas.runtime.executors import LocalExecutor
from nas.runtime.loop import TrialRecord, rank, run_loop
from nas.trials.protocols import Completion
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space
from strategies import get_strategy, list_strategies

NB201 = get_space("nb201")
EVALUATOR = NB201Evaluator()


class FailingEvaluator(Evaluator):
    """The nb201 lookup, except that every trial whose id is a multiple of 3 fails."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, trial: Trial, on_epoch=None) -> Result:
        self.calls += 1
        return Result.failed("diverged") if trial.id % 3 == 0 else EVALUATOR.evaluate(trial)


class LifoExecutor:
    """Runs up to three trials 'at once' and finishes the most recently submitted first."""

    capacity = 3

    def __init__(self) -> None:
        self.queue: list[Completion] = []
        self.submitted = 0
        self.most_in_flight = 0

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        self.queue.append(Completion(trial, evaluator.evaluate(trial)))
        self.submitted += 1
        self.most_in_flight = max(self.most_in_flight, len(self.queue))

    def next_done(self) -> Completion:
        return self.queue.pop()


# -- run_loop --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dedup", [True, False])
def test_run_loop_runs_exactly_max_trials_in_completion_order(dedup):
    strategy = get_strategy("random", space=NB201, seed=0, dedup=dedup)
    seen: list[TrialRecord] = []
    records = run_loop(strategy, EVALUATOR, LocalExecutor(), max_trials=20, on_record=seen.append)
    assert len(records) == 20
    assert seen == records
    assert all(isinstance(r, TrialRecord) and r.result.ok for r in records)
    ids = [r.trial.id for r in records]
    assert ids == sorted(set(ids))  # one at a time: completion order is proposal order
    if not dedup:
        assert ids == list(range(20))
    times = [r.finished_at for r in records]
    assert times == sorted(times) and times[0] >= 0
    assert strategy.pending == []
    assert strategy.n_told >= 20
    for r in records:
        assert r.result == EVALUATOR.evaluate(r.trial)


def test_run_loop_records_results_in_completion_order_with_parallel_slots():
    strategy = get_strategy("random", space=NB201, seed=0, dedup=False)
    executor = LifoExecutor()
    records = run_loop(strategy, EVALUATOR, executor, max_trials=10)
    assert len(records) == 10 and executor.submitted == 10  # never more submitted than the budget
    assert executor.most_in_flight == 3
    ids = [r.trial.id for r in records]
    assert sorted(ids) == list(range(10)) and ids != sorted(ids)
    assert ids[:2] == [2, 3]  # 0,1,2 submitted; 2 finishes; 3 fills the free slot and finishes first
    assert strategy.pending == []


def test_run_loop_with_no_time_asks_nothing():
    strategy = get_strategy("random", space=NB201, seed=0)
    assert run_loop(strategy, EVALUATOR, LocalExecutor(), max_trials=5, max_seconds=0) == []
    assert strategy.pending == [] and strategy.n_told == 0


@pytest.mark.parametrize("name", list_strategies())
def test_failed_proposals_still_spend_the_whole_budget(name):
    evaluator = FailingEvaluator()
    strategy = ready(get_strategy(name, space=NB201, seed=0))
    records = run_loop(strategy, evaluator, LocalExecutor(), max_trials=24)
    assert len(records) == evaluator.calls == 24
    failed = [r for r in records if r.result.status is Status.FAILED]
    assert failed and all(r.trial.id % 3 == 0 for r in failed)
    assert all(r.result.ok for r in records if r.trial.id % 3)
    ranked = rank(records)
    assert len(ranked) == 24 - len(failed)
    assert ranked[0].result.score == max(r.result.score for r in records if r.result.ok)


# -- rank ------------------------------------------------------------------------------------------------
def record(trial_id: int, score: float | None, test_acc: float, status: Status = Status.COMPLETE) -> TrialRecord:
    arch = NB201.sample(np.random.default_rng(trial_id))
    result = Result(status, score=score, metrics={"val_acc": score or 0.0, "test_acc": test_acc})
    return TrialRecord(Trial(trial_id, arch, trial_id), result, float(trial_id))


def test_rank_sorts_by_validation_score_never_by_test_accuracy():
    records = [
        record(0, 85.0, 95.0),  # the best test accuracy, a mediocre score
        record(1, 90.0, 80.0),
        record(2, None, 99.0, Status.FAILED),
        record(3, 90.0, 99.5),  # ties with trial 1: the earlier trial ranks first
        record(4, 70.0, 99.9, Status.PRUNED),
        record(5, 88.0, 10.0),
        record(6, None, 99.9),  # complete without a score
    ]
    assert [r.trial.id for r in rank(records)] == [1, 3, 5, 0]
    assert [r.trial.id for r in rank(list(reversed(records)))] == [1, 3, 5, 0]
    assert rank([]) == []
    assert rank([records[2]]) == []


# -- the NAS-Bench-201 benchmark -------------------------------------------------------------------------
def check_summary_shape(summary: dict, strategy: str, seeds: int, marks: list[str]) -> None:
    assert list(summary) == ["strategy", "dataset", "seeds", "queries"]
    assert summary["strategy"] == strategy and summary["dataset"] == "cifar10" and summary["seeds"] == seeds
    assert list(summary["queries"]) == marks
    for stats in summary["queries"].values():
        assert list(stats) == ["mean", "std"]
        assert isinstance(stats["mean"], float) and isinstance(stats["std"], float)
        assert 80.0 < stats["mean"] < 95.0 and 0.0 <= stats["std"] < 10.0


def test_run_benchmark_summary_shape():
    report = run_benchmark("random", queries=50, seeds=3)
    summary = report.summary()
    check_summary_shape(summary, "random", 3, ["10", "25", "50"])
    assert json.loads(json.dumps(summary)) == summary
    assert len(report.curves) == 3 and all(len(c) == 50 for c in report.curves)
    assert summary["queries"]["50"]["mean"] == pytest.approx(np.mean([c[-1] for c in report.curves]))
    assert summary["queries"]["50"]["std"] == pytest.approx(np.std([c[-1] for c in report.curves]))
    assert report.overhead_ms() >= 0.0 and report.seconds > 0.0
    # deterministic given the seeds
    assert run_benchmark("random", queries=50, seeds=3).summary() == summary


def test_run_benchmark_best_so_far_follows_validation_not_test():
    report = run_benchmark("evolution", queries=30, seeds=1, dedup=False)
    strategy = get_strategy("evolution", space=NB201, seed=0, dedup=False)
    records = run_loop(strategy, EVALUATOR, LocalExecutor(), max_trials=30)
    expected, guide, best_val, best_test = [], [], -np.inf, np.nan
    for r in records:
        if r.result.score > best_val:
            best_val, best_test = r.result.score, r.result.metrics["test_acc"]
        expected.append(best_test)
        guide.append(best_val)
    assert report.curves[0] == expected
    assert report.guide_curves[0] == guide  # the validation accuracy of that same best cell
    assert guide == sorted(guide)
    assert report.curves[0][-1] == rank(records)[0].result.metrics["test_acc"]


def test_cli_benchmark_writes_its_plot_under_runs_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "nb201", "--strategy", "random", "--queries", "5", "--seeds", "1"]) == 0
    assert "best-so-far curves: runs/benchmarks/nb201_random_cifar10.png" in capsys.readouterr().out
    assert (tmp_path / "runs" / "benchmarks" / "nb201_random_cifar10.png").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing dropped in the working directory


def test_cli_benchmark_prints_the_summary_json_and_writes_the_plot(tmp_path, capsys):
    plot = tmp_path / "p.png"
    argv = ["benchmark", "nb201", "--strategy", "random", "--queries", "25", "--seeds", "2", "--json",
            "--plot", str(plot)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    summary = run_benchmark("random", queries=25, seeds=2).summary()
    assert out == json.dumps(summary) + "\n"
    check_summary_shape(json.loads(out), "random", 2, ["10", "25"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, words", [
    (["--strategy", "nope"], "unknown strategy 'nope'"),
    (["--strategy", "evolutoin"], "did you mean 'evolution'"),
    (["--strategy", "evolution", "--option", "populaton=5"], "did you mean 'population'"),
    (["--strategy", "evolution", "--option", "population=0"], "population"),
    (["--strategy", "evolution", "--option", "population"], "key=value"),
])
def test_cli_benchmark_bad_input_exits_with_code_2(tmp_path, capsys, argv, words):
    plot = tmp_path / "p.png"
    code = main(["benchmark", "nb201", *argv, "--queries", "5", "--seeds", "1", "--json", "--plot", str(plot)])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and words in captured.err
    assert not plot.exists()


def test_cli_benchmark_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["benchmark", "nb101", "--strategy", "random"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
