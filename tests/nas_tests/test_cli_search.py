"""The `nas` command line around a search (nas.cli): `search` writes the experiment directory and prints the
top trials, refuses to overwrite an experiment (exit 2, nothing changed), `resume` and `status` refuse what
is not an experiment, an interrupted search says how to resume, and the listing commands print names."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.evaluation.evaluators import list_evaluators
from nas.evaluation.gan import GanEvaluator  # noqa: F401  (registered, as `nas evaluators` does)
from nas.evaluation.ssl import SslEvaluator  # noqa: F401  (registered, as `nas evaluators` does)
from nas.evaluation.tasks import list_tasks
from nas.graph.architecture import Architecture
from nas.runtime.config import load_config
from nas.runtime.executors import LocalExecutor
from nas.weightsharing.evaluator import WeightSharingEvaluator  # noqa: F401  (registered, as `nas evaluators` does)
from strategies import list_strategies

CONFIG = {"name": "cli", "seed": 2, "space": {"name": "nb201"},
          "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
          "evaluator": {"name": "nb201"}, "budget": {"max_trials": 8},
          "execution": {"executor": "local", "workers": 1}}
FILES = ["best.json", "checkpoint.json", "config.yaml", "search.log", "trials.db"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def _snapshot(directory: Path) -> dict[str, object]:
    """Every file's bytes; the store's content as an SQL dump (its WAL side files come and go with the
    connections, which the in-process CLI leaves to the garbage collector)."""
    snap: dict[str, object] = {}
    for p in sorted(directory.iterdir()):
        if p.suffix == ".db":
            con = sqlite3.connect(p)
            snap[p.name] = list(con.iterdump())
            con.close()
        elif not p.name.endswith(("-wal", "-shm")):
            snap[p.name] = p.read_bytes()
    return snap


def test_search_prints_top_trials_and_writes_the_directory(tmp_path: Path, config: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    assert main(["search", str(config), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"experiment directory: {out}" in text
    assert "[8/8] trial" in text  # progress lines
    assert "top 5 by validation score" in text and f"best architecture: {out / 'best.json'}" in text
    table = text[text.index("top 5"):].splitlines()[2:7]
    assert [line.split()[0] for line in table] == ["1", "2", "3", "4", "5"]
    scores = [float(line.split()[2]) for line in table]
    assert scores == sorted(scores, reverse=True)

    names = {p.name for p in out.iterdir()}
    assert set(FILES) <= names and names - set(FILES) <= {"trials.db-wal", "trials.db-shm"}  # WAL side files
    assert load_config(out / "config.yaml") == load_config(config)
    best = Architecture.from_json((out / "best.json").read_text())
    assert best.space == "nb201"
    log = (out / "search.log").read_text()
    assert "search cli: 0/8 trials done" in log and "[8/8]" in log

    assert main(["status", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 8 and summary["best"][0]["score"] == scores[0]


def test_search_into_an_existing_experiment_exits_2_and_changes_nothing(tmp_path: Path, config: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    assert main(["search", str(config), "--out", str(out), "--quiet"]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(["search", str(config), "--out", str(out), "--quiet", "--seed", "9"]) == 2
    err = capsys.readouterr().err
    assert "already holds an experiment" in err and "nas resume" in err and "--overwrite" in err
    assert _snapshot(out) == before

    assert main(["search", str(config), "--out", str(out), "--quiet", "--seed", "9", "--overwrite"]) == 0
    assert load_config(out / "config.yaml").seed == 9 and _snapshot(out) != before


def test_search_into_a_non_experiment_directory_exits_2(tmp_path: Path, config: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["search", str(config), "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert "not an experiment directory" in capsys.readouterr().err
    assert _snapshot(out) == {"notes.txt": b"keep me"}


@pytest.mark.parametrize("command", ["resume", "status"])
@pytest.mark.parametrize("kind", ["empty", "missing", "other files"])
def test_resume_and_status_of_a_non_experiment_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      command: str, kind: str) -> None:
    directory = tmp_path / "d"
    if kind != "missing":
        directory.mkdir()
    if kind == "other files":
        (directory / "trials.txt").write_text("x")
    assert main([command, str(directory)]) == 2
    assert "is not an experiment directory" in capsys.readouterr().err
    assert kind != "missing" or not directory.exists()


def test_interrupted_search_says_how_to_resume_and_resume_finishes_it(tmp_path: Path, config: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "exp"
    real = LocalExecutor.next_done
    calls = {"n": 0}

    def ctrl_c_after_three(self: LocalExecutor):  # type: ignore[no-untyped-def]  # a stand-in for next_done
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(LocalExecutor, "next_done", ctrl_c_after_three)
    assert main(["search", str(config), "--out", str(out), "--quiet"]) == 1
    assert f"interrupted; continue with: nas resume {out}" in capsys.readouterr().out
    monkeypatch.setattr(LocalExecutor, "next_done", real)

    assert main(["status", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 3
    assert main(["resume", str(out), "--quiet"]) == 0
    assert "top 5 by validation score" in capsys.readouterr().out
    assert main(["status", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["done"] == 8 and summary["counts"] == {"COMPLETE": 8}

    assert main(["resume", str(out), "--max-trials", "10", "--quiet"]) == 0  # extend a finished search
    capsys.readouterr()
    assert main(["status", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 10


@pytest.mark.parametrize("command, names", [("tasks", list_tasks()), ("strategies", list_strategies()),
                                            ("evaluators", list_evaluators())])
def test_listing_commands_print_names(capsys: pytest.CaptureFixture[str], command: str, names: list[str]) -> None:
    assert main([command]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == names and names
    assert {"tasks": "digits", "strategies": "evolution", "evaluators": "nb201"}[command] in printed


def test_demo_searches_then_exports_the_best_model_and_writes_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump({
        "name": "demo", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}}, "strategy": "random",
        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300}, "train": {"epochs": 1}},
        "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}}))
    out = tmp_path / "demo"
    assert main(["demo", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "torchscript onnx python json+weights" in text and f"report: {out / 'report.html'}" in text
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert len(manifest["models"]) == 1 and manifest["models"][0]["verification"]["ok"]
    assert (out / "report.html").stat().st_size > 10_000
