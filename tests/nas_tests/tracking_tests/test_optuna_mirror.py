"""The Optuna study mirror (nas.tracking.optuna_mirror) read back with ``optuna.load_study``: exactly the store's
trials, decisions as op names, values, user attributes and states, for random, evolution and a one-shot search;
resuming and ``nas export-optuna`` never add a trial twice; nothing of Optuna goes into ``trials.db``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nas.cli import main
from nas.graph.architecture import Architecture
from nas.graph.nb201 import NB201_OPS
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.store import TrialStore
from nas.tracking.base import TrackedTrial
from nas.tracking.optuna_mirror import OptunaMirror
from nas.trials.trial import Status
from search_spaces import get_space

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory


def config(**changes: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "mirror", "seed": 0, "space": {"name": "nb201"},
        "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
        "evaluator": {"name": "nb201"}, "budget": {"max_trials": 8},
        "execution": {"executor": "local", "workers": 1}, "tracking": {"optuna": True}}
    cfg.update(changes)
    return cfg


def run(cfg: dict[str, Any], out: Path) -> Experiment:
    exp = Experiment.create(parse_config(cfg), out)
    exp.run()
    return exp


def load(out: Path, name: str = "mirror", file: str = "optuna.db") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / file}")


def check_study_matches_store(study: optuna.Study, out: Path) -> None:
    """The study holds exactly the store's finished trials, each with its decisions, score, id, hash, architecture."""
    store = TrialStore(out / "trials.db", readonly=True)
    try:
        stored = {t.id: t for t in store.trials()}
    finally:
        store.close()
    trials = study.get_trials()
    assert sorted(t.user_attrs["nas_trial_id"] for t in trials) == sorted(stored)  # exactly ours, once each
    space = get_space("nb201")
    for t in trials:
        s = stored[t.user_attrs["nas_trial_id"]]
        assert t.user_attrs["nas_hash"] == s.hash
        assert Architecture.from_json(t.user_attrs["nas_architecture"]) == s.arch
        assert t.state == optuna.trial.TrialState.COMPLETE and t.value == pytest.approx(s.score)
        # decisions by name, each an op name under a categorical distribution over the op names
        assert set(t.params) == set(space.decision_names())
        ops = {(src, dst): op for src, dst, op in s.arch.cell("cell").edges}
        for name, value in t.params.items():
            _, src, dst = name.split("_")
            assert value == ops[(int(src), int(dst))]
            assert t.distributions[name].choices == tuple(NB201_OPS)
    assert len({t.user_attrs["nas_hash"] for t in trials}) == len(trials)  # de-duplicated: no function twice
    with sqlite3.connect(out / "trials.db") as db:  # nothing of Optuna's in our store
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "studies" not in tables and "trials" in tables


@pytest.mark.parametrize("strategy", [{"name": "random"},
                                      {"name": "evolution", "options": {"population": 4, "sample_size": 2}}])
def test_load_study_reads_back_exactly_our_trials(strategy: dict[str, Any], tmp_path: Path) -> None:
    exp = run(config(strategy=strategy), tmp_path / "exp")
    best = exp.ranked()[0].score
    exp.close()
    study = load(tmp_path / "exp")
    assert len(study.trials) == 8
    check_study_matches_store(study, tmp_path / "exp")
    assert study.best_value == pytest.approx(best)


def test_resume_and_export_add_no_trial_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    run(config(), out).close()
    more = Experiment.open(out, max_trials=11)
    more.run()
    more.close()
    study = load(out)
    assert len(study.trials) == 11
    check_study_matches_store(study, out)
    # export into the same study: nothing to add; into a new file: all of them
    assert main(["export-optuna", str(out)]) == 0
    assert "11 trials (0 added)" in capsys.readouterr().out
    assert main(["export-optuna", str(out), "--storage", "sqlite:///again.db", "--study-name", "mirror"]) == 0
    assert "11 trials (11 added)" in capsys.readouterr().out
    check_study_matches_store(load(out, file="again.db"), out)


def test_an_experiment_without_tracking_is_exported_after_the_fact(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    run(config(tracking={}, strategy={"name": "random"}), out).close()
    assert not (out / "optuna.db").exists()
    assert main(["export-optuna", str(out)]) == 0
    check_study_matches_store(load(out), out)


def test_a_one_shot_search_is_mirrored_with_its_supernet_epochs(tmp_path: Path) -> None:
    """gdas: the derived candidates in the study; the supernet's epochs in TensorBoard and in an MLflow job run."""
    strategy = {"name": "gdas", "options": {"epochs": 2, "batch_size": 32, "task": "digits",
                                            "task_options": {"limit": 200}, "space_options": {"C": 2, "N": 1}}}
    exp = run(config(strategy=strategy, budget={"max_trials": 3},
                     tracking={"optuna": True, "tensorboard": True, "mlflow": True}), tmp_path / "exp")
    exp.close()
    study = load(tmp_path / "exp")
    assert len(study.trials) == 3
    check_study_matches_store(study, tmp_path / "exp")
    epoch = study.user_attrs["supernet_epoch"]  # the job's last epoch, kept on the study
    assert epoch["epoch"] == 1
    acc = EventAccumulator(str(tmp_path / "exp" / "tensorboard" / "jobs" / "supernet"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert tags and all(len(acc.Scalars(tag)) == 2 for tag in tags)  # every figure of both epochs
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'exp' / 'mlruns' / 'mlflow.db'}")
    found = client.get_experiment_by_name("mirror")
    assert found is not None
    (job,) = client.search_runs([found.experiment_id], filter_string="tags.`nas.role` = 'job'")
    assert job.data.tags["nas.job"] == "supernet" and job.info.status == "FINISHED"
    assert {key.removeprefix("job/") for key in job.data.metrics} == {tag.removeprefix("job/") for tag in tags}


def test_failed_and_pruned_trials_keep_their_state_reason_and_curve(tmp_path: Path) -> None:
    space = get_space("nb201")
    arch = space.decode([0, 1, 2, 3, 4, 0])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    mirror = OptunaMirror(storage=url, study_name="s", space=space, objectives=[("score", "max"), ("params", "min")])
    common: dict[str, Any] = {"arch": arch, "hash": arch.canonical_hash(), "seed": 0,
                              "params": dict(zip(space.decision_names(), ["none", "skip_connect", "nor_conv_1x1",
                                                                          "nor_conv_3x3", "avg_pool_3x3", "none"]))}
    history = [{"epoch": 1, "score": 40.0}, {"epoch": 2, "score": 55.0}]
    mirror.trial(TrackedTrial(id=0, n=1, status=Status.FAILED, score=None, error="diverged at epoch 1", **common))
    mirror.trial(TrackedTrial(id=1, n=2, status=Status.PRUNED, score=55.0, history=history, error="stopped by ASHA",
                              **common))
    mirror.trial(TrackedTrial(id=2, n=3, status=Status.COMPLETE, score=70.0, metrics={"params": 1200.0},
                              history=history, **common))
    mirror.trial(TrackedTrial(id=3, n=4, status=Status.COMPLETE, score=71.0, **common))  # no params measured
    mirror.trial(TrackedTrial(id=2, n=3, status=Status.COMPLETE, score=70.0, **common))  # again: skipped
    mirror.close()
    study = optuna.load_study(study_name="s", storage=url)
    states = {t.user_attrs["nas_trial_id"]: t for t in study.trials}
    assert len(study.trials) == 4
    assert states[0].state == optuna.trial.TrialState.FAIL and states[0].user_attrs["nas_error"].startswith("diverged")
    assert states[1].state == optuna.trial.TrialState.PRUNED and states[1].intermediate_values == {1: 40.0, 2: 55.0}
    assert states[2].state == optuna.trial.TrialState.COMPLETE and states[2].values == [70.0, 1200.0]
    assert states[3].state == optuna.trial.TrialState.FAIL and "params" in states[3].user_attrs["nas_error"]
    assert states[2].params["edge_0_1"] == "none" and json.loads(states[2].user_attrs["nas_architecture"])
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
