"""Where MLflow's artifacts go: inside the experiment folder (``<experiment>/mlruns/artifacts``) for a store the
search writes itself, whether the store is the default, a ``tracking_uri`` or ``MLFLOW_TRACKING_URI``; never
MLflow's own default, ``./mlruns`` under the directory the search was started from. A tracking server keeps its
own default, and an MLflow experiment that already exists keeps its location (with a warning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from nas.core.errors import ConfigError
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.tracking.base import TrackedTrial
from nas.tracking.mlflow import MlflowTracker
from nas.tracking.settings import open_trackers, resolve_tracking
from nas.trials.trial import Status
from search_spaces import get_space

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory

TRIALS = 3


def search(directory: Path, tracking: dict[str, Any]) -> None:
    """A tiny real search (3 nb201 cells looked up in the benchmark table) with ``tracking``."""
    cfg = {"name": "art", "seed": 0, "space": {"name": "nb201"}, "strategy": {"name": "random"},
           "evaluator": {"name": "nb201"}, "budget": {"max_trials": TRIALS},
           "execution": {"executor": "local", "workers": 1}, "tracking": tracking}
    exp = Experiment.create(parse_config(cfg), directory)
    try:
        exp.run()
    finally:
        exp.close()


def runs(uri: str, name: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    assert found is not None
    return list(client.search_runs([found.experiment_id]))


@pytest.mark.parametrize("given", ["tracking_uri", "environment"])
def test_artifacts_of_a_given_store_go_inside_the_experiment_not_the_working_directory(
        given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, exp, db = tmp_path / "cwd", tmp_path / "exp", tmp_path / "elsewhere" / "x.db"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # where a user typed `nas search`
    uri = f"sqlite:///{db}"
    if given == "environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        search(exp, {"mlflow": True})
        assert not (exp / "mlruns" / "mlflow.db").exists()  # the store MLflow's environment names, not ours
    else:
        search(exp, {"mlflow": {"tracking_uri": uri}})
    assert list(cwd.iterdir()) == []
    assert db.is_file() and sorted(p.name for p in db.parent.iterdir()) == ["x.db"]
    root = (exp / "mlruns" / "artifacts").as_uri()
    found = runs(uri, "art")
    trials = [r for r in found if r.data.tags.get("nas.role") == "trial"]
    assert len(trials) == TRIALS and all(r.info.artifact_uri.startswith(root + "/") for r in found)
    written = sorted((exp / "mlruns" / "artifacts").rglob("architecture.json"))
    assert len(written) == TRIALS
    assert {p.parent.parent.name for p in written} == {r.info.run_id for r in trials}
    (parent,) = [r for r in found if r.data.tags.get("nas.role") == "search"]
    assert (exp / "mlruns" / "artifacts" / parent.info.run_id / "artifacts" / "best.json").is_file()


def test_a_tracking_server_keeps_its_own_artifact_root(tmp_path: Path) -> None:
    for uri in ("http://mlflow.example:5000", "https://mlflow.example", "databricks", "databricks://profile"):
        s = resolve_tracking(optuna=False, tensorboard=False, mlflow={"tracking_uri": uri}, directory=tmp_path,
                             name="t")
        assert s.mlflow_uri == uri and s.mlflow_artifacts is None
    given = resolve_tracking(optuna=False, tensorboard=False, directory=tmp_path, name="t",
                             mlflow={"tracking_uri": "http://h:5000", "artifact_location": "s3://bucket/nas"})
    assert given.mlflow_artifacts == "s3://bucket/nas"
    local = resolve_tracking(optuna=False, tensorboard=False, mlflow={"tracking_uri": "postgresql://h/db"},
                             directory=tmp_path, name="t")
    assert local.mlflow_artifacts == (tmp_path / "mlruns" / "artifacts").as_uri()  # this process writes them


def test_an_existing_mlflow_experiment_keeps_its_location_with_a_warning(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    old = (tmp_path / "old").as_uri()
    MlflowClient(tracking_uri=uri).create_experiment("t", artifact_location=old)
    settings = resolve_tracking(optuna=False, tensorboard=False, mlflow={"tracking_uri": uri},
                                directory=tmp_path / "exp", name="t")
    warnings: list[str] = []
    trackers = open_trackers(settings, name="t", space=get_space("nb201"), objectives=[("score", "max")],
                             params={}, warn=warnings.append)
    trackers.close()
    assert len(warnings) == 1 and "already exists" in warnings[0] and old in warnings[0]
    assert settings.mlflow_artifacts is not None and settings.mlflow_artifacts in warnings[0]
    again: list[str] = []  # the experiment's own location (a resume): no warning
    open_trackers(resolve_tracking(optuna=False, tensorboard=False, mlflow=True, directory=tmp_path / "b",
                                   name="t"), name="t", space=get_space("nb201"), objectives=[("score", "max")],
                  params={}, warn=again.append).close()
    open_trackers(resolve_tracking(optuna=False, tensorboard=False, mlflow=True, directory=tmp_path / "b",
                                   name="t"), name="t", space=get_space("nb201"), objectives=[("score", "max")],
                  params={}, warn=again.append).close()
    assert again == []


def test_the_tracker_alone_puts_artifacts_beside_its_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    space = get_space("nb201")
    arch = space.decode([0, 1, 2, 3, 4, 0])
    tracker = MlflowTracker(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'm.db'}", experiment="alone")
    assert tracker.artifact_location == (tmp_path / "store" / "artifacts").as_uri()
    tracker.trial(TrackedTrial(id=1, n=1, arch=arch, hash=arch.canonical_hash(), seed=0, status=Status.COMPLETE,
                               score=0.5, history=[], params={}, best=0.5))
    tracker.close()
    assert list(cwd.iterdir()) == []
    assert len(list((tmp_path / "store" / "artifacts").rglob("architecture.json"))) == 1
    with pytest.raises(ValueError, match="give artifact_location"):
        MlflowTracker(tracking_uri="postgresql://nobody@127.0.0.1:1/none", experiment="x")


def test_a_file_store_in_the_environment_is_a_config_error_naming_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlruns")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI = 'mlruns': MLflow 3 refuses file-system stores.*"
                                          r"or unset MLFLOW_TRACKING_URI for the default"):
        resolve_tracking(optuna=False, tensorboard=False, mlflow=True, directory=tmp_path, name="t")
    given = resolve_tracking(optuna=False, tensorboard=False, mlflow={"tracking_uri": "sqlite:///m.db"},
                             directory=tmp_path, name="t")  # a tracking_uri in the config wins over the environment
    assert given.mlflow_uri == f"sqlite:///{tmp_path / 'm.db'}"
