"""The ``tracking:`` section: defaults inside the experiment folder, relative paths resolved against it, and a clear
ConfigError for each mistake (naming the field, the value and the fix) before the first trial; a tracker that
fails mid-search is dropped with a warning and the search goes on."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest

from nas.core.errors import ConfigError
from nas.runtime.config import parse_config, tracking_settings
from nas.runtime.events import TrackerStopped
from nas.runtime.experiment import Experiment
from nas.tracking import settings as tracking_module
from nas.tracking.settings import resolve_tracking

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory


def config(tracking: Any) -> dict[str, Any]:
    return {"name": "t", "seed": 0, "space": {"name": "nb201"}, "strategy": {"name": "random"},
            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 4},
            "execution": {"executor": "local", "workers": 1}, "tracking": tracking}


def test_defaults_live_in_the_experiment_folder(tmp_path: Path) -> None:
    cfg = parse_config(config({"optuna": True, "tensorboard": True, "mlflow": True}))
    s = tracking_settings(cfg, tmp_path)
    assert s.optuna == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert s.tensorboard == tmp_path / "tensorboard"
    assert s.mlflow_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert s.mlflow_artifacts == (tmp_path / "mlruns" / "artifacts").as_uri() and s.mlflow_experiment == "t"
    assert not tracking_settings(parse_config(config({})), tmp_path)  # off unless asked


def test_relative_places_resolve_against_the_experiment(tmp_path: Path) -> None:
    s = resolve_tracking(optuna="sqlite:///studies/s.db", tensorboard="tb", directory=tmp_path, name="t",
                         mlflow={"tracking_uri": "sqlite:///m.db", "experiment_name": "nas", "artifact_location": "a"})
    assert s.optuna == f"sqlite:///{tmp_path / 'studies' / 's.db'}" and s.tensorboard == tmp_path / "tb"
    assert s.mlflow_uri == f"sqlite:///{tmp_path / 'm.db'}" and s.mlflow_experiment == "nas"
    assert s.mlflow_artifacts == (tmp_path / "a").as_uri()


@pytest.mark.parametrize(("tracking", "message"), [
    ({"optuna": "sqlite:///trials.db"}, r"tracking.optuna = 'sqlite:///trials.db': the Optuna study must not go "
                                        r"inside the experiment's trial store trials.db"),
    ({"optuna": "optuna.db"}, r"tracking.optuna = 'optuna.db': give true or an Optuna storage URL"),
    ({"optuna": "sqlite:///:memory:"}, r"in-memory database is lost"),
    ({"optuna": 3}, r"tracking.optuna = 3: expected bool or str"),
    ({"tensorboard": ""}, r"tracking.tensorboard = '': give true"),
    ({"mlflow": {"uri": "sqlite:///m.db"}}, r"tracking.mlflow.uri: unknown key; allowed: tracking_uri"),
    ({"mlflow": {"tracking_uri": "./mlruns"}}, r"MLflow 3 refuses file-system stores"),
    ({"mlflow": {"experiment_name": 5}}, r"tracking.mlflow.experiment_name = 5: expected a non-empty string"),
    ({"wandb": True}, r"tracking.wandb: unknown key; allowed: optuna, tensorboard, mlflow"),
])
def test_mistakes_are_config_errors_naming_the_field(tracking: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(tracking))


@pytest.mark.parametrize(("field", "package"), [("tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_a_missing_package_names_the_extra(field: str, package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    # the system edge: what is installed; the package is made to look absent
    monkeypatch.setattr(tracking_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == package else real(name, *a))
    with pytest.raises(ConfigError, match=rf"tracking.{field} = True needs the {package} package.*"
                                          r"pip install 'nasgraph\[tracking\]'"):
        parse_config(config({field: True}))


def test_a_tracker_that_cannot_open_stops_the_search_before_its_first_trial(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the study's folder should be")
    exp = Experiment.create(parse_config(config({"optuna": "sqlite:///taken/optuna.db"})), tmp_path / "exp")
    try:
        with pytest.raises(ConfigError, match=r"tracking.optuna \(sqlite:///.*\) cannot be opened"):
            exp.run()
        assert exp.done() == 0
    finally:
        exp.close()


# TensorBoard's own writer thread also fails writing into the vanished folder, and says so in its thread
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_tracker_failing_mid_search_is_dropped_and_the_search_goes_on(tmp_path: Path) -> None:
    """TensorBoard's folder is replaced by a file after the first trial: the tracker fails, says so once, and
    the search finishes its budget (the Optuna mirror beside it keeps every trial)."""
    cfg = parse_config(config({"tensorboard": True, "optuna": True}))
    exp = Experiment.create(cfg, tmp_path / "exp")
    events: list[Any] = []
    board = tmp_path / "exp" / "tensorboard"

    def progress(event: Any) -> None:
        events.append(event)
        if getattr(event, "n", None) == 1 and board.is_dir():
            shutil.rmtree(board)
            board.write_text("not a folder any more")

    try:
        exp.run(progress=progress)
        assert exp.done() == 4
    finally:
        exp.close()
    stopped = [e for e in events if isinstance(e, TrackerStopped)]
    assert len(stopped) == 1 and "tensorboard stopped" in str(stopped[0]) and "search goes on" in str(stopped[0])
    assert len(optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'exp' / 'optuna.db'}").trials) == 4
