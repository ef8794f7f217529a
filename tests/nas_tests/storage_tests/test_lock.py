"""One writer per experiment (nas.storage.lock): while an Experiment that can write is open, a second writer (in
this process or another, `nas resume` or `nas search --overwrite`) is refused with exit 2 naming the holder's
host, pid and start time, and nothing changes; readers (status, the view) take no lock; the lock of a SIGKILLed
holder is taken over; closing (or a refused open) releases it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _experiments import run_experiment

from nas.cli import main
from nas.core.errors import ConfigError
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.lock import LOCK_FILE, ExperimentLock, read_holder

CONFIG = {"name": "lock", "seed": 1, "space": {"name": "nb201"}, "strategy": {"name": "random"},
          "evaluator": {"name": "nb201"}, "budget": {"max_trials": 4},
          "execution": {"executor": "local", "workers": 1}}


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return run_experiment(CONFIG, tmp_path / "exp")


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_an_open_writer_holds_the_lock_and_names_itself(experiment: Path) -> None:
    assert not (experiment / LOCK_FILE).exists()  # create .. close held it, close removed the note
    exp = Experiment.open(experiment)
    try:
        holder = read_holder(experiment)
        assert holder is not None and holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(ConfigError, match=rf"in use by process {os.getpid()} on host") as info:
            Experiment.open(experiment)  # a second writer, even in the same process
        assert "since" in str(info.value) and "nas status" in str(info.value)
        with pytest.raises(ConfigError, match="in use by"):
            Experiment.create(parse_config(CONFIG), experiment, overwrite=True)
        assert ExperimentView.open(experiment).done == 4  # readers take no lock
    finally:
        exp.close()
    assert not (experiment / LOCK_FILE).exists()
    Experiment.open(experiment, max_trials=5).close()  # released: the next writer gets it


def test_a_second_process_exits_2_naming_the_holder_and_changes_nothing(
        experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = experiment.parent / "search.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    exp = Experiment.open(experiment)
    try:
        before = files(experiment)
        holder = f"in use by process {os.getpid()} on host {socket.gethostname()!r}"
        proc = subprocess.run([sys.executable, "-m", "nas.cli", "resume", str(experiment), "--max-trials", "8"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 2, proc.stderr
        assert holder in proc.stderr and "Traceback" not in proc.stderr
        assert files(experiment) == before
        assert main(["search", str(config), "--out", str(experiment), "--overwrite"]) == 2
        assert holder in capsys.readouterr().err
        assert files(experiment) == before
        assert main(["status", str(experiment)]) == 0  # a reader, meanwhile
        assert "4/4 trials" in capsys.readouterr().out
        assert files(experiment) == before
    finally:
        exp.close()


def test_the_lock_of_a_killed_holder_is_taken_over(experiment: Path) -> None:
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the lock, say so, wait to be killed
        try:
            ExperimentLock.acquire(experiment)
            os.write(ready_w, b"1")
            signal.pause()
        finally:
            os._exit(1)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"1"
        assert read_holder(experiment)["pid"] == pid  # type: ignore[index]  # a holder is there
        with pytest.raises(ConfigError, match=f"in use by process {pid}"):
            Experiment.open(experiment)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
    assert json.loads((experiment / LOCK_FILE).read_text())["pid"] == pid  # stale note, no flock behind it
    exp = Experiment.open(experiment, max_trials=6)
    try:
        assert read_holder(experiment)["pid"] == os.getpid()  # type: ignore[index]  # a holder is there
        exp.run()
        assert exp.done() == 6
    finally:
        exp.close()


def test_refused_opens_and_failed_creations_release_the_lock(experiment: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="below"):
        Experiment.open(experiment, max_trials=1)
    (experiment / "checkpoint.json").write_text("{")
    with pytest.raises(ConfigError, match="corrupt"):
        Experiment.open(experiment)
    ExperimentLock.acquire(experiment).release()
    with pytest.raises(ConfigError):  # an unknown strategy: refused before anything is created
        Experiment.create(parse_config({**CONFIG, "strategy": {"name": "nope"}}), tmp_path / "new")
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_a_lock_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot open the experiment directory"):
        ExperimentLock.acquire(tmp_path / "missing")
    lock = ExperimentLock.acquire(tmp_path)
    assert lock.held
    lock.release()
    lock.release()  # idempotent
    assert not lock.held and not (tmp_path / LOCK_FILE).exists()
