"""Define-by-run builders: the decision recorder, discovery of conditional decisions, builder architectures
(JSON, canonical hash with inactive decisions) and the errors of wrong use."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.graph.architecture import Architecture
from nas.graph.builder import Choices, build_module, builder_architecture, discover, resolve_builder
from nas.graph.compiler import build_model
from search_spaces import get_space

CONDITIONAL = """
from torch import nn

def build(c, input_shape, num_classes):
    layers, width = [], input_shape[0]
    for i in range(c.int("depth", 1, 3)):
        out = c.choice(f"width_{i}", [4, 8])
        layers += [nn.Linear(width, out), nn.ReLU()]
        width = out
    if c.bool("dropout"):
        layers.append(nn.Dropout(c.float("p", 0.1, 0.5, num=3)))
    return nn.Sequential(*layers, nn.Linear(width, num_classes))

def fixed(c, input_shape, num_classes):
    return nn.Linear(input_shape[0], num_classes)
"""


def write_module(folder: Path, source: str) -> str:
    """A module of ``source`` in ``folder`` under a fresh name (imports are cached per name)."""
    name = f"user_builders_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def test_choices_record_and_replay() -> None:
    c = Choices()
    assert c.choice("act", ["relu", "gelu"]) == "relu"
    assert c.int("n", 2, 10, step=4) == 2 and c.asked["n"].options == (2, 6, 10)
    assert c.int("w", 16, 256, log=True, num=5) == 16 and c.asked["w"].options == (16, 32, 64, 128, 256)
    assert c.float("lr", 0.001, 0.1, log=True, num=3) == 0.001 and c.asked["lr"].options == (0.001, 0.01, 0.1)
    assert c.bool("skip") is False
    assert c.choice("act", ["relu", "gelu"]) == "relu"  # the same name asked again is the same decision
    replay = Choices({"act": "gelu", "n": 6}, strict=True)
    assert replay.choice("act", ["relu", "gelu"]) == "gelu" and replay.int("n", 2, 10, step=4) == 6
    with pytest.raises(InvalidArchitectureError, match=r"asks decision 'k', which the architecture does not set"):
        replay.choice("k", [1, 2])
    with pytest.raises(InvalidArchitectureError, match=r"decision 'x' = 3 is not one of its options \[1, 2\]"):
        Choices({"x": 3}).choice("x", [1, 2])


@pytest.mark.parametrize(("call", "match"), [
    (lambda c: c.choice("a", []), r"decision 'a' has no options"),
    (lambda c: c.choice("a", [1, 1]), r"repeat a value"),
    (lambda c: c.choice("a", [nn.ReLU]), r"is not a JSON scalar"),
    (lambda c: c.choice("a", "ab"), r"must be a list of values"),
    (lambda c: (c.choice("a", [1, 2]), c.choice("a", [1, 3])), r"'a' is asked twice with different options"),
    (lambda c: c.int("a", 5, 1), r"high = 1 is below low = 5"),
    (lambda c: c.int("a", 0, 10**6), r"give a larger step or log=True"),
    (lambda c: c.float("a", 0.0, 1.0, log=True), r"a log range needs low > 0"),
    (lambda c: c.choice("", [1]), r"non-empty string"),
])
def test_choices_refuse_wrong_use(call: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call(Choices())  # type: ignore[operator]  # the lambdas of the table


def test_discovery_finds_conditional_decisions(tmp_path: Path) -> None:
    mod = write_module(tmp_path, CONDITIONAL)
    fn = resolve_builder(f"{mod}:build", [str(tmp_path)])
    found = discover(fn, f"{mod}:build", (5,), 3)
    assert [d.name for d in found.decisions] == ["depth", "width_0", "dropout", "width_1", "width_2", "p"]
    assert found.device == "meta" and found.runs < 50
    assert discover(resolve_builder(f"{mod}:fixed"), f"{mod}:fixed", (5,), 3).decisions == ()


def test_builder_architecture_round_trip_and_hash(tmp_path: Path) -> None:
    mod = write_module(tmp_path, CONDITIONAL)
    resolve_builder(f"{mod}:build", [str(tmp_path)])
    values = {"depth": 1, "width_0": 8, "width_1": 4, "width_2": 4, "dropout": False, "p": 0.1}
    arch = builder_architecture("python", f"{mod}:build", values, inactive=["width_1", "width_2", "p"])
    assert arch.cells == {} and arch.validate() is arch
    assert Architecture.from_json(arch.to_json()) == arch
    unused = ["width_1", "width_2", "p"]
    twin = builder_architecture("python", f"{mod}:build", {**values, "width_2": 8}, inactive=unused)
    assert twin != arch and twin.canonical_hash() == arch.canonical_hash()  # differs only where nothing is asked
    other = builder_architecture("python", f"{mod}:build", {**values, "width_0": 4}, inactive=unused)
    assert other.canonical_hash() != arch.canonical_hash()
    model = build_model(arch, (5,), 3)
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == [8, 3]
    assert model(torch.randn(2, 5)).shape == (2, 3)
    fixed = builder_architecture("reference", f"{mod}:fixed", {})
    assert isinstance(build_module(fixed, (5,), 3), nn.Linear)
    with pytest.raises(InvalidArchitectureError, match=r"at least one cell"):
        Architecture(space="x", cells={}, macro={"skeleton": "cells"})


def test_python_space_searches_a_conditional_builder(tmp_path: Path) -> None:
    mod = write_module(tmp_path, CONDITIONAL)
    space = get_space("python", builder=f"{mod}:build", path=str(tmp_path), input_kind="tabular")
    assert space.decision_names() == ["depth", "width_0", "dropout", "width_1", "width_2", "p"]
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    for arch in archs:
        depth = arch.macro["decisions"]["depth"]
        inactive = set(arch.macro.get("inactive", []))
        assert {f"width_{i}" for i in range(depth, 3)} <= inactive
        assert not {f"width_{i}" for i in range(depth)} & inactive
        model = space.compiler()(arch, (5,), 3)
        assert sum(isinstance(m, nn.Linear) for m in model) == depth + 1
    hashes = {a.canonical_hash() for a in archs}
    assert len(hashes) < len(set(archs))  # equal functions share a hash (de-duplication counts them once)


@pytest.mark.parametrize(("source", "ref", "match"), [
    ("", "no_such_module_xyz:build", r"module 'no_such_module_xyz' cannot be imported"),
    ("build = 3\n", "{mod}:build", r"is an object of type int, not a function"),
    ("def build(c):\n    pass\n", "{mod}:build", r"must take \(c, input_shape, num_classes\)"),
    ("def build(c, s, n):\n    pass\n", "{mod}:biuld", r"has no function 'biuld' \(did you mean 'build'\?\)"),
    ("def build(c, s, n):\n    return 3\n", "{mod}:build", r"returned an object of type int, not a torch.nn.Module"),
    ("def build(c, s, n):\n    w = c.choice('w', [1, 2])\n    raise RuntimeError('no good')\n", "{mod}:build",
     r"raised RuntimeError: no good \(at user_builders_\w+\.py:3 in build: raise RuntimeError\('no good'\)\)"),
    ("raise ImportError('broken')\n", "{mod}:build", r"importing module .* raised ImportError: broken \(at"),
    ("import no_such_dependency_q\n", "{mod}:build",
     r"raised ModuleNotFoundError: No module named 'no_such_dependency_q' \(at user_builders_\w+\.py:1 .*install"),
    ("def build(c, s, n):\n    return None\n", "nocolon", r"name it as 'package.module:function'"),
    ("import torch\ndef build(c, s, n):\n    d = c.choice('d', [1, 2])\n"
     "    return torch.nn.Linear(s[0], c.choice('w', [d, 3]))\n", "{mod}:build",
     r"decision 'w' is asked with different options"),
])
def test_wrong_builders_get_clear_errors(tmp_path: Path, source: str, ref: str, match: str) -> None:
    mod = write_module(tmp_path, source)
    with pytest.raises(ConfigError, match=match):
        get_space("python", builder=ref.format(mod=mod), path=str(tmp_path))
