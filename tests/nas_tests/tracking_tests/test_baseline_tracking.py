"""Baselines (``baselines:`` in a config) mirrored beside the search, never as trials of it: a companion Optuna
study ``<name>-baselines`` (and a summary on the main study) and a ``baselines/<name>`` TensorBoard run, read back
with each tool's own library (MLflow's baseline runs: ``test_live_epochs``, which opens an MLflow store anyway)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from test_tensorboard_mlflow import scalars

from nas.outputs.tracking import export_optuna
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.tracking.optuna_mirror import baseline_study_name
from nas.tracking.tensorboard import baseline_dir

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory


def test_baselines_are_mirrored_apart_from_the_search(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    cfg = parse_config({"name": "ref", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
                        "strategy": {"name": "random"},
                        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                                      "train": {"epochs": 1, "batch_size": 32}},
                        "budget": {"max_trials": 2}, "baselines": ["lenet5"],
                        "execution": {"executor": "local", "workers": 1},
                        "tracking": {"optuna": True, "tensorboard": True}})
    exp = Experiment.create(cfg, out)
    try:
        exp.run()
        (stored,) = exp.baselines()
        trials = exp.store.trials()
    finally:
        exp.close()
    assert stored.status == "COMPLETE" and stored.score is not None
    storage = f"sqlite:///{out / 'optuna.db'}"
    study = optuna.load_study(study_name="ref", storage=storage)
    assert sorted(t.user_attrs["nas_trial_id"] for t in study.trials) == sorted(t.id for t in trials)
    assert study.user_attrs["nas_baselines"]["lenet5"]["score"] == stored.score
    (reference,) = optuna.load_study(study_name=baseline_study_name("ref"), storage=storage).trials
    assert reference.user_attrs["nas_baseline"] == "lenet5" and reference.values == [stored.score]
    assert reference.intermediate_values == {1: stored.history[0]["score"]}
    tb = out / "tensorboard"
    assert scalars(baseline_dir(tb, "lenet5"))["final/score"][0][1] == stored.score
    assert len(scalars(tb / "search")["search/score"]) == len(trials)  # the baseline is not a point of the search
    for _ in range(2):  # mirrored after the fact into another file, twice: each once
        export_optuna(out, storage=f"sqlite:///{tmp_path / 'again.db'}")
    again = optuna.load_study(study_name=baseline_study_name("ref"), storage=f"sqlite:///{tmp_path / 'again.db'}")
    assert [t.user_attrs["nas_baseline"] for t in again.trials] == ["lenet5"]
