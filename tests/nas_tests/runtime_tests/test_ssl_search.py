"""Label-free search end to end: the ``ssl`` evaluator on an ``.npz`` without ``y`` (real digits images), run by
evolution through the store, resumed with a larger budget and reported; the probe on a few labels; and the data
problems refused before the first trial, with the field, the value and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _experiments import run_ranked, stored
from sklearn.datasets import load_digits

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.pruning import ASHA
from nas.evaluation.ssl import SslEvaluator
from nas.outputs.report.build import ReportOptions, build_report
from nas.outputs.view import ExperimentView
from nas.runtime.config import build, parse_config
from nas.runtime.experiment import Experiment
from nas.runtime.preflight import preflight
from nas.trials.trial import Status, Trial

TRAIN = {"epochs": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1, "device": "cpu"}


def _npz(tmp_path: Path, labels: bool = False) -> str:
    d = load_digits()
    path = tmp_path / ("digits.npz" if labels else "digits_unlabeled.npz")
    arrays = {"x": d.images[:600].reshape(-1, 1, 8, 8) / 16.0}
    if labels:
        arrays["y"] = d.target[:600]
    np.savez(path, **arrays)
    return str(path)


def _config(task_options: dict[str, Any], strategy: str = "evolution", **evaluator: Any) -> dict[str, Any]:
    name = evaluator.pop("name", "ssl")
    options = {"pretext": "rotation", **evaluator.pop("options", {})} if name == "ssl" else {"latency_runs": 0}
    return {"name": "label_free", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
            "strategy": {"name": strategy, "options": {"population": 2, "sample_size": 2}
                         if strategy == "evolution" else {}},
            "evaluator": {"name": name, "task": "npz", "task_options": task_options,
                          "train": TRAIN, "options": options, **evaluator},
            "budget": {"max_trials": 3}, "execution": {"executor": "local", "workers": 1}}


def test_a_label_free_evolution_search_runs_resumes_and_reports(tmp_path: Path) -> None:
    cfg = parse_config(_config({"path": _npz(tmp_path)}))
    report = preflight(cfg)
    assert report.problem == "unlabeled"
    directory = tmp_path / "exp"
    ranked, trials = run_ranked(cfg, directory)
    assert len(ranked) == 3, [t.error for t in trials]
    assert all(0 <= t.score <= 100 and t.score == t.metrics["rotation_acc"] for t in ranked)
    assert ranked[0].score > 30  # above chance (25%): the candidates learned the pretext
    assert [t.score for t in ranked] == sorted((t.score for t in ranked), reverse=True)
    assert "pretext rotation" in ranked[0].info["signal"] and ranked[0].info["labels"] == "not used"

    exp = Experiment.open(directory, max_trials=5)  # resume with a larger budget
    try:
        ranked = exp.run()
    finally:
        exp.close()
    assert len(ranked) == 5 and len({t.id for t in ranked}) == 5
    html = build_report(directory, options=ReportOptions(gradcam=False, draw=1)).path.read_text()
    assert "rotation_acc" in html
    assert ExperimentView.open(directory).ranking().ranked[0].score == ranked[0].score


def test_a_contrastive_search_reports_its_loss_and_its_best_retrains_supervised(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _config({"path": _npz(tmp_path)}, options={"pretext": "contrastive"})
    data["budget"]["max_trials"] = 2
    directory = tmp_path / "exp"
    exp = Experiment.create(parse_config(data), directory)
    try:
        ranked = exp.run()
    finally:
        exp.close()
    assert len(ranked) == 2, [t.error for t in exp.store.trials()]
    best = ranked[0]
    assert best.info["metric"] == "contrastive_loss" and best.info["direction"] == "min"
    assert best.score == -best.metrics["contrastive_loss"] >= ranked[1].score
    assert main(["status", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "by validation contrastive_loss, lower is better: the score is -contrastive_loss:" in out
    assert "-contrastive_loss" in out.splitlines()[2] and "test" not in out  # no test split, no accuracy column
    html = build_report(directory, options=ReportOptions(gradcam=False, draw=1)).path.read_text()
    assert "-contrastive_loss" in html and "validation accuracy" not in html

    # the winner, found without a label, trained supervised on the labeled data (as a user would next)
    labeled = {"path": _npz(tmp_path, labels=True)}
    supervised = build(parse_config(_config(labeled, name="train", options={"latency_runs": 0}))).evaluator
    assert isinstance(supervised, TrainEvaluator)
    result = supervised.evaluate(Trial(arch=ExperimentView.open(directory).ranking().ranked[0].arch, id=0, seed=0))
    assert result.status is Status.COMPLETE, result.error
    assert result.metrics["val_acc"] > 10 and 0 <= result.metrics["test_acc"] <= 100  # above chance (10 classes)


@pytest.mark.parametrize("pretext", ["contrastive", "masked"])
def test_every_pretext_scores_by_its_validation_metric(tmp_path: Path, pretext: str) -> None:
    extra = {"momentum": 0.9, "queue": 64} if pretext == "contrastive" else {}
    cfg = parse_config(_config({"path": _npz(tmp_path)}, options={"pretext": pretext, **extra}))
    evaluator = build(cfg).evaluator
    assert isinstance(evaluator, SslEvaluator)
    arch = build(cfg).space.sample(np.random.default_rng(0))
    first = evaluator.evaluate(Trial(arch=arch, id=0, seed=3))
    again = evaluator.evaluate(Trial(arch=arch, id=1, seed=3))
    metric = "contrastive_loss" if pretext == "contrastive" else "masked_mse"
    assert first.status is Status.COMPLETE, first.error
    assert first.score == -first.metrics[metric] and first.metrics[metric] > 0
    assert again.score == first.score  # seeded: the same candidate and seed score the same
    assert set(first.metrics) <= evaluator.metric_names()
    if pretext == "contrastive":  # the momentum encoder's keys filled the queue
        pretext_module, _ = evaluator.pretrain(arch, seed=3)
        assert pretext_module.queued == 64  # type: ignore[attr-defined]  # Contrastive's own field


def test_the_probe_scores_by_knn_accuracy_on_a_fraction_of_the_labels(tmp_path: Path) -> None:
    cfg = parse_config(_config({"path": _npz(tmp_path, labels=True)},
                               options={"pretext": "rotation", "probe": {"labels": 0.5, "k": 5}}))
    parts = build(cfg)
    result = parts.evaluator.evaluate(Trial(arch=parts.space.sample(np.random.default_rng(1)), id=0, seed=0))
    assert result.status is Status.COMPLETE, result.error
    assert result.score == result.metrics["probe_acc"] and 0 <= result.score <= 100
    assert "5-NN accuracy with 0.5 of the labels" in result.info["signal"]


def test_data_problems_are_refused_before_the_first_trial(tmp_path: Path) -> None:
    unlabeled = {"path": _npz(tmp_path)}
    with pytest.raises(ConfigError, match=r"evaluator.task = 'npz'.*holds unlabeled data \(its .npz has no array "
                                          r"'y'; it has \['x'\]\), but this evaluator trains or scores on labels"):
        preflight(parse_config(_config(unlabeled, name="train", options={})))
    with pytest.raises(ConfigError, match=r"evaluator.options.probe = \{labels: 0.1\} needs labels, but task 'npz' "
                                          r"holds unlabeled data"):
        preflight(parse_config(_config(unlabeled, options={"probe": {"labels": 0.1}})))
    seq = tmp_path / "seq.npz"
    np.savez(seq, x=np.random.default_rng(0).normal(size=(40, 24, 1)))
    data = _config({"path": str(seq)})
    data["space"] = {"name": "rnn", "options": {"steps": 2, "num_layers": 1, "d_model": 8}}
    with pytest.raises(ConfigError, match=r"evaluator.options.pretext = 'rotation' needs image data, but the task "
                                          r"holds sequence data"):
        preflight(parse_config(data))
    with pytest.raises(ConfigError, match=r"evaluator.options.pretext = 'jigsaw': choose one of rotation, "
                                          r"contrastive, masked"):
        parse_config(_config(unlabeled, options={"pretext": "jigsaw"}))
    assert not (tmp_path / "exp").exists()
    json.dumps(_config(unlabeled))  # plain data, as a YAML file would hold


MULTI_TRIAL = ["random", "evolution", "rl", "optuna", "gp_bo"]


def test_every_multi_trial_strategy_searches_without_labels(tmp_path: Path) -> None:
    path = tmp_path / "small.npz"
    np.savez(path, x=load_digits().images[:120].reshape(-1, 1, 8, 8) / 16.0)
    for strategy in MULTI_TRIAL:
        data = _config({"path": str(path)}, strategy=strategy, options={"pretext": "masked"})
        data["space"]["options"] = {"C": 2, "N": 1}
        data["budget"]["max_trials"] = 2
        ranked, trials = run_ranked(parse_config(data), tmp_path / strategy)
        assert len(ranked) == 2, (strategy, [t.error for t in trials])
        assert all(t.score == -t.metrics["masked_mse"] for t in ranked), strategy


def _pruned_config(tmp_path: Path, early_stopping: dict[str, Any], strategy: str = "random",
                   max_trials: int = 6, **options: Any) -> dict[str, Any]:
    """An ssl search of 3-epoch rotation candidates on unlabeled digits, early-stopped by ``early_stopping``."""
    path = tmp_path / "small.npz"
    if not path.exists():
        np.savez(path, x=load_digits().images[:200].reshape(-1, 1, 8, 8) / 16.0)
    data = _config({"path": str(path)}, strategy=strategy, options={"pretext": "rotation", **options})
    data["space"]["options"] = {"C": 2, "N": 1}
    data["evaluator"]["train"] = {**TRAIN, "epochs": 3}
    data["budget"]["max_trials"] = max_trials
    data["early_stopping"] = early_stopping
    return data


ASHA_OPTIONS = {"name": "asha", "grace_epochs": 1, "reduction_factor": 2}


def test_an_ssl_search_with_asha_prunes_by_the_pretext_score_and_resumes_as_if_never_stopped(tmp_path: Path) -> None:
    data = _pruned_config(tmp_path, ASHA_OPTIONS)
    ranked, trials = run_ranked(parse_config(data), tmp_path / "straight")
    pruned = [t for t in trials if t.status == "PRUNED"]
    assert len(trials) == 6 and pruned, [(t.status, t.error) for t in trials]
    assert all(t.metrics["epochs"] == len(t.history) < 3 for t in pruned)
    assert all(t.status == "COMPLETE" and t.metrics["epochs"] == 3 for t in ranked)
    # every epoch's row carries the score the pruner ranked by: the final score is the last row's
    assert all(t.history[-1]["score"] == t.score == t.metrics["rotation_acc"] for t in trials)
    # the decisions are ASHA's over those scores (rungs 1 and 2), trial after trial
    asha = ASHA(grace_epochs=1, reduction_factor=2)
    for t in sorted(trials, key=lambda t: t.id):
        went_on = [asha.report(t.id, int(h["epoch"]), h["score"]) for h in t.history]
        assert went_on[:-1] == [True] * (len(went_on) - 1) and went_on[-1] == (t.status == "COMPLETE"), t.id

    # stopped at its budget after 3 trials, then resumed to 6: the pruner is rebuilt from the stored history
    stopped = tmp_path / "stopped"
    run_ranked(parse_config({**data, "budget": {"max_trials": 3}}), stopped)
    exp = Experiment.open(stopped, max_trials=6)
    try:
        exp.run()
    finally:
        exp.close()
    assert stored(stopped) == stored(tmp_path / "straight")


def test_bohb_with_hyperband_searches_without_labels(tmp_path: Path) -> None:
    data = _pruned_config(tmp_path, {"name": "hyperband", "grace_epochs": 1, "reduction_factor": 2},
                          strategy="bohb", max_trials=5)
    data["strategy"]["options"] = {"n_min": 2}
    exp = Experiment.create(parse_config(data), tmp_path / "exp")
    try:
        ranked = exp.run()
        trials = exp.store.trials()
        bohb = getattr(exp.strategy, "inner", exp.strategy)
    finally:
        exp.close()
    assert len(trials) == 5 and ranked, [(t.status, t.error) for t in trials]
    assert {t.status for t in trials} == {"COMPLETE", "PRUNED"}  # Hyperband stopped some, before the last epoch
    assert all(len(t.history) < 3 for t in trials if t.status == "PRUNED")
    assert all(t.metrics["epochs"] == len(t.history) for t in trials)
    assert len(bohb.observations[1]) >= len(trials)  # the model learnt every trial's first-epoch pretext score


def test_with_a_probe_every_epoch_is_scored_by_the_probe_and_pruned_by_it(tmp_path: Path) -> None:
    d = load_digits()
    path = tmp_path / "small.npz"
    np.savez(path, x=d.images[:200].reshape(-1, 1, 8, 8) / 16.0, y=d.target[:200])
    data = _pruned_config(tmp_path, ASHA_OPTIONS, max_trials=4, probe={"labels": 0.5, "k": 5})
    ranked, trials = run_ranked(parse_config(data), tmp_path / "exp")
    assert len(trials) == 4 and ranked and any(t.status == "PRUNED" for t in trials), [t.error for t in trials]
    for t in trials:
        assert all(0 <= h["probe_acc"] <= 100 and h["score"] == h["probe_acc"] for h in t.history)
        assert t.score == t.history[-1]["score"] == t.metrics["probe_acc"]
