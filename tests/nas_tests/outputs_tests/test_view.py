"""The read-only view of an experiment (nas.outputs.view) behind `nas status`, `nas report`, `nas export` and
`nas.load_experiment`: it reports what the running Experiment reports, reads a store that is closed, held open
by a writer or left behind by a killed writer (its WAL included) without creating or modifying any file, and
names the directory when it is not an experiment (CLI exit 2)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _experiments import run_experiment

import nas
from nas.cli import main
from nas.core.errors import ConfigError
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config
from nas.runtime.events import Event, TrialFinished
from nas.runtime.experiment import Experiment
from nas.storage.store import TrialStore
from nas.trials.trial import Result, Trial

TABLE = {"name": "view", "seed": 3, "space": {"name": "nb201"},
         "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
         "evaluator": {"name": "nb201"}, "budget": {"max_trials": 6},
         "execution": {"executor": "local", "workers": 1}}
TRAINED = {"name": "view_trained", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
           "strategy": {"name": "random"},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300},
                         "train": {"epochs": 1, "batch_size": 64, "threads": 1}},
           "budget": {"max_trials": 2}, "execution": {"executor": "local", "workers": 1}}


def listing(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``directory`` (the store's -wal/-shm side files included): size, mtime."""
    return {p.relative_to(directory).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


def test_the_view_reports_what_the_running_experiment_reports(tmp_path: Path) -> None:
    directory = tmp_path / "exp"
    exp = Experiment.create(parse_config(TABLE), directory)
    seen: list[tuple[dict, dict, int, int]] = []

    def during(event: Event) -> None:  # mid-run: the writer holds the store open, trials may be RUNNING
        if isinstance(event, TrialFinished):
            before = listing(directory)
            view = ExperimentView.open(directory)
            seen.append((view.counts(), exp.store.counts(), view.done, exp.done()))
            assert [t.id for t in view.ranked()] == [t.id for t in exp.ranked()]
            assert listing(directory) == before

    exp.run(progress=during)
    assert len(seen) == 6 and all(v == e and vd == ed for v, e, vd, ed in seen)
    failing = Trial(99, exp.ranked()[0].arch, 7)  # a failure, so that the failures table is compared too
    exp.store.submitted(failing)
    exp.store.finished(failing, Result.failed("out of memory"))
    exp.checkpoint()
    assert (directory / "trials.db-wal").is_file()  # the writer's connection is still open

    view = ExperimentView.open(directory)
    assert view.summary(top=3) == exp.summary(top=3)
    assert view.summary()["failures"] == {"out of memory": 1} and view.counts() == {"COMPLETE": 6, "FAILED": 1}
    assert view.ranked() == exp.ranked() and view.done == exp.done() == 7
    assert view.elapsed == exp.elapsed and view.config == exp.cfg
    assert list(view.trials) == exp.store.trials()
    exp.close()
    # trial 99 was written behind the strategy's back: a writer refuses the directory, the view still reads it
    before = listing(directory)
    with pytest.raises(ConfigError, match="never asked"):
        Experiment.open(directory)
    assert listing(directory) == before
    assert ExperimentView.open(directory).summary(top=10)["counts"] == {"COMPLETE": 6, "FAILED": 1}


def test_a_supernet_search_under_way_is_summarised_as_the_experiment_does(tmp_path: Path) -> None:
    cfg = {**TABLE, "strategy": {"name": "darts", "options": {"epochs": 4, "task": "digits",
                                                               "space_options": {"C": 2, "N": 1}}}}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    try:
        assert ExperimentView.open(exp.directory).supernet_summary() == exp.summary()["supernet"] == {
            "state": "searching", "epochs_run": 0, "epochs": 4}
        (exp.directory / "supernet").mkdir()
        (exp.directory / "supernet" / "history.json").write_text(json.dumps([{"epoch": 0}, {"epoch": 1}]))
        assert ExperimentView.open(exp.directory).summary() == exp.summary()
        assert exp.summary()["supernet"]["epochs_run"] == 2
    finally:
        exp.close()
    assert ExperimentView.open(tmp_path / "exp").supernet_summary() == {"state": "searching", "epochs_run": 2,
                                                                         "epochs": 4}


WEIGHT_SHARING = {**TABLE, "space": {"name": "nb201", "options": {"C": 2, "N": 1}}, "strategy": {"name": "random"},
                  "evaluator": {"name": "weight_sharing", "task": "digits", "task_options": {"limit": 200},
                                "train": {"epochs": 1, "batch_size": 32}, "options": {"supernet_epochs": 5}}}
DARTS = {**TABLE, "strategy": {"name": "darts", "options": {"epochs": 4, "task": "digits",
                                                             "space_options": {"C": 2, "N": 1}}}}


def _status(directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["status", str(directory)]) == 0
    return capsys.readouterr().out


def test_a_weight_sharing_training_under_way_is_summarised_and_shown_by_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exp = Experiment.create(parse_config(WEIGHT_SHARING), tmp_path / "exp")
    try:
        assert ExperimentView.open(exp.directory).evaluator_job_summary() == exp.summary()["evaluator_job"] == {
            "state": "training", "kind": "weight_sharing", "epochs_run": 0, "epochs": 5}
        (exp.directory / "weight_sharing").mkdir()
        (exp.directory / "weight_sharing" / "history.json").write_text(json.dumps([{"epoch": 0}, {"epoch": 1}]))
        view = ExperimentView.open(exp.directory)
        assert view.summary()["evaluator_job"] == exp.summary()["evaluator_job"]
        assert view.evaluator_job_summary() == {"state": "training", "kind": "weight_sharing", "epochs_run": 2,
                                                "epochs": 5}
        assert view.summary()["supernet"] is None  # the random strategy runs no job of its own
    finally:
        exp.close()
    out = _status(tmp_path / "exp", capsys)
    assert "weight-sharing supernet: 2/5 epochs done (`nas resume` continues it)" in out
    assert "supernet search" not in out


@pytest.mark.parametrize("config, folder, line", [
    (DARTS, "supernet", "supernet search: 2/4 epochs done"),
    (WEIGHT_SHARING, "weight_sharing", "weight-sharing supernet: 2/5 epochs done")], ids=["darts", "weight_sharing"])
def test_a_job_under_way_is_read_from_the_storage_location(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], config: dict, folder: str, line: str) -> None:
    """With ``execution.storage`` the job's files are under ``<storage>/<name>/<folder>``, not in the
    experiment's directory: status reads them there."""
    storage = tmp_path / "shared"
    cfg = {**config, "execution": {**config["execution"], "storage": str(storage)}}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    try:
        assert exp.job_context(folder).files is not None  # where the experiment's job writes
        exp.job_context(folder).files.write("history.json", json.dumps([{"epoch": 0}, {"epoch": 1}]).encode())
        assert (storage / cfg["name"] / folder / "history.json").is_file()
        summary = exp.summary()
        assert ExperimentView.open(exp.directory).summary() == summary
        assert summary["supernet" if folder == "supernet" else "evaluator_job"]["epochs_run"] == 2
    finally:
        exp.close()
    assert line in _status(tmp_path / "exp", capsys)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished, cleanly closed experiment whose models can be exported (2 trials trained 1 epoch)."""
    return run_experiment(TRAINED, tmp_path_factory.mktemp("view") / "exp")


def _in_state(trained: Path, tmp_path: Path, state: str) -> tuple[Path, TrialStore | None]:
    """A copy of the experiment: ``closed`` (no -wal), ``live`` (a writer holds the store open, a RUNNING trial
    in its WAL) or ``killed`` (the -wal and -shm of a writer that died, the RUNNING trial only in the WAL)."""
    directory = tmp_path / "exp"
    shutil.copytree(trained, directory)
    if state == "closed":
        return directory, None
    writer = TrialStore(directory / "trials.db")
    writer.submitted(Trial(50, writer.trials()[0].arch, 1))
    if state == "live":
        return directory, writer
    shutil.copytree(directory, tmp_path / "killed")
    writer.close()
    return tmp_path / "killed", None


@pytest.mark.parametrize("state", ["closed", "live", "killed"])
def test_status_report_export_and_load_experiment_create_or_modify_no_file(
        trained: Path, tmp_path: Path, state: str, capsys: pytest.CaptureFixture[str]) -> None:
    directory, writer = _in_state(trained, tmp_path, state)
    assert (directory / "trials.db-wal").exists() == (state != "closed")
    before = listing(directory)
    try:
        results = nas.load_experiment(directory)
        assert results.counts() == ({"COMPLETE": 2} if state == "closed" else {"COMPLETE": 2, "RUNNING": 1})
        assert listing(directory) == before
        assert main(["status", str(directory)]) == 0
        assert f"view_trained: 2/2 trials, {results.counts()}" in capsys.readouterr().out
        assert main(["status", str(directory), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["done"] == 2 and summary["counts"] == results.counts()
        assert [b["id"] for b in summary["best"]] == [t.id for t in results.ranked()]
        assert listing(directory) == before
        assert main(["report", str(directory), "--out", str(tmp_path / "report.html"), "--images", "2"]) == 0
        assert listing(directory) == before
        assert main(["export", str(directory), "--out", str(tmp_path / "export"), "--format", "json",
                     "--quiet"]) == 0
        assert listing(directory) == before
    finally:
        if writer is not None:
            writer.close()
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["models"][0]["trial_id"] == results.ranked()[0].id
    assert "view_trained" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("kind", ["missing", "empty", "config only", "store only", "corrupt store"])
@pytest.mark.parametrize("command", ["status", "report", "export"])
def test_a_directory_that_is_not_an_experiment_exits_2_naming_it(
        trained: Path, tmp_path: Path, kind: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "d"
    if kind != "missing":
        directory.mkdir()
    if kind in ("config only", "corrupt store"):
        shutil.copy(trained / "config.yaml", directory)
    if kind == "store only":
        shutil.copy(trained / "trials.db", directory)
    if kind == "corrupt store":
        (directory / "trials.db").write_text("not a database")
    before = listing(directory) if directory.exists() else None
    assert main([command, str(directory)]) == 2
    err = capsys.readouterr().err
    assert str(directory) in err
    assert ("not a readable trial store" if kind == "corrupt store" else "is not an experiment directory") in err
    assert (listing(directory) if directory.exists() else None) == before
    with pytest.raises(ConfigError, match="not a readable trial store" if kind == "corrupt store"
                       else "is not an experiment directory"):
        nas.load_experiment(directory)


def test_the_view_imports_neither_torch_nor_ray() -> None:
    code = ("import sys, nas.outputs.view; "
            "print(sorted(m for m in ('torch', 'ray', 'optuna', 'matplotlib') if m in sys.modules))")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_read_only_store_refuses_writes_and_needs_an_existing_file(tmp_path: Path) -> None:
    writer = TrialStore(tmp_path / "trials.db")
    writer.set_meta("version", "1")
    writer.close()
    reader = TrialStore(tmp_path / "trials.db", readonly=True)
    with pytest.raises(ConfigError, match="readonly"):
        reader.set_meta("version", "2")
    assert reader.meta("version") == "1"
    reader.close()
    with pytest.raises(ConfigError, match="missing"):
        TrialStore(tmp_path / "other.db", readonly=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.db"]


def test_a_writer_busy_during_every_copy_is_read_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is copied for reading; when a real writer writes during each copy, the reader opens the live
    file read-only instead and sees the newest rows."""
    import nas.storage.store as store_module

    writer = TrialStore(tmp_path / "trials.db")
    writer.set_meta("n", 0)
    copies = {"n": 0}
    real_copy = shutil.copyfile

    def copy_while_writing(src: str | Path, dst: str | Path) -> str | Path:
        out = real_copy(src, dst)
        copies["n"] += 1
        writer.set_meta("n", copies["n"])
        return out

    monkeypatch.setattr(store_module.shutil, "copyfile", copy_while_writing)
    reader = TrialStore(tmp_path / "trials.db", readonly=True)
    try:
        assert reader.meta("n") == copies["n"] == 6  # three attempts of two files each, then the live file
    finally:
        reader.close()
        writer.close()


def test_the_view_builds_no_space_strategy_or_evaluator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading an experiment (status, report summary, export's ranking) only reads its files: its already
    validated config is typed, not built again."""
    exp = Experiment.create(parse_config(TABLE), tmp_path / "exp")
    exp.run()
    expected = exp.summary(top=3)
    exp.close()
    from nas.evaluation.evaluators import Evaluator
    from search_spaces.base import SearchSpace
    from strategies.base import Strategy

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"the view built a {type(self).__name__}")

    for cls in (SearchSpace, Strategy, Evaluator):
        monkeypatch.setattr(cls, "__init__", refuse, raising=False)
    view = ExperimentView.open(tmp_path / "exp")
    assert view.summary(top=3) == expected and len(view.ranked()) == 6


def test_nas_status_imports_no_torch(tmp_path: Path) -> None:
    """Whether the strategy runs a job is recorded at creation, so status need not import the strategies."""
    config = {"name": "light", "seed": 0, "space": {"name": "nb201"}, "strategy": {"name": "random"},
              "evaluator": {"name": "nb201"}, "budget": {"max_trials": 2},
              "execution": {"executor": "local", "workers": 1}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["search", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "exp"), "--quiet"]) == 0
    code = ("import sys; from nas.cli import main; code = main(['status', sys.argv[1]]); "
            "print(code, sorted(m for m in ('torch', 'strategies') if m in sys.modules))")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "exp")], cwd=root, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr
