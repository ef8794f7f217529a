"""What the search ships to a Ray cluster (nas.cluster.shipping): when, which modules, the user's runtime env merged
and checked. The shipping itself, to a node that cannot import the package, is tested on a real 2-node cluster in
tests/nas_tests/runtime_tests/test_ray_cluster.py."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nas
import search_spaces
import strategies
from nas.cluster.shipping import (
    check_py_modules,
    check_runtime_env,
    code_runtime_env,
    should_ship,
    user_modules,
)
from nas.core.errors import ConfigError
from nas.evaluation.evaluators import TrainEvaluator


@pytest.mark.parametrize(("mode", "address", "joined", "ships"), [
    ("auto", None, None, False),          # a local cluster the search starts: the package is here
    ("auto", "10.0.0.1:6379", None, True),  # an existing cluster
    ("auto", None, 1, False),             # the caller's single-node (local) cluster
    ("auto", None, 3, True),              # the caller connected to a multi-node cluster
    ("always", None, None, True),
    ("never", "10.0.0.1:6379", None, False),
])
def test_when_the_code_is_shipped(mode: str, address: str | None, joined: int | None, ships: bool) -> None:
    assert should_ship(mode, address=address, joined_nodes=joined) is ships


@pytest.fixture
def my_tasks(tmp_path: Path) -> Iterator[Path]:
    """A user's single-file module beside a config, importable (its folder on sys.path), then forgotten."""
    path = tmp_path / "my_tasks_mod.py"
    path.write_text("def load(path):\n    return None\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_tasks_mod", None)


def test_the_users_modules_are_found_ours_and_installed_ones_are_not(my_tasks: Path) -> None:
    module = importlib.import_module("my_tasks_mod")
    assert user_modules([module.load, TrainEvaluator, pytest.raises, module.load]) == [my_tasks]


def test_the_runtime_env_ships_our_packages_the_users_and_keeps_the_users_fields(my_tasks: Path) -> None:
    env = code_runtime_env(True, [my_tasks], {"pip": ["einops"], "py_modules": ["s3://b/extra.zip"],
                                              "excludes": ["*.ckpt"]})
    assert env is not None
    ours = [str(Path(m.__file__).parent) for m in (nas, search_spaces, strategies)]  # type: ignore[arg-type]  # __file__: str | None
    assert env["py_modules"] == [*ours, str(my_tasks), "s3://b/extra.zip"]
    assert env["pip"] == ["einops"] and "*.ckpt" in env["excludes"] and "__pycache__" in env["excludes"]
    assert code_runtime_env(False, [my_tasks], {"pip": ["einops"]}) == {"pip": ["einops"]}  # nothing shipped
    assert code_runtime_env(False) is None


def test_py_modules_are_names_or_paths(my_tasks: Path) -> None:
    assert check_py_modules(["my_tasks_mod", str(my_tasks.parent), "strategies"]) == [
        my_tasks, my_tasks.parent.resolve(), Path(strategies.__file__).parent]  # type: ignore[arg-type]  # __file__: str | None
    with pytest.raises(ConfigError, match=r"execution.py_modules\[1\] = 'nope_xyz': neither a module"):
        check_py_modules(["my_tasks_mod", "nope_xyz"])
    with pytest.raises(ConfigError, match=r"execution.py_modules = 'my_tasks_mod': expected a list"):
        check_py_modules("my_tasks_mod")  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize(("env", "message"), [
    ({"pipp": ["x"]}, r"execution.runtime_env.pipp: not a Ray runtime-environment field \(did you mean 'pip'\?\)"),
    ({"env_vars": {"A": 1}}, r"execution.runtime_env.env_vars = \{'A': 1\}: expected a mapping of names to strings"),
    ({"py_modules": "x"}, r"execution.runtime_env.py_modules = 'x': expected a list of strings"),
    (["pip"], r"execution.runtime_env = \['pip'\]: expected a mapping"),
])
def test_a_bad_runtime_env_is_refused_naming_the_field(env: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_runtime_env(env)
