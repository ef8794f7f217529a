"""The ``python`` (define-by-run) and ``mlp`` spaces end to end: every multi-trial strategy searches a builder with
conditional decisions (a depth, then one width per layer) on real tabular data, trained for real; the builder is
found next to its YAML config; the search's best exports and its files pass the fresh-process verification, and a
module that torch.fx cannot trace exports without ``model.py``, with the reason."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_wine

import nas
from nas.outputs.export import export_experiment
from nas.outputs.loading import load_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

BUILDER = """
from torch import nn

def build(c, input_shape, num_classes):
    layers, width = [nn.Flatten()], input_shape[0]
    for i in range(c.int("depth", 1, 3)):
        out = c.choice(f"width_{i}", [8, 16, 32])
        layers += [nn.Linear(width, out), nn.ReLU() if c.choice("act", ["relu", "tanh"]) == "relu" else nn.Tanh()]
        width = out
    if c.bool("dropout"):
        layers.append(nn.Dropout(c.float("p", 0.1, 0.3, num=3)))
    return nn.Sequential(*layers, nn.Linear(width, num_classes))

build.input_kind = "tabular"
"""

UNTRACEABLE = """
from torch import nn

class Gate(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.a, self.b = nn.Linear(features, classes), nn.Linear(features, classes)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else self.b(x)  # data-dependent control flow

def build(c, input_shape, num_classes):
    hidden = c.choice("hidden", [8, 16])
    return nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU(), Gate(hidden, num_classes))

build.input_kind = "tabular"
"""


def _setup(folder: Path, source: str, strategy: str, *, executor: str = "local", trials: int = 5,
           space: dict[str, Any] | None = None) -> Path:
    """A builder module, the wine data as .npz and a config beside them; returns the config's path."""
    module = f"models_{uuid.uuid4().hex[:8]}"  # imports are cached by name
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    x, y = load_wine(return_X_y=True)
    np.savez(folder / "wine.npz", x=x, y=y)
    config = {"name": f"py-{strategy}", "seed": 1,
              "space": space or {"name": "python", "options": {"builder": f"{module}:build"}},
              "strategy": {"name": strategy}, "budget": {"max_trials": trials},
              "evaluator": {"name": "train", "task": "npz", "task_options": {"path": str(folder / "wine.npz")},
                            "train": {"epochs": 2, "batch_size": 32}},
              "execution": {"executor": executor, "workers": 1}}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("strategy", ["random", "evolution", "rl", "optuna", "gp_bo"])
def test_every_strategy_searches_a_builder_space(tmp_path: Path, strategy: str) -> None:
    exp = nas.search(_setup(tmp_path, BUILDER, strategy), directory=tmp_path / "run")
    try:
        trials = exp.store.trials()
        assert len(trials) == 5 and all(t.status == "COMPLETE" for t in trials), [t.error for t in trials]
        assert len({t.hash for t in trials}) == 5  # de-duplicated by canonical hash
        for t in trials:
            decisions, inactive = t.arch.macro["decisions"], set(t.arch.macro.get("inactive", []))
            assert {f"width_{i}" for i in range(decisions["depth"], 3)} <= inactive
            assert t.metrics["params"] > 0 and 0.0 <= t.score <= 100.0
        best = exp.ranked()[0]
        assert best.score == max(t.score for t in trials)
    finally:
        exp.close()


def test_mlp_space_searches_tabular_data(tmp_path: Path) -> None:
    config = _setup(tmp_path, BUILDER, "evolution", trials=6,
                    space={"name": "mlp", "options": {"max_depth": 3, "max_width": 64}})
    exp = nas.search(config, directory=tmp_path / "run")
    try:
        trials = exp.store.trials()
        assert all(t.status == "COMPLETE" for t in trials) and len(trials) == 6
        assert {"depth", "activation", "dropout", "norm", "width_1"} <= set(trials[0].arch.macro["decisions"])
        assert max(t.score for t in trials) > 50.0  # wine has three classes: better than chance
    finally:
        exp.close()


def test_builder_search_on_ray_exports_and_verifies(tmp_path: Path) -> None:
    exp = nas.search(_setup(tmp_path, BUILDER, "random", executor="ray", trials=3), directory=tmp_path / "run")
    exp.close()
    report = export_experiment(tmp_path / "run")
    assert report.ok, report.manifest["models"][0]["verification"]
    entry = report.manifest["models"][0]
    assert set(entry["verification"]["formats"]) == {"torchscript", "onnx", "python", "json+weights"}
    assert "skipped" not in entry
    model = load_model(tmp_path / "run" / "export")  # JSON + weights: the builder is found through model.json
    assert model(__import__("torch").zeros(2, 13)).shape == (2, 3)


def test_untraceable_builder_exports_without_model_py(tmp_path: Path) -> None:
    exp = nas.search(_setup(tmp_path, UNTRACEABLE, "random", trials=2), directory=tmp_path / "run")
    exp.close()
    report = export_experiment(tmp_path / "run")
    entry = report.manifest["models"][0]
    assert report.ok and "python" not in entry["files"]
    assert "cannot be exported as python" in entry["skipped"]["python"]
    assert "torch.fx cannot trace" in entry["skipped"]["python"]
    assert set(entry["verification"]["formats"]) == {"torchscript", "onnx", "json+weights"}


SHAPE_BOUND = """
from torch import nn

def build(c, input_shape, num_classes):
    hidden = c.choice("hidden", [8, 16])
    if input_shape[0] != 8:  # discovery runs with (8,); the task has 13 features
        raise ValueError(f"this model takes 8 features, not {input_shape[0]}")
    return nn.Sequential(nn.Linear(8, hidden), nn.Linear(hidden, num_classes))

build.input_kind = "tabular"
"""


def test_preflight_shows_the_line_of_a_builder_that_fails_on_the_task(tmp_path: Path) -> None:
    config = _setup(tmp_path, SHAPE_BOUND, "random")
    with pytest.raises(nas.ConfigError) as info:
        nas.search(config, directory=tmp_path / "run")
    message = str(info.value)
    assert "cannot compile for the input of task 'npz' (13,)" in message
    assert "ValueError: this model takes 8 features, not 13 (at models_" in message
    assert "in build: raise ValueError(" in message
    assert not (tmp_path / "run").exists()


def test_training_settings_are_searched_with_a_builder_on_ray(tmp_path: Path) -> None:
    config = _setup(tmp_path, BUILDER, "evolution", executor="ray", trials=3)
    data = yaml.safe_load(config.read_text())
    data["searchable"] = {"lr": [0.01, 0.05]}
    config.write_text(yaml.safe_dump(data))
    exp = nas.search(config, directory=tmp_path / "run")  # Ray workers import the builder from the config's folder
    try:
        trials = exp.store.trials()
        assert len(trials) == 3 and all(t.status == "COMPLETE" for t in trials), [t.error for t in trials]
        assert all(t.arch.macro["hparams"]["lr"] in (0.01, 0.05) for t in trials)
    finally:
        exp.close()
