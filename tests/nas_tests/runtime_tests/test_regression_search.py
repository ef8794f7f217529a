"""A real regression search end to end: a task function in the config's folder (imported by the Ray workers
from there), ranked by rmse (minimised) through the store, ``best.json``, ``nas status``, export (with its
fresh-process verification) and the report; a metric of the wrong problem is refused before anything is
written."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from _experiments import run_ranked

from nas.cli import main
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.outputs.export import export_experiment
from nas.outputs.report.build import ReportOptions, build_report
from nas.outputs.view import ExperimentView
from nas.runtime.config import load_config
from nas.runtime.preflight import preflight

for _key, _value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

ray = pytest.importorskip("ray")
from _ray import quiet_ray  # noqa: E402  (after the skip: it imports ray)

MODULE = textwrap.dedent('''
    import numpy as np

    def waves(n=240, noise=0.05):
        """Noisy sine waves; the target is the wave's frequency (Hz, say)."""
        rng = np.random.default_rng(7)
        freq = rng.uniform(0.5, 3.0, size=n)
        t = np.linspace(0, 6, 24)
        x = np.sin(freq[:, None] * t[None, :])[:, :, None] + rng.normal(0, noise, (n, 24, 1))
        return x, 10.0 * freq
''')


def _config(tmp_path: Path, **evaluator: Any) -> Path:
    (tmp_path / "wave_data.py").write_text(MODULE)
    cfg = {
        "name": "waves_rmse", "seed": 0,
        "space": {"name": "rnn", "options": {"steps": 2, "num_layers": 1, "d_model": 8}},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "task": "wave_data:waves",
                      "task_options": {"kind": "regression", "n": 200},
                      "train": {"epochs": 2, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1},
                      "options": {"latency_runs": 0}, **evaluator},
        "budget": {"max_trials": 4},
        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1},
    }
    path = tmp_path / "waves.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    with quiet_ray(num_cpus=2):
        yield


def test_regression_search_ranked_by_rmse_everywhere(tmp_path: Path, ray_cluster: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(_config(tmp_path, metric="rmse"))
    assert cfg.evaluator.task_options["module_dir"] == str(tmp_path.resolve())  # found next to the config
    directory = tmp_path / "exp"
    ranked, trials = run_ranked(cfg, directory)
    assert len(ranked) == 4, [t.error for t in trials]
    rmse = [t.metrics["val_rmse"] for t in ranked]
    assert rmse == sorted(rmse) and len(set(rmse)) == 4  # best (lowest rmse) first
    assert all(t.score == -t.metrics["val_rmse"] and t.metrics["test_rmse"] > 0 for t in ranked)
    assert all("val_acc" not in t.metrics for t in ranked)
    assert 0 < rmse[0] < 15  # frequency in units of 5..30: better than a wild guess
    best = Architecture.from_json((directory / "best.json").read_text())
    assert best == ranked[0].arch

    summary = ExperimentView.open(directory).summary()
    assert summary["score_metric"] == {"name": "rmse", "direction": "min", "score": "-rmse"}
    assert [b["id"] for b in summary["best"]] == [t.id for t in ranked][:5]
    assert summary["best"][0]["val_rmse"] == rmse[0]
    capsys.readouterr()
    assert main(["status", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "by validation rmse, lower is better: the score is -rmse" in out and "-rmse" in out

    torch.set_num_threads(1)
    report = export_experiment(directory, top=1, formats=["json", "weights", "torchscript"])
    model = report.manifest["models"][0]
    assert model["trial_id"] == ranked[0].id and model["verification"]["ok"], model["verification"]
    assert model["metrics"]["metric"] == "rmse" and model["metrics"]["direction"] == "min"
    assert model["metrics"]["search_val_rmse"] == rmse[0] and model["metrics"]["test_rmse"] > 0
    assert model["training"]["reproduced"], model["training"]
    info = json.loads((directory / "export" / model["files"]["info"]["path"]).read_text())
    assert info["problem"] == "regression" and info["num_targets"] == 1 and len(info["targets"]["mean"]) == 1

    html = build_report(directory, options=ReportOptions(gradcam=False, draw=1)).path.read_text()
    assert "-(validation rmse): rmse minimised" in html and "validation rmse (minimised; score = -rmse)" in html


def test_a_metric_of_the_other_problem_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"evaluator.metric = 'f1_macro' is a classification metric "
                                          r"but task 'wave_data:waves' is regression"):
        load_config(_config(tmp_path, metric="f1_macro"))
    with pytest.raises(ConfigError, match=r"evaluator.metric = 'rmsee' is unknown.*did you mean 'rmse'"):
        load_config(_config(tmp_path, metric="rmsee"))
    data = json.loads(_config(tmp_path).read_text())
    (tmp_path / "objectives.yaml").write_text(json.dumps({**data, "objectives": ["min:val_rmse", "min:params"]}))
    report = preflight(load_config(tmp_path / "objectives.yaml"))  # the metric is known to the objectives
    assert report.metrics is not None and {"val_rmse", "test_rmse"} <= report.metrics
    (tmp_path / "acc.yaml").write_text(json.dumps({**data, "objectives": ["max:val_acc"]}))
    with pytest.raises(ConfigError, match=r"produces no metric 'val_acc'"):
        preflight(load_config(tmp_path / "acc.yaml"))
    data["strategy"] = {"name": "darts"}
    (tmp_path / "darts.yaml").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"strategy.name = 'darts': one-shot supernets train on class labels"):
        load_config(tmp_path / "darts.yaml")
    assert not (tmp_path / "exp").exists()


def test_nas_train_reports_a_regression_reference_by_its_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "wave_train.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "gru"
    code = main(["train", "gru", "--task", "wave_train:waves", "--task-option", "kind=regression",
                 "--task-option", "n=120", "--epochs", "1", "--train", "batch_size=32", "--train", "threads=1",
                 "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text
    (stored,) = ExperimentView.open(out).baselines
    assert stored.score == -stored.metrics["val_rmse"]
    assert (f"gru on wave_train:waves: validation rmse {stored.metrics['val_rmse']:.4g}, test rmse "
            f"{stored.metrics['test_rmse']:.4g}, parameters ") in text and "accuracy" not in text
