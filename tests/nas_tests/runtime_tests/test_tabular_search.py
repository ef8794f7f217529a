"""A tabular classification search scored by f1_macro with class-weighted training, through a small space
registered here (a plain MLP compiler; the package's own tabular space lives elsewhere), and the preflight's
refusal of a conv space on tabular data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture, Cell
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.runtime.preflight import preflight
from search_spaces import SPACES, register_space
from search_spaces.base import SearchSpace

WIDTHS = (4, 16, 64)
DEPTHS = (1, 2)


class _MLP(nn.Module):
    def __init__(self, features: int, width: int, depth: int, outputs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for i in range(depth):
            layers += [nn.Linear(features if i == 0 else width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


@dataclass(frozen=True)
class _Compiler:
    name: str = "mlp_test"
    input_kind: str = "tabular"

    def __call__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        features = 1
        for s in input_shape:
            features *= int(s)
        return _MLP(features, int(arch.macro["width"]), int(arch.macro["depth"]), num_classes)


_CELL = Cell(family="conv", inputs=1, nodes=2, edges=((0, 1, "skip_connect"),), output=(1,))  # a placeholder cell


class MLPTestSpace(SearchSpace):
    name = "mlp_test"
    input_kind = "tabular"

    def decision_sizes(self) -> list[int]:
        return [len(WIDTHS), len(DEPTHS)]

    def decision_names(self) -> list[str]:
        return ["width", "depth"]

    def _decode(self, decisions: list[int]) -> Architecture:
        return Architecture(space=self.name, cells={"body": _CELL},
                            macro={"width": WIDTHS[decisions[0]], "depth": DEPTHS[decisions[1]]})

    def _encode(self, arch: Architecture) -> list[int]:
        return [WIDTHS.index(arch.macro["width"]), DEPTHS.index(arch.macro["depth"])]

    def options(self) -> dict[str, Any]:
        return {}

    def compiler(self) -> Any:
        return _Compiler()


@pytest.fixture
def mlp_space() -> Iterator[None]:
    register_space(MLPTestSpace)
    yield
    SPACES.unregister("mlp_test")


CONFIG: dict[str, Any] = {
    "name": "tabular_f1", "seed": 0, "space": {"name": "mlp_test"}, "strategy": {"name": "random"},
    "evaluator": {"name": "train", "task": "breast_cancer", "metric": "f1_macro",
                  "train": {"epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "threads": 1,
                            "class_weight": "balanced"},
                  "options": {"latency_runs": 0}},
    "budget": {"max_trials": 4}, "execution": {"executor": "local", "workers": 1},
}


def test_tabular_search_ranked_by_f1_macro(tmp_path: Path, mlp_space: None) -> None:
    exp = Experiment.create(parse_config(CONFIG), tmp_path / "exp")
    try:
        ranked = exp.run()
    finally:
        exp.close()
    assert len(ranked) == 4
    f1 = [t.metrics["val_f1_macro"] for t in ranked]
    assert f1 == sorted(f1, reverse=True) and all(t.score == t.metrics["val_f1_macro"] for t in ranked)
    assert 0.8 < f1[0] <= 1.0 and all(0 <= t.metrics["test_f1_macro"] <= 1 for t in ranked)
    assert ranked[0].info["metric"] == "f1_macro" and ranked[0].info["direction"] == "max"
    assert "val_acc" in ranked[0].metrics  # accuracy is still measured beside the score


def test_a_conv_space_on_tabular_data_is_refused_by_the_preflight(tmp_path: Path) -> None:
    cfg = {**CONFIG, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "evaluator": {"name": "train", "task": "npz", "task_options": {"path": str(tmp_path / "t.npz")}}}
    np.savez(tmp_path / "t.npz", x=np.random.default_rng(0).normal(size=(60, 5)), y=np.arange(60) % 2)
    with pytest.raises(ConfigError, match=r"holds tabular data \(5,\) but space 'nb201' builds image models"):
        preflight(parse_config(cfg))
    with pytest.raises(ConfigError, match=r"'breast_cancer' holds tabular data but space 'nb201' builds image"):
        parse_config({**cfg, "evaluator": {"name": "train", "task": "breast_cancer"}})
