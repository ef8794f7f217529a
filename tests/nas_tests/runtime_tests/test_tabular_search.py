"""The built-in ``mlp`` space on the built-in tabular tasks, end to end: ``breast_cancer`` scored by ``f1_macro``
with class-weighted training through ``nas search``, ``nas status``, ``nas export`` and ``nas export --check``;
``diabetes`` regression ranked by ``rmse`` through ``nas.search`` (store, ``best.json``, the preflight's
description, ``nas status``); and the preflight's refusal of a conv space on tabular data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import nas
from nas.cli import main
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.outputs.view import ExperimentView
from nas.runtime.config import load_config, parse_config
from nas.runtime.preflight import preflight

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

#: a small mlp space (depth 1-2, widths 8-32) and a short training: a few seconds per search on one CPU thread
SPACE: dict[str, Any] = {"name": "mlp", "options": {"max_depth": 2, "max_width": 32}}
TRAIN: dict[str, Any] = {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1}


def _config(folder: Path, name: str, evaluator: dict[str, Any], trials: int = 4) -> Path:
    cfg = {"name": name, "seed": 0, "space": SPACE, "strategy": {"name": "random"},
           "evaluator": {"name": "train", "options": {"latency_runs": 0}, **evaluator},
           "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_mlp_on_breast_cancer_ranked_by_f1_macro_through_the_cli(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "cancer_f1", {"task": "breast_cancer", "metric": "f1_macro",
                                             "train": {**TRAIN, "class_weight": "balanced"}})
    out = tmp_path / "run"
    assert main(["search", str(config), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top 4 by validation f1_macro, higher is better (the test split is reported" in text
    assert "f1_macro test f1_macro" in text  # the columns of the end-of-search table name the metric

    view = ExperimentView.open(out)
    ranked = view.ranked()
    assert len(ranked) == 4 and all(t.status == "COMPLETE" for t in ranked)
    f1 = [t.metrics["val_f1_macro"] for t in ranked]
    assert f1 == sorted(f1, reverse=True) and all(t.score == t.metrics["val_f1_macro"] for t in ranked)
    assert 0.8 < f1[0] <= 1.0 and all(0 <= t.metrics["test_f1_macro"] <= 1 for t in ranked)
    assert ranked[0].info["metric"] == "f1_macro" and ranked[0].info["direction"] == "max"
    assert "val_acc" in ranked[0].metrics  # accuracy is still measured beside the score
    decisions = ranked[0].arch.macro["decisions"]
    assert {"depth", "activation", "dropout", "norm", "width_1"} <= set(decisions)
    assert Architecture.from_json((out / "best.json").read_text()) == ranked[0].arch

    assert main(["status", str(out)]) == 0
    assert "top 4 by validation f1_macro, higher is better" in capsys.readouterr().out

    assert main(["export", str(out), "--format", "json,weights,torchscript,onnx,python", "--quiet"]) == 0
    assert "exported (val: the search's validation f1_macro; test: the exported model's test f1_macro)" in \
        capsys.readouterr().out
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    entry = manifest["models"][0]
    assert entry["trial_id"] == ranked[0].id and entry["verification"]["ok"], entry["verification"]
    assert set(entry["verification"]["formats"]) == {"torchscript", "onnx", "python", "json+weights"}
    assert entry["metrics"]["metric"] == "f1_macro" and entry["metrics"]["search_val_f1_macro"] == f1[0]
    assert 0 < entry["metrics"]["test_f1_macro"] <= 1

    assert main(["export", str(out), "--check"]) == 0
    checked = capsys.readouterr().out
    assert f"rank 1 trial {ranked[0].id}:" in checked and "checksums ok" in checked and "export ok" in checked


def test_mlp_on_diabetes_ranked_by_rmse_through_nas_search(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "diabetes_rmse", {"task": "diabetes", "metric": "rmse", "train": TRAIN})
    report = preflight(load_config(config))
    assert report.problem == "regression" and report.num_classes == 1
    assert "task diabetes (10,), 1 target;" in report.describe() and "classes" not in report.describe()

    exp = nas.search(config, directory=tmp_path / "run")
    try:
        ranked = exp.ranked()
    finally:
        exp.close()
    assert len(ranked) == 4, [t.error for t in exp.store.trials()]
    rmse = [t.metrics["val_rmse"] for t in ranked]
    assert rmse == sorted(rmse)  # best (lowest rmse) first
    assert all(t.score == -t.metrics["val_rmse"] and t.metrics["test_rmse"] > 0 for t in ranked)
    assert all("val_acc" not in t.metrics and "test_acc" not in t.metrics for t in ranked)
    # diabetes' target (disease progression, 25..346) has a standard deviation of about 77: better than the mean
    assert 0 < rmse[0] < 70
    assert ranked[0].info["metric"] == "rmse" and ranked[0].info["direction"] == "min"
    assert Architecture.from_json((tmp_path / "run" / "best.json").read_text()) == ranked[0].arch

    capsys.readouterr()
    assert main(["status", str(tmp_path / "run")]) == 0
    status = capsys.readouterr().out
    assert "top 4 by validation rmse, lower is better: the score is -rmse" in status
    assert "test rmse" in status and "class" not in status and "accuracy" not in status


def test_a_conv_space_on_tabular_data_is_refused_by_the_preflight(tmp_path: Path) -> None:
    cfg = {"name": "conv_on_tabular", "seed": 0, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "random"}, "budget": {"max_trials": 1},
           "evaluator": {"name": "train", "task": "npz", "task_options": {"path": str(tmp_path / "t.npz")}}}
    np.savez(tmp_path / "t.npz", x=np.random.default_rng(0).normal(size=(60, 5)), y=np.arange(60) % 2)
    with pytest.raises(ConfigError, match=r"holds tabular data \(5,\) but space 'nb201' builds image models"):
        preflight(parse_config(cfg))
    with pytest.raises(ConfigError, match=r"'breast_cancer' holds tabular data but space 'nb201' builds image"):
        parse_config({**cfg, "evaluator": {"name": "train", "task": "breast_cancer"}})


@pytest.mark.parametrize("name, metric", [("mlp_breast_cancer", "f1_macro"), ("mlp_diabetes", "rmse")])
def test_the_shipped_tabular_configs_pass_the_preflight(name: str, metric: str) -> None:
    cfg = load_config(Path(__file__).resolve().parents[3] / "experiments" / f"{name}.yaml")
    assert cfg.space.name == "mlp" and cfg.evaluator.metric == metric
    report = preflight(cfg)
    assert report.candidate is not None and {f"val_{metric}", f"test_{metric}"} <= (report.metrics or set())
