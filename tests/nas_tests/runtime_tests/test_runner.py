"""The search loop and experiment directory (nas.runtime.experiment) on the local executor with the NAS-Bench-201
evaluator: for every strategy an interrupted-then-resumed run stores exactly the trials an uninterrupted run
stores (ids, architecture hashes, seeds, scores), nothing lost or duplicated, however it was stopped; finished
experiments extend; `nas status --json` reports; ranking never looks at test accuracy. One test kills a real
`nas search` process with SIGKILL and resumes it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from _experiments import stored

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.evaluators import Evaluator
from nas.runtime.config import build_space, build_strategy, parse_config
from nas.runtime.events import Event, TrialFinished
from nas.runtime.executors import LocalExecutor
from nas.runtime.experiment import Experiment
from nas.runtime.loop import TrialRecord, rank
from nas.storage.checkpoint import read_checkpoint
from nas.storage.store import RUNNING
from nas.trials.protocols import Completion
from nas.trials.trial import Result, Status, Trial
from strategies import list_strategies, strategy_class

N = 30


#: one-shot strategies first search a small proxy supernet on a digits subset (then the table scores the cells)
ONE_SHOT = {"task": "digits", "task_options": {"limit": 200}, "epochs": 1, "batch_size": 32,
            "space_options": {"C": 2, "N": 1}}


#: every strategy that runs on the nb201 table evaluator: bohb needs epochs to prune (the train evaluator with the
#: Hyperband pruner); its checkpoint and resume are checked by the strategy conformance suite
STRATEGIES = [s for s in list_strategies() if s != "bohb"]


def nb201_config(strategy: str, max_trials: int = N, dedup: bool = True) -> Any:
    options = ONE_SHOT if getattr(strategy_class(strategy), "one_shot", False) else {}
    return parse_config({"name": f"run-{strategy}", "seed": 1, "space": {"name": "nb201"},
                         "strategy": {"name": strategy, "dedup": dedup, "options": options},
                         "evaluator": {"name": "nb201"},
                         "budget": {"max_trials": max_trials},
                         "execution": {"executor": "local", "workers": 1}})


def run_to_end(directory: Path, **open_args: Any) -> None:
    exp = Experiment.open(directory, **open_args)
    try:
        exp.run()
    finally:
        exp.close()


class SimulatedKillError(Exception):
    """Stands for the process dying."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The directory of an uninterrupted N-trial run of a strategy (made once per strategy)."""
    done: dict[str, Path] = {}

    def get(strategy: str) -> Path:
        if strategy not in done:
            directory = tmp_path_factory.mktemp(f"full-{strategy}") / "exp"
            exp = Experiment.create(nb201_config(strategy), directory)
            exp.run()
            exp.close()
            done[strategy] = directory
        return done[strategy]

    return get


def check_complete(rows: list[tuple[int, str, int, str, float | None]], n: int = N) -> None:
    ids = [r[0] for r in rows]
    assert len(rows) == n and len(set(ids)) == n and ids == sorted(ids)
    assert all(r[3] == "COMPLETE" for r in rows)
    assert len({r[1] for r in rows}) == n  # deduplication: each function is evaluated once


def test_uninterrupted_runs_are_complete_and_reproducible(uninterrupted: Callable[[str], Path],
                                                          tmp_path: Path) -> None:
    for strategy in STRATEGIES:
        check_complete(stored(uninterrupted(strategy)))
    again = tmp_path / "again"  # same config, same seed -> the same trials
    exp = Experiment.create(nb201_config("evolution"), again)
    exp.run()
    exp.close()
    assert stored(again) == stored(uninterrupted("evolution"))


class DyingExecutor(LocalExecutor):
    """Delivers ``after`` results, then 'dies' while the next trial is in flight (its result is lost)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def next_done(self) -> Completion:
        if self.after == 0:
            raise SimulatedKillError
        self.after -= 1
        return super().next_done()


def interrupt(exp: Experiment, mode: str, k: int) -> None:
    """Run ``exp`` and stop it after ``k`` trials, in one of three ways."""
    if mode == "progress":  # after the k-th result is stored and checkpointed
        def progress(event: Event) -> None:
            if isinstance(event, TrialFinished) and event.n == k:
                raise SimulatedKillError

        with pytest.raises(SimulatedKillError):
            exp.run(progress=progress)
    elif mode == "in-flight":  # with trial k submitted (store: RUNNING, checkpoint: pending) but its result lost
        with pytest.raises(SimulatedKillError):
            exp.run(executor=DyingExecutor(k))
    else:  # "before-checkpoint": the k-th result is in the store but no checkpoint after it is ever written
        real = exp.checkpoint

        def checkpoint(session_seconds: float = 0.0) -> None:
            if exp.done() >= k:
                raise SimulatedKillError
            real(session_seconds)

        exp.checkpoint = checkpoint  # type: ignore[method-assign]  # patched to simulate a kill
        with pytest.raises(SimulatedKillError):
            exp.run()


MODES = {"progress": 13, "in-flight": 23, "before-checkpoint": 7}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_interrupted_run_resumes_to_the_same_trials(uninterrupted: Callable[[str], Path], tmp_path: Path,
                                                    strategy: str, mode: str) -> None:
    k = MODES[mode]
    directory = tmp_path / "exp"
    exp = Experiment.create(nb201_config(strategy), directory)
    interrupt(exp, mode, k)
    exp.close()
    partial = stored(directory)
    finished = [r for r in partial if r[3] != RUNNING]
    assert len(finished) == k
    if mode == "in-flight":
        assert [r[3] for r in partial].count(RUNNING) == 1

    run_to_end(directory)
    rows = stored(directory)
    check_complete(rows)
    assert rows == stored(uninterrupted(strategy))
    assert rows[:k] == finished  # nothing already done was redone or changed
    assert read_checkpoint(directory / "checkpoint.json")["loop"]["done"] == N
    if mode == "in-flight":
        exp = Experiment.open(directory)
        assert exp.store.get(partial[-1][0]).attempts == 2  # the lost trial ran again, under its own id
        exp.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_finished_experiment_extends_to_a_larger_budget(uninterrupted: Callable[[str], Path], tmp_path: Path,
                                                        strategy: str) -> None:
    directory = tmp_path / "exp"
    shutil.copytree(uninterrupted(strategy), directory)
    run_to_end(directory)  # the budget is spent: nothing happens
    assert stored(directory) == stored(uninterrupted(strategy))

    run_to_end(directory, max_trials=40)
    rows = stored(directory)
    check_complete(rows, 40)
    assert rows[:N] == stored(uninterrupted(strategy))
    assert yaml.safe_load((directory / "config.yaml").read_text())["budget"]["max_trials"] == 40

    straight = tmp_path / "straight"  # the extension proposes what a 40-trial run would have
    exp = Experiment.create(nb201_config(strategy, 40), straight)
    exp.run()
    exp.close()
    assert stored(straight) == rows


def test_max_trials_below_done_is_refused(uninterrupted: Callable[[str], Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "exp"
    shutil.copytree(uninterrupted("random"), directory)
    config_before = (directory / "config.yaml").read_text()
    with pytest.raises(ConfigError, match=f"below the {N} trials already done"):
        Experiment.open(directory, max_trials=N - 1)
    assert main(["resume", str(directory), "--max-trials", "10"]) == 2
    assert "--max-trials 10" in capsys.readouterr().err
    assert (directory / "config.yaml").read_text() == config_before
    run_to_end(directory, max_trials=N)  # equal to done: allowed, nothing to run
    assert len(stored(directory)) == N


def test_status_json_reports_counts_and_best_by_score(uninterrupted: Callable[[str], Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    directory = uninterrupted("evolution")
    capsys.readouterr()
    assert main(["status", str(directory), "--json", "--top", "7"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"COMPLETE": N} and summary["done"] == N and summary["max_trials"] == N
    assert summary["failures"] == {} and summary["name"] == "run-evolution"
    best = summary["best"]
    assert len(best) == 7
    scores = [b["score"] for b in best]
    assert scores == sorted(scores, reverse=True)
    all_scores = sorted((r[4] for r in stored(directory)), reverse=True)
    assert scores == all_scores[:7]
    assert all(b["test_acc"] is not None and b["val_acc"] == b["score"] for b in best)

    assert main(["status", str(directory)]) == 0
    text = capsys.readouterr().out
    assert f"{N}/{N} trials" in text and "never used to choose" in text


class InvertedEvaluator(Evaluator):
    """Scores that disagree with test accuracy: the best validation score has the worst test accuracy."""

    name = "inverted"

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        score = float((trial.id * 7) % 11)
        if trial.id == 3:
            return Result.failed("synthetic failure")
        return Result(Status.COMPLETE, score=score, metrics={"val_acc": score, "test_acc": 100.0 - score})


def test_ranking_uses_the_validation_score_never_test_accuracy(tmp_path: Path) -> None:
    cfg = nb201_config("random", 10, dedup=False)
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.evaluator = InvertedEvaluator()
    ranked = exp.run()
    assert [t.id for t in ranked] == sorted((t.id for t in ranked), key=lambda i: (-((i * 7) % 11), i))
    assert 3 not in [t.id for t in ranked] and len(ranked) == 9
    assert ranked[0].metrics["test_acc"] == min(t.metrics["test_acc"] for t in ranked)
    best = json.loads((tmp_path / "exp" / "best.json").read_text())
    assert best == json.loads(ranked[0].arch.to_json())
    summary = exp.summary(top=3)
    assert [b["id"] for b in summary["best"]] == [t.id for t in ranked[:3]]
    assert summary["failures"] == {"synthetic failure": 1} and summary["counts"] == {"COMPLETE": 9, "FAILED": 1}
    exp.close()

    arch = ranked[0].arch
    records = [TrialRecord(Trial(i, arch), Result(Status.COMPLETE, score=s, metrics={"test_acc": t}), 0.0)
               for i, (s, t) in enumerate([(50.0, 99.0), (90.0, 1.0), (70.0, 50.0), (None, 100.0)])]
    records.append(TrialRecord(Trial(9, arch), Result.failed("x", metrics={"test_acc": 100.0}), 0.0))
    assert [r.trial.id for r in rank(records)] == [1, 2, 0]


def test_search_log_and_best_file(uninterrupted: Callable[[str], Path]) -> None:
    directory = uninterrupted("random")
    log = (directory / "search.log").read_text().splitlines()
    assert sum(f"[{i}/{N}]" in line for line in log for i in range(1, N + 1)) == N
    assert (directory / "best.json").is_file()


# -- SIGKILL -------------------------------------------------------------------------------------------------
KILL_TRIALS = 12


def _finished_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM trials WHERE status != ?", (RUNNING,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkilled_search_resumes_to_exactly_max_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {"name": "killed", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
            "strategy": {"name": "random", "dedup": False},
            "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300}, "train": {"epochs": 1}},
            "budget": {"max_trials": KILL_TRIALS},
            "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "exp"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", str(config), "--out", str(out), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _finished_rows(out / "trials.db") < 3:
            assert proc.poll() is None, f"search ended early: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no 3 finished trials within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _finished_rows(out / "trials.db")
    assert 3 <= killed_at < KILL_TRIALS

    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "top 5 by validation score" in capsys.readouterr().out

    con = sqlite3.connect(out / "trials.db")
    try:
        rows = con.execute("SELECT id, hash, seed, status, error FROM trials ORDER BY id").fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == list(range(KILL_TRIALS))  # each id once, none lost
    assert not [r for r in rows if r[3] == RUNNING]
    assert all(r[3] == "COMPLETE" or (r[3] == "FAILED" and r[4]) for r in rows)
    assert read_checkpoint(out / "checkpoint.json")["loop"]["done"] == KILL_TRIALS

    # random search without dedup proposes independently of the results: the store holds its exact sequence
    cfg = parse_config(data)
    strategy = build_strategy(cfg, build_space(cfg))
    expected = []
    for _ in range(KILL_TRIALS):
        (trial,) = strategy.ask(1)
        strategy.tell(trial, Result.failed("unused"))
        expected.append((trial.id, trial.arch.canonical_hash(), trial.seed))
    assert [r[:3] for r in rows] == expected
