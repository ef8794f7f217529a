"""The runners of strategies' jobs (nas.runtime.jobs): a strategy describes its job as data, the runtime finds the
runner registered under the description's name and an executor runs it; the one-shot description needs no torch."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nas.core.errors import NASError
from nas.core.registry import RegistrationError
from nas.oneshot.job import run_supernet_search
from nas.oneshot.spec import SupernetSearch
from nas.runtime.executors import LocalExecutor
from nas.runtime.jobs import JOB_RUNNERS, job_runner, register_job_runner
from nas.trials.protocols import JobContext, JobProgress
from search_spaces import get_space
from strategies import get_strategy


@dataclass(frozen=True)
class Countdown:
    """A toy job description: count down ``epochs`` epochs, one record each, in ``directory``."""

    directory: str
    epochs: int = 3
    name: ClassVar[str] = "countdown"
    label: ClassVar[str] = "toy"

    def read_history(self) -> list[dict[str, Any]]:
        path = Path(self.directory) / "history.json"
        return json.loads(path.read_text()) if path.is_file() else []

    def describe_epoch(self, record: dict[str, Any]) -> str:
        return f"left {record['left']}"

    def failure_hint(self, message: str) -> str:
        return ""


@dataclass(frozen=True)
class Lift:
    """The outcome of a :class:`Countdown`."""

    epochs_run: int

    def to_dict(self) -> dict[str, Any]:
        return {"epochs_run": self.epochs_run}

    def describe(self) -> str:
        return f"{self.epochs_run} epochs"


def run_countdown(spec: Countdown, on_epoch: JobProgress | None = None) -> Lift:
    history = spec.read_history()
    for epoch in range(len(history), spec.epochs):
        history.append({"epoch": epoch, "left": spec.epochs - epoch - 1})
        (Path(spec.directory) / "history.json").write_text(json.dumps(history))
        if on_epoch is not None:
            on_epoch(history[-1])
    return Lift(len(history))


@pytest.fixture
def countdown_runner():
    register_job_runner(Countdown.name, run_countdown)
    yield run_countdown
    JOB_RUNNERS.unregister(Countdown.name)


def test_the_supernet_search_a_one_shot_strategy_describes_is_run_by_the_supernet_runner(tmp_path):
    strategy = get_strategy("darts", space=get_space("nb201", C=2, N=1), seed=0, epochs=2)
    spec = strategy.job(JobContext(task="digits", task_options={"limit": 200}, seed=4, directory=tmp_path))
    assert isinstance(spec, SupernetSearch)
    assert (spec.name, spec.label, spec.epochs, spec.seed, spec.read_history()) == ("supernet", "darts", 2, 4, [])
    assert job_runner(spec) is run_supernet_search
    assert pickle.loads(pickle.dumps(spec)).config == spec.config  # shipped to a Ray worker as it is


def test_a_registered_runner_runs_its_job_on_the_executor_resuming_from_its_history(tmp_path, countdown_runner):
    spec = Countdown(directory=str(tmp_path))
    seen: list[int] = []
    runner = job_runner(spec)
    assert runner is countdown_runner

    outcome = LocalExecutor().run_job(runner, spec, lambda record: seen.append(record["epoch"]))

    assert outcome == Lift(3) and seen == [0, 1, 2]
    assert [spec.describe_epoch(r) for r in spec.read_history()] == ["left 2", "left 1", "left 0"]
    longer = Countdown(directory=str(tmp_path), epochs=4)
    assert LocalExecutor().run_job(runner, longer, lambda record: seen.append(record["epoch"])) == Lift(4)
    assert seen == [0, 1, 2, 3]


def test_a_job_without_a_runner_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(NASError, match=r"no runner for the 'countdown' job of Countdown \(unknown job runner "
                                       r"'countdown'; known: supernet, weight_sharing\); register one with "
                                       r"nas.runtime.jobs.register_job_runner"):
        job_runner(Countdown(directory=str(tmp_path)))


def test_a_runner_is_registered_once_and_must_be_callable(countdown_runner):
    with pytest.raises(RegistrationError, match="job runner 'countdown' is already registered"):
        register_job_runner("countdown", run_countdown)
    with pytest.raises(RegistrationError, match="job runner 'later': expected a callable runner"):
        register_job_runner("later", "nas.oneshot.job:run_supernet_search")  # type: ignore[arg-type]  # refused: the point


def test_the_one_shot_job_description_needs_no_torch():
    code = ("import sys, nas.oneshot.spec, nas.oneshot.outcome; "
            "print(sorted(m for m in ('torch', 'nas.evaluation', 'nas.oneshot.job') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"
