"""What the experiment-level tests share (runtime, storage, one-shot, weight sharing, outputs): run a config to
the end, write it to a file for the CLI, kill ``nas search`` at a chosen moment (a fault point, or partway
through a job's epochs), and load a script of ``experiments/benchmarks`` as a module. Imported as
``from _experiments import ...`` (``tests/`` is on the path, as for ``conftest``, ``devtools`` and
``bad_inputs``)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from nas.cli import main
from nas.runtime.config import ExperimentConfig, parse_config
from nas.runtime.experiment import Experiment
from nas.storage.faults import FAULT_ENV
from nas.storage.store import StoredTrial

__all__ = ["BENCHMARKS", "kill_mid_job", "killed_at", "load_benchmark", "run_experiment", "run_ranked", "stored",
           "write_config"]

#: the benchmark scripts
BENCHMARKS = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def run_experiment(config: dict[str, Any], directory: Path) -> Path:
    """Create the experiment of ``config`` in ``directory``, run it to its budget and close it; ``directory``."""
    exp = Experiment.create(parse_config(config), directory)
    try:
        exp.run()
    finally:
        exp.close()
    return directory


def run_ranked(config: ExperimentConfig, directory: Path) -> tuple[list[StoredTrial], list[StoredTrial]]:
    """Create the experiment of ``config`` in ``directory`` and run it to its budget: its ranking (best first) and
    every stored trial (failed ones with their reasons, for the assertion messages)."""
    exp = Experiment.create(config, directory)
    try:
        ranked = exp.run()
        return ranked, exp.store.trials()
    finally:
        exp.close()


def stored(directory: Path) -> list[tuple[int, str, int, str, float | None]]:
    """The store's trials of the experiment in ``directory`` as (id, hash, seed, status, score), by id: what two
    runs that must agree (resumed and uninterrupted) are compared by."""
    exp = Experiment.open(directory)
    try:
        return [(t.id, t.hash, t.seed, t.status, t.score) for t in exp.store.trials()]
    finally:
        exp.close()


def write_config(folder: Path, config: dict[str, Any], name: str = "search.yaml") -> Path:
    """``config`` as a YAML file ``name`` in ``folder``, for ``nas search``; its path."""
    path = folder / name
    path.write_text(yaml.safe_dump(config))
    return path


def killed_at(argv: list[str], spec: str) -> bool:
    """Run ``nas argv`` in a forked child with ``NAS_FAULT_AT=spec``; True if the hook killed it (SIGKILL),
    False if it ended by itself (exit 0; any other exit fails the test)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.environ[FAULT_ENV] = spec
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = main(argv)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"nas {' '.join(argv)} with {spec} exited {os.WEXITSTATUS(status)}"
    return False


def kill_mid_job(config_file: Path, out: Path, folder: str, *, epochs: int = 2, timeout: float = 120.0,
                 env: dict[str, str] | None = None) -> int:
    """Start ``nas search config_file --out out`` in a subprocess and kill it (SIGKILL) as soon as the job that
    keeps its files in ``out/folder`` (``supernet``, ``weight_sharing``) has recorded ``epochs`` epochs, or after
    ``timeout`` seconds, or when it ends by itself; the epochs recorded by then."""
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "search", str(config_file), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or {**os.environ})
    history = out / folder / "history.json"
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if history.is_file():
            done = len(json.loads(history.read_text()))
            if done >= epochs:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return done


def load_benchmark(filename: str) -> ModuleType:
    """The benchmark script ``experiments/benchmarks/<filename>`` loaded as the module ``benchmark_<stem>``
    (registered in ``sys.modules``: dataclasses look their module up), without running its ``main``."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{Path(filename).stem.lstrip('_')}",
                                                  BENCHMARKS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def benchmark_script(filename: str) -> Iterator[ModuleType]:
    """:func:`load_benchmark` with ``experiments/benchmarks`` on ``sys.path`` while in use, as when the script runs
    (it imports its siblings, e.g. ``_results``); both undone on exit."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield load_benchmark(filename)
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop(f"benchmark_{Path(filename).stem.lstrip('_')}", None)
