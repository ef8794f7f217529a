"""TensorBoard event files and MLflow runs of a real (tiny) training search, written from the driver, read back with
their own libraries: tensorboard's EventAccumulator and mlflow's MlflowClient / search_runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nas.cli import main
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.store import StoredTrial, TrialStore
from nas.tracking.tensorboard import trial_dir
from search_spaces import get_space

pytestmark = pytest.mark.usefixtures("tmp_cwd")  # trackers may write relative to the working directory

TRIALS, EPOCHS = 3, 2


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[StoredTrial]]:
    """A random search training 3 nb201 cells for 2 epochs on digits, tracked in TensorBoard and MLflow."""
    out = tmp_path_factory.mktemp("tracked") / "exp"
    cfg = {"name": "tracked", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "random"},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200},
                         "train": {"epochs": EPOCHS, "batch_size": 32}},
           "budget": {"max_trials": TRIALS}, "execution": {"executor": "local", "workers": 1},
           "tracking": {"tensorboard": True, "mlflow": True}}
    exp = Experiment.create(parse_config(cfg), out)
    exp.run()
    exp.close()
    store = TrialStore(out / "trials.db", readonly=True)
    try:
        return out, store.trials()
    finally:
        store.close()


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_every_trial_curve_and_the_best_so_far(experiment: tuple[Path, list[StoredTrial]]) -> None:
    out, trials = experiment
    root = out / "tensorboard"
    for t in trials:
        got = scalars(trial_dir(root, t.id))
        assert [step for step, _ in got["epoch/val_loss"]] == list(range(1, EPOCHS + 1))
        assert [v for _, v in got["epoch/val_loss"]] == pytest.approx([h["val_loss"] for h in t.history])
        assert [v for _, v in got["epoch/score"]] == pytest.approx([h["score"] for h in t.history])
        assert got["final/score"][0][1] == pytest.approx(t.score)
        acc = EventAccumulator(str(trial_dir(root, t.id)))
        acc.Reload()
        assert "architecture/text_summary" in acc.Tags()["tensors"]  # the architecture as text
    search = scalars(root / "search")
    assert [step for step, _ in search["search/score"]] == list(range(1, TRIALS + 1))
    best = [v for _, v in search["search/best_so_far"]]
    assert best == sorted(best) and best[-1] == pytest.approx(max(t.score for t in trials if t.score is not None))


def test_mlflow_holds_a_parent_run_and_a_run_per_trial(experiment: tuple[Path, list[StoredTrial]]) -> None:
    out, trials = experiment
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    found = client.get_experiment_by_name("tracked")
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parent = [r for r in runs if r.data.tags.get("nas.role") == "search"]
    children = {int(r.data.tags["nas.trial_id"]): r for r in runs if r.data.tags.get("nas.role") == "trial"}
    assert len(parent) == 1 and sorted(children) == [t.id for t in trials]
    parent_id = parent[0].info.run_id
    assert parent[0].data.params["strategy"] == "random" and parent[0].info.status == "FINISHED"
    best = [m.value for m in sorted(client.get_metric_history(parent_id, "best_so_far"), key=lambda m: m.step)]
    assert best == sorted(best) and len(best) == TRIALS
    assert "best.json" in {a.path for a in client.list_artifacts(parent_id)}
    space = get_space("nb201", C=2, N=1)
    for t in trials:
        run: Any = children[t.id]
        assert run.data.tags["mlflow.parentRunId"] == parent_id and run.data.tags["nas.hash"] == t.hash
        assert run.info.status == "FINISHED" and run.data.tags["nas.status"] == "COMPLETE"
        ops = dict(zip(space.decision_names(), [space.decision_choices()[i][v]
                                                 for i, v in enumerate(space.encode(t.arch))]))
        assert {k: v for k, v in run.data.params.items() if k != "seed"} == ops  # decisions as op names
        curve = sorted(client.get_metric_history(run.info.run_id, "epoch/val_loss"), key=lambda m: m.step)
        assert [m.step for m in curve] == list(range(1, EPOCHS + 1))
        assert [m.value for m in curve] == pytest.approx([h["val_loss"] for h in t.history])
        assert run.data.metrics["score"] == pytest.approx(t.score)
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["architecture.json"]


def test_search_runs_finds_the_trials_by_tag(experiment: tuple[Path, list[StoredTrial]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out, trials = experiment
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tracked"], filter_string="tags.`nas.role` = 'trial'",
                              output_format="list")
    assert sorted(int(r.data.tags["nas.trial_id"]) for r in runs) == [t.id for t in trials]
    assert {r.data.params["edge_0_1"] for r in runs} <= {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                         "avg_pool_3x3"}


def test_the_report_goes_to_mlflow_as_an_artifact(experiment: tuple[Path, list[StoredTrial]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = experiment
    assert main(["report", str(out), "--no-gradcam"]) == 0
    assert "report logged to tensorboard, mlflow" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    found = client.get_experiment_by_name("tracked")
    assert found is not None
    (parent,) = client.search_runs([found.experiment_id], filter_string="tags.`nas.role` = 'search'")
    assert {"best.json", "report.html"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    local = client.download_artifacts(parent.info.run_id, "report.html", str(out.parent))
    assert Path(local).read_text() == (out / "report.html").read_text()
