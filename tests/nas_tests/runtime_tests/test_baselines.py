"""Baselines beside a search (nas.trials.baselines, Experiment.run) and ``nas train``: a real small search on
``digits`` with ``baselines: [lenet5, resnet18]`` trains both with the search's trainer, stores them apart, keeps them
out of the strategy, the budget and ``best.json``, shows them marked in status, ranking and report, and does not run
them again on resume; ``nas train`` trains one reference alone into an exportable experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _experiments import run_experiment

from nas.cli import main
from nas.outputs.export import export_experiment
from nas.outputs.loading import ExportError
from nas.outputs.report.build import ReportOptions, build_report
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.trials.baselines import BaselineProposer, baseline_trials, place
from nas.trials.trial import Result, Status

CONFIG: dict[str, Any] = {
    "name": "baselines", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
    "strategy": {"name": "random"},
    "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 400},
                  "train": {"epochs": 2, "batch_size": 32}},
    "budget": {"max_trials": 3}, "baselines": ["lenet5", "resnet18"],
    "execution": {"executor": "local", "workers": 1},
}
_RUN: dict[str, Path] = {}


def finished(factory: pytest.TempPathFactory) -> Path:
    """The directory of the search of CONFIG, run once for the module."""
    if "dir" not in _RUN:
        _RUN["dir"] = run_experiment(CONFIG, factory.mktemp("baselines") / "exp")
    return _RUN["dir"]


def test_baselines_are_trained_and_stored_apart_from_the_search(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = finished(tmp_path_factory)
    view = ExperimentView.open(directory)
    assert [b.name for b in view.baselines] == ["lenet5", "resnet18"]
    assert [b.id for b in view.baselines] == [-1, -2]
    for b in view.baselines:
        assert b.status == "COMPLETE", b.error
        assert b.score is not None and 0.0 <= b.score <= 100.0
        assert b.arch.macro["builder"].startswith("nas.graph.zoo.") and b.seed == CONFIG["seed"]
        assert b.metrics["params"] > 0 and "test_acc" in b.metrics and len(b.history) == 2
    # the published models, small-input variants for 8x8 digits (10 classes)
    params = {b.name: b.metrics["params"] for b in view.baselines}
    assert params == {"lenet5": 21_386, "resnet18": 11_172_810}
    # not search trials: the budget counts the search's 3, every stored trial has a non-negative id
    assert view.done == 3 and view.counts() == {"COMPLETE": 3}
    assert sorted(t.id for t in view.trials) == [0, 1, 2]
    # best.json is the search's best, never a baseline
    best = json.loads((directory / Experiment.BEST).read_text())
    assert best == json.loads(view.ranked()[0].arch.to_json()) and "builder" not in best.get("macro", {})


def test_status_and_summary_show_the_baselines_marked_with_their_place(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    directory = finished(tmp_path_factory)
    view = ExperimentView.open(directory)
    summary = view.summary()
    scores = [t.score for t in view.ranked()]
    assert [b["name"] for b in summary["baselines"]] == ["lenet5", "resnet18"]
    for entry, stored in zip(summary["baselines"], view.baselines):
        assert entry["score"] == stored.score and entry["params"] == stored.metrics["params"]
        assert entry["place"] == 1 + sum(s >= stored.score for s in scores)
    assert all(entry["id"] >= 0 for entry in summary["best"])  # the ranking is the search's
    assert main(["status", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "baselines (reference models" in out
    for b in view.baselines:
        assert f"[baseline] {b.name}" in out and f"val {b.score:>7.2f}" in out
    assert main(["status", str(directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["baselines"] == summary["baselines"]


def test_the_report_lists_the_baselines_as_marked_rows(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = finished(tmp_path_factory)
    out = directory.parent / "report.html"
    build_report(directory, out, ReportOptions(gradcam=False, draw=0))
    page = out.read_text()
    assert page.count('<tr class="baseline">') == 2
    assert "baseline lenet5" in page and "baseline resnet18" in page and "never chosen as the best" in page


def test_resume_does_not_train_finished_baselines_again(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = finished(tmp_path_factory)
    before = {b.name: (b.submitted, b.finished, b.score) for b in ExperimentView.open(directory).baselines}
    lines: list[str] = []
    exp = Experiment.open(directory, max_trials=4)
    try:
        exp.run(progress=lambda event: lines.append(str(event)))
    finally:
        exp.close()
    view = ExperimentView.open(directory)
    assert view.done == 4
    assert {b.name: (b.submitted, b.finished, b.score) for b in view.baselines} == before
    assert not any("[baseline" in line for line in lines)


def test_a_baseline_left_running_by_a_kill_runs_again_and_no_other(tmp_path: Path) -> None:
    cfg = {**CONFIG, "name": "killed", "baselines": ["lenet5"], "budget": {"max_trials": 1},
           "evaluator": {**CONFIG["evaluator"], "train": {"epochs": 1}}}
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    try:
        name, trial = baseline_trials(["lenet5"], 0)[0]
        exp.store.baseline_submitted(name, trial)  # as a search killed while training it leaves the store
        lines: list[str] = []
        exp.run(progress=lambda event: lines.append(str(event)))
        assert sum("[baseline" in line for line in lines) == 1
        (stored,) = exp.baselines()
        assert stored.status == "COMPLETE" and stored.attempts == 2
    finally:
        exp.close()


def test_baseline_helpers() -> None:
    pairs = baseline_trials(["lenet5", "gru"], seed=7)
    assert [(n, t.id, t.seed) for n, t in pairs] == [("lenet5", -1, 7), ("gru", -2, 7)]
    proposer = BaselineProposer([t for _, t in pairs])
    assert [t.id for t in proposer.ask(5)] == [-1, -2] and proposer.ask(1) == []
    proposer.tell(pairs[0][1], Result(Status.COMPLETE, score=1.0))  # learns nothing, raises nothing
    assert place(90.0, [95.0, 90.0, 80.0]) == 3 and place(99.0, [95.0]) == 1 and place(1.0, []) == 1


def test_nas_train_trains_one_reference_into_an_exportable_experiment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lenet"
    code = main(["train", "lenet5", "--task", "digits", "--epochs", "2", "--task-option", "limit=300",
                 "--train", "batch_size=32", "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    (stored,) = ExperimentView.open(out).baselines
    assert stored.status == "COMPLETE" and len(stored.history) == 2
    assert (f"lenet5 on digits: validation accuracy {stored.score:.2f}, test accuracy "
            f"{stored.metrics['test_acc']:.2f}, parameters 21,386") in text
    assert ExperimentView.open(out).done == 0 and not (out / Experiment.BEST).exists()
    assert main(["export", str(out), "--baselines", "--format", "json,weights,python", "--quiet"]) == 0
    manifest = json.loads((out / "export_baselines" / "manifest.json").read_text())
    (entry,) = manifest["models"]
    assert entry["baseline"] == "lenet5" and entry["verification"]["ok"]
    assert entry["metrics"]["params"] == 21_386 and entry["metrics"]["search_val_acc"] == stored.score
    with pytest.raises(ExportError, match="no completed trial to export"):  # the search's own export: none
        export_experiment(out, formats="json")


def test_export_baselines_of_an_experiment_without_any_says_how_to_get_them(tmp_path: Path) -> None:
    cfg = {**CONFIG, "name": "none", "baselines": [], "budget": {"max_trials": 1},
           "evaluator": {**CONFIG["evaluator"], "train": {"epochs": 1}}}
    run_experiment(cfg, tmp_path / "exp")
    with pytest.raises(ExportError, match=r"no completed baseline to export \(none recorded\).*nas train"):
        export_experiment(tmp_path / "exp", baselines=True)
