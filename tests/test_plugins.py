"""Public registration of strategies, spaces, tasks, evaluators and ops, and the out-of-tree example plugin
(``experiments/plugins/nasgraph-example-strategy``) installed into a temporary folder: listed by
``nas strategies``, usable from a YAML config through ``nas search``, and passing the shipped conformance
suite. A broken plugin is listed as not usable and named when a config uses it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import nas
from nas.core.errors import ConfigError
from nas.core.registry import RegistrationError
from nas.evaluation.evaluators import EVALUATORS, Evaluator, get_evaluator, list_evaluators, register_evaluator
from nas.evaluation.tasks import TASKS, TaskLoader, list_tasks, load_task, register_task, task_kind
from nas.graph.architecture import Architecture, Cell
from nas.graph.compiler import build_model
from nas.graph.ops import CONV_OPS, SEQUENCE_OPS, register_op
from nas.runtime.config import parse_config
from nas.trials.trial import Result, Status, Trial
from search_spaces import SPACES, NB201Space, get_space, list_spaces, register_space
from strategies import STRATEGIES, RandomSearch, Strategy, get_strategy, list_strategies, register_strategy

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "experiments" / "plugins" / "nasgraph-example-strategy"


# -- public registration ---------------------------------------------------------------------------------
@pytest.fixture
def cleanup() -> Iterator[list[tuple[object, str]]]:
    """(registry, name) pairs to unregister after the test, so registrations do not leak into others."""
    added: list[tuple[object, str]] = []
    yield added
    for registry, name in added:
        registry.unregister(name)  # type: ignore[attr-defined]  # a Registry, kept as object with its name


def test_register_strategy_decorates_a_class_and_get_strategy_builds_it(cleanup) -> None:
    @register_strategy
    class FirstOnly(RandomSearch):
        name = "first_only_test"

        def __init__(self, *, width: int = 1, **kwargs) -> None:
            super().__init__(**kwargs)
            self.width = width

    cleanup.append((STRATEGIES, "first_only_test"))
    assert FirstOnly.name == "first_only_test" and "first_only_test" in list_strategies()
    strategy = get_strategy("first_only_test", space=get_space("nb201"), seed=0, dedup=False, width=3)
    assert isinstance(strategy, FirstOnly) and strategy.width == 3 and len(strategy.ask(2)) == 2
    with pytest.raises(ConfigError, match=r"strategy 'first_only_test' has no option 'widht'.*did you mean 'width'"):
        get_strategy("first_only_test", space=get_space("nb201"), widht=3)


def test_register_strategy_refuses_clear_mistakes() -> None:
    class Abstract(Strategy):
        name = "abstract_test"

    with pytest.raises(RegistrationError, match=r"strategy 'abstract_test': .*Abstract is abstract \(it does not "
                                                r"implement _observe, _propose\)"):
        register_strategy(Abstract)
    with pytest.raises(RegistrationError, match=r"strategy 'random' is already registered; choose another name"):
        register_strategy(type("Again", (RandomSearch,), {}))  # inherits name 'random'
    with pytest.raises(RegistrationError, match=r"expected a subclass of strategies.Strategy"):
        register_strategy(type("NotAStrategy", (), {"name": "not_a_strategy"}))  # type: ignore[type-var]  # the wrong type is the point
    assert "abstract_test" not in list_strategies() and "not_a_strategy" not in list_strategies()


def test_register_space_and_get_space(cleanup) -> None:
    @register_space
    class SmallNB201(NB201Space):
        name = "nb201_small_test"

        def __init__(self, *, C: int = 4) -> None:
            super().__init__(C=C, N=1)

    cleanup.append((SPACES, "nb201_small_test"))
    space = get_space("nb201_small_test", C=2)
    assert isinstance(space, SmallNB201) and "nb201_small_test" in list_spaces()
    arch = space.sample(np.random.default_rng(0))
    assert arch.space == "nb201_small_test" and space.contains(arch)


def test_register_task_with_its_kind_then_load_it(cleanup) -> None:
    rng = np.random.default_rng(0)

    @register_task("waves_test", kind="sequence")
    def waves(path: str | None) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(["low", "high"], 50)
        x = np.sin(np.linspace(0, 6, 20))[None, :, None] * np.where(y == "high", 2.0, 1.0)[:, None, None]
        return x + rng.normal(0, 0.01, x.shape), y

    cleanup.append((TASKS, "waves_test"))
    assert "waves_test" in list_tasks() and task_kind("waves_test") == "sequence"
    task = load_task("waves_test", seed=0)
    assert task.kind == "sequence" and task.input_shape == (20, 1) and task.classes == ("high", "low")
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == 100
    assert waves.__name__ == "waves"  # the decorator returns the function


def test_task_loaders_are_checked(cleanup) -> None:
    with pytest.raises(ValueError, match=r"TaskLoader\.kind = 'video'"):
        register_task("video_test", lambda path: (np.zeros((4, 1, 1, 1, 1)), np.zeros(4)), kind="video")
    with pytest.raises(RegistrationError, match="task 'digits' is already registered"):
        register_task("digits", lambda path: (np.zeros((4, 1, 2, 2)), np.arange(4)), kind="image")
    register_task("flat_test", lambda path: (np.zeros((40, 5)), np.arange(40) % 2), kind="image")
    cleanup.append((TASKS, "flat_test"))
    with pytest.raises(ConfigError, match=r"task 'flat_test': its loader returned x of shape \(40, 5\) and dtype "
                                          r"float64; it must be numeric \(N, C, H, W\) images"):
        load_task("flat_test")
    with pytest.raises(RegistrationError, match=r"expected a nas\.evaluation\.tasks\.TaskLoader"):
        TASKS.register("bare_test", lambda path: None)
    assert isinstance(TASKS.get("digits"), TaskLoader)


def test_register_evaluator_and_get_evaluator(cleanup) -> None:
    @register_evaluator
    class ConstantEvaluator(Evaluator):
        name = "constant_test"

        def __init__(self, *, score: float = 1.0) -> None:
            self.score = score

        def evaluate(self, trial: Trial, on_epoch=None) -> Result:
            return Result(Status.COMPLETE, score=self.score)

    cleanup.append((EVALUATORS, "constant_test"))
    assert "constant_test" in list_evaluators()
    evaluator = get_evaluator("constant_test", score=2.5)
    trial = Trial(0, get_space("nb201").sample(np.random.default_rng(0)), 0)
    assert evaluator.evaluate(trial).score == 2.5


class Doubler(nn.Module):
    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(C_in, C_out, 1, stride=stride, bias=False)

    def forward(self, x):
        return 2 * self.conv(x)


def test_register_op_makes_an_op_usable_in_cells_of_its_family(cleanup) -> None:
    factory = register_op("conv", "doubler_test", lambda C_in, C_out, stride, affine: Doubler(C_in, C_out, stride))
    cleanup.append((CONV_OPS, "doubler_test"))
    assert CONV_OPS.get("doubler_test").factory is factory
    base = get_space("nb201", C=4, N=1).sample(np.random.default_rng(0))
    edges = tuple((s, d, "doubler_test" if i == 0 else op) for i, (s, d, op) in enumerate(base.cell("cell").edges))
    old = base.cell("cell")
    arch = base.replace(cells={"cell": Cell(family="conv", inputs=old.inputs, nodes=old.nodes, edges=edges,
                                            output=old.output)})
    assert Architecture.from_json(arch.to_json()).validate() == arch
    model = build_model(arch, (3, 8, 8), 5)
    assert any(isinstance(m, Doubler) for m in model.modules())
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 5)


def test_a_registered_op_is_searched_through_a_spaces_ops_option(cleanup) -> None:
    register_op("conv", "doubler_test", lambda C_in, C_out, stride, affine: Doubler(C_in, C_out, stride))
    cleanup.append((CONV_OPS, "doubler_test"))
    register_op("sequence", "scale_test", lambda d_model, seq_len: nn.Linear(d_model, d_model))
    cleanup.append((SEQUENCE_OPS, "scale_test"))
    for name, options, shape in (("nb201", {"C": 4, "N": 1, "ops": ["none", "nor_conv_3x3", "doubler_test"]},
                                  (3, 8, 8)),
                                 ("darts", {"C": 4, "layers": 3, "steps": 2, "ops": ["skip_connect", "doubler_test"]},
                                  (3, 8, 8)),
                                 ("transformer", {"d_model": 8, "ops": ["skip_connect", "scale_test"]}, (6, 4))):
        space = get_space(name, **options)
        archs = [space.sample(np.random.default_rng(seed)) for seed in range(6)]
        used = {op for arch in archs for cell in arch.cells.values() for _, _, op in cell.edges}
        assert used & {"doubler_test", "scale_test"}, name  # the new op is one of the choices
        for arch in archs:
            model = space.build_model(arch, shape, 3)
            model(torch.randn(2, *shape)).sum().backward()


def test_the_nb201_evaluator_refuses_ops_the_benchmark_never_trained(cleanup) -> None:
    register_op("conv", "doubler_test", lambda C_in, C_out, stride, affine: Doubler(C_in, C_out, stride))
    cleanup.append((CONV_OPS, "doubler_test"))
    data = {"name": "t", "space": {"name": "nb201", "options": {"ops": ["none", "nor_conv_3x3", "doubler_test"]}},
            "strategy": "random", "evaluator": {"name": "nb201"}, "execution": {"executor": "local", "workers": 1}}
    with pytest.raises(nas.ConfigError, match=r"space.options.ops = .*NAS-Bench-201 holds results for none, "
                                              r"skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 only, not "
                                              r"doubler_test; use the train or proxy evaluator"):
        parse_config(data)


def test_register_op_checks_the_factory_signature_and_family() -> None:
    with pytest.raises(RegistrationError, match=r"conv op 'bad_test': factory .* cannot be called as "
                                                r"factory\(C_in, C_out, stride, affine\)"):
        register_op("conv", "bad_test", lambda d_model, seq_len: nn.Identity())
    with pytest.raises(RegistrationError, match="conv op 'skip_connect' is already registered"):
        register_op("conv", "skip_connect", lambda C_in, C_out, stride, affine: nn.Identity())
    with pytest.raises(nas.UnknownNameError, match=r"unknown op family 'convv'.*did you mean 'conv'"):
        register_op("convv", "x_test", lambda *a: nn.Identity())
    assert "bad_test" not in CONV_OPS


def test_registration_functions_are_reexported_lazily_from_nas() -> None:
    assert nas.register_strategy is register_strategy and nas.register_space is register_space
    assert nas.register_task is register_task and nas.register_evaluator is register_evaluator
    assert nas.register_op is register_op


# -- the out-of-tree example plugin, installed --------------------------------------------------------------
BROKEN_ENTRY_POINTS = "[nasgraph.strategies]\nbroken_climb = nasgraph_broken_plugin:Missing\n"
SPACE_ENTRY_POINTS = "[nasgraph.spaces]\nnb201_tiny = nasgraph_tiny_space:Tiny\n"
SPACE_MODULE = """from search_spaces import NB201Space


class Tiny(NB201Space):
    name = "nb201_tiny"

    def __init__(self, *, C: int = 2) -> None:
        super().__init__(C=C, N=1, ops=["none", "skip_connect"])

    def options(self):
        return {"C": self.C}
"""


def fake_distribution(site: Path, dist: str, version: str, entry_points: str, module: str, source: str) -> None:
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)
    (site / f"{module}.py").write_text(source)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed with pip into a fresh folder (from a copy: pip builds in the source
    folder), next to a broken plugin whose entry point names a class its module lacks and a space plugin."""
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "source"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--no-index", "--target", str(target), str(source)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    fake_distribution(target, "nasgraph-broken-plugin", "0.2", BROKEN_ENTRY_POINTS, "nasgraph_broken_plugin",
                      "Present = 1\n")
    fake_distribution(target, "nasgraph-tiny-space", "1.0", SPACE_ENTRY_POINTS, "nasgraph_tiny_space", SPACE_MODULE)
    return target


def run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_nas_strategies_lists_the_plugins(site: Path, tmp_path: Path) -> None:
    result = run(site, tmp_path, "-m", "nas.cli", "strategies")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[:len(list_strategies())] == list_strategies()  # the built-ins, unchanged
    assert "hill_climb  (plugin from nasgraph-example-strategy 0.1.0)" in lines
    (broken,) = [line for line in lines if line.startswith("broken_climb")]
    assert "(plugin from nasgraph-broken-plugin 0.2; not usable: the strategy plugin 'broken_climb = " in broken
    assert "AttributeError" in broken and "Missing" in broken


def test_nas_spaces_lists_a_plugin_space(site: Path, tmp_path: Path) -> None:
    table = run(site, tmp_path, "-m", "nas.cli", "spaces")
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [*list_spaces(), "nb201_tiny"]
    assert lines[-1].split() == ["nb201_tiny", "image", "6", "decisions", "64", "members", "(plugin", "from",
                                 "nasgraph-tiny-space", "1.0)"]
    rows = json.loads(run(site, tmp_path, "-m", "nas.cli", "spaces", "--json").stdout)
    assert all("plugin" not in row for row in rows[:-1])  # the built-ins' rows are unchanged
    assert rows[-1] == {"name": "nb201_tiny", "input": "image", "decisions": 6, "size": 64,
                        "options": {"C": 2}, "plugin": "nasgraph-tiny-space 1.0"}


def config(tmp_path: Path, strategy: dict) -> Path:
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump({
        "name": "plugin", "seed": 0, "space": {"name": "nb201"}, "strategy": strategy,
        "evaluator": {"name": "nb201"}, "budget": {"max_trials": 10},
        "execution": {"executor": "local", "workers": 1}, "output": str(tmp_path / "run"),
    }))
    return path


def test_nas_search_runs_the_plugin_strategy_from_yaml(site: Path, tmp_path: Path) -> None:
    cfg = config(tmp_path, {"name": "hill_climb", "options": {"patience": 4}})
    result = run(site, tmp_path, "-m", "nas.cli", "search", str(cfg), "--quiet")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    status = run(site, tmp_path, "-m", "nas.cli", "status", str(tmp_path / "run"), "--json")
    assert status.returncode == 0, status.stderr[-2000:]
    summary = json.loads(status.stdout)
    assert summary["done"] == 10 and summary["counts"] == {"COMPLETE": 10}


def test_a_config_naming_a_broken_plugin_exits_2_naming_it(site: Path, tmp_path: Path) -> None:
    result = run(site, tmp_path, "-m", "nas.cli", "search", str(config(tmp_path, {"name": "broken_climb"})))
    assert result.returncode == 2
    assert "the strategy plugin 'broken_climb = nasgraph_broken_plugin:Missing' (group nasgraph.strategies) from " \
           "nasgraph-broken-plugin 0.2 failed to load: AttributeError" in result.stderr


def test_the_shipped_conformance_suite_passes_on_the_installed_plugin(site: Path, tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    shutil.copytree(PLUGIN / "tests", tests)  # run from outside the checkout, as a plugin author would
    result = run(site, tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
