"""Property-based tests (hypothesis).

Configs: a valid config mutated at random (a key dropped, an unknown key added, a value of another type, a number
out of range, an unknown name, nested junk) is either valid (``load_config`` returns) or a ``ConfigError``, which
``nas search --out DIR`` turns into exit 2 with one ``error:`` line: never another exception, never a file or
directory created. Valid mutants are not run; the configs use the NAS-Bench-201 evaluator, so validation is cheap.

Architectures: chains of sample + mutate from seeds hypothesis draws, in every registered space (and a joint space
with searchable training fields), stay members; each survives the JSON round trip with the same canonical hash, and
encode/decode gives it back.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.training import TrainConfig
from nas.graph.architecture import Architecture
from nas.runtime.config import load_config
from search_spaces import SearchSpace, get_space, list_spaces
from search_spaces.hparams import with_hyperparameters

ROOT = Path(__file__).resolve().parent.parent

# -- configs ------------------------------------------------------------------------------------------------------
#: valid configs to mutate: every section present, the NAS-Bench-201 evaluator (no training, no data)
VALID: list[dict[str, Any]] = [
    {"name": "prop", "seed": 2, "space": {"name": "nb201"},
     "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}, "dedup": True},
     "evaluator": {"name": "nb201", "options": {"dataset": "cifar10"}}, "budget": {"max_trials": 8},
     "execution": {"executor": "local", "workers": 1}},
    {"name": "prop2", "seed": 0, "space": {"name": "nb201", "options": {"C": 8, "N": 2,
                                                                        "ops": ["none", "skip_connect",
                                                                                "nor_conv_3x3"]}},
     "strategy": {"name": "random"}, "evaluator": {"name": "nb201", "options": {"dataset": "cifar100"}},
     "objectives": ["max:score", "min:params"], "constraints": {"params": {"max": 500000, "min": 1}},
     "budget": {"max_trials": 20, "max_seconds": 60.5},
     "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 0.5, "gpus_per_trial": 0, "max_retries": 2,
                   "threads_per_trial": 1, "address": None}, "output": "runs/prop2"},
    {"name": "prop3", "space": "nb201", "strategy": {"name": "optuna", "options": {"sampler": "tpe"}},
     "evaluator": {"name": "nb201"}, "budget": {"max_trials": 3}, "execution": {"executor": "local", "workers": 1}},
]

SCALARS = (st.none() | st.booleans() | st.integers(-(10**12), 10**12)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
OUT_OF_RANGE = st.sampled_from([0, -1, -7, 0.5, -0.5, 10**12, 2**63, float("nan"), float("inf"), float("-inf"), 1e300])
NAMES = st.sampled_from(["", " ", "nb210", "Random", "evolution ", "ray,local", "none", "x" * 200, "../etc",
                         "nb201\n", "max:score"]) | st.text(max_size=16)

#: keys an "unknown key" mutation tries besides random text: misspellings and keys valid elsewhere in the tree
LIKELY_KEYS = ["nam", "options", "seed", "budget", "C", "ops", "space", "task", "dataset", "workers", "max",
               "population"]
Path_ = tuple[Any, ...]


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every path (a tuple of keys and indices) below ``node``, the root excluded."""
    out: list[Path_] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        out.append((*prefix, key))
        out.extend(_paths(value, (*prefix, key)))
    return out


def _get(node: Any, path: Path_) -> Any:
    for key in path:
        node = node[key]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config with one to three random mutations."""
    config = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(config)
        kind = draw(st.sampled_from(["drop", "add", "retype", "range", "name", "junk"]))
        if kind == "add":
            containers = [()] + [p for p in paths if isinstance(_get(config, p), dict)]
            node = _get(config, draw(st.sampled_from(containers)))
            key = draw(st.text(max_size=10) | st.sampled_from(LIKELY_KEYS))
            node[key] = draw(JUNK)
            continue
        if kind == "range":
            paths = [p for p in paths if isinstance(_get(config, p), (int, float))] or paths
        elif kind == "name":
            paths = [p for p in paths if isinstance(_get(config, p), str)] or paths
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent, key = _get(config, path[:-1]), path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "retype":
            old = parent[key]
            parent[key] = draw(JUNK.filter(lambda v, old=old: type(v) is not type(old)))
        elif kind == "range":
            parent[key] = draw(OUT_OF_RANGE)
        elif kind == "name":
            parent[key] = draw(NAMES)
        else:
            parent[key] = draw(JUNK)
    return config


def _walk(node: Any) -> list[tuple[Path_, Any]]:
    return [(p, _get(node, p)) for p in _paths(node)]


def known_bug(config: dict[str, Any]) -> str | None:
    """Why ``config`` hits a bug these tests found and the library has not fixed yet (each has an xfail test below);
    None otherwise. The property test skips such configs, so that it keeps checking everything else. (None is
    known now: the last, an unbounded space depth, is refused at config time since.)"""
    return None


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=mutated())
def test_mutated_config_is_valid_or_a_config_error_with_exit_2(config: dict[str, Any]) -> None:
    assume(known_bug(config) is None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "cfg.yaml"
        path.write_text(yaml.safe_dump(config))
        cwd = os.getcwd()
        os.chdir(folder)  # a default `runs/<name>` would land here
        try:
            try:
                load_config(path)  # any exception but ConfigError fails the test
                valid = True
            except ConfigError:
                valid = False
            assert _listing(folder) == ["cfg.yaml"], "validation must not create files"
            if valid:
                return  # not run: running is tested elsewhere
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                code = main(["search", str(path), "--out", str(folder / "out"), "--quiet"])
        finally:
            os.chdir(cwd)
        message = stderr.getvalue()
        assert code == 2, message
        assert message.startswith("error: ") and "Traceback" not in message, message
        assert _listing(folder) == ["cfg.yaml"], "a refused search must not create its output directory"


def test_the_valid_configs_mutated_are_valid(tmp_path: Path) -> None:
    for i, config in enumerate(VALID):
        path = tmp_path / f"cfg{i}.yaml"
        path.write_text(yaml.safe_dump(config))
        load_config(path)


# -- architectures ---------------------------------------------------------------------------------------------------
def _space(name: str) -> SearchSpace:
    if name == "nb201+hparams":
        return with_hyperparameters(get_space("nb201"), {"lr": [0.1, 0.05, 0.01], "batch_size": [32, 64]},
                                    check=TrainConfig().replace)
    return get_space(name)


SPACES = [*list_spaces(), "nb201+hparams"]


def _check_member(space: SearchSpace, arch: Architecture) -> None:
    assert space.contains(arch), arch
    text = arch.to_json()
    back = Architecture.from_json(text)
    assert back == arch and back.to_json() == text
    assert back.canonical_hash() == arch.canonical_hash()
    assert Architecture.from_json(arch.to_json(indent=2)).canonical_hash() == arch.canonical_hash()
    assert space.contains(back)
    decisions = space.encode(arch)
    assert space.decode(decisions).canonical_hash() == arch.canonical_hash()


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**63 - 1), steps=st.integers(0, 6))
def test_sample_and_mutate_chains_stay_members(name: str, seed: int, steps: int) -> None:
    space = _space(name)
    rng = np.random.default_rng(seed)
    arch = space.sample(rng)
    _check_member(space, arch)
    for _ in range(steps):
        arch = space.mutate(arch, rng)
        _check_member(space, arch)


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_decoding_any_decisions_gives_a_member(name: str, data: st.DataObject) -> None:
    space = _space(name)
    decisions = [data.draw(st.integers(0, size - 1)) for size in space.decision_sizes()]
    arch = space.decode(decisions)
    _check_member(space, arch)
    for neighbour in space.neighbours(arch)[:20]:
        assert space.contains(neighbour)


# -- bugs the config property found (excluded from it by known_bug until fixed) ----------------------------------
def _with(changes: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(VALID[0])
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return config


#: bugs the config property found, fixed since: each is a ConfigError now (the property checks them too)
FOUND = {
    "ops is a number": {"space.options": {"ops": 1.5}},
    "ops is null": {"space.options": {"ops": None}},
    "strategy option seed": {"strategy.options.seed": 3},
    "strategy option space": {"strategy.options.space": "nb201"},
    "optuna sampler is a mapping": {"strategy": {"name": "optuna", "options": {"sampler": {"tpe": 1}}}},
    "ops is one name, not a list": {"space.options": {"ops": "skip_connect"}},
    "strategy option objectives": {"strategy.options.objectives": ["max:score"]},
    "space depth 2**63": {"space.options": {"N": 2**63}},
    "space depth 10**7": {"space.options": {"N": 10**7}},
    "space width 2**40": {"space.options": {"C": 2**40}},
}


@pytest.mark.parametrize("case", list(FOUND))
def test_a_bug_the_property_found_gives_a_config_error(tmp_path: Path, case: str) -> None:
    config = _with(FOUND[case])
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError):
        load_config(path)


def test_huge_space_depth_is_refused_at_once(tmp_path: Path) -> None:
    """Found by the config property: ``N: 2**63`` was accepted and the space built a list of 2**63 layers
    (MemoryError after minutes). Refused at config time now; run in a child process limited to 1.5 GB of address
    space all the same, so a regression cannot take the machine's memory."""
    config = _with({"space.options": {"N": 2**63}})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**29, 3 * 2**29)); "
            "from nas.cli import main; sys.exit(main(['search', sys.argv[1], '--out', sys.argv[2], '--quiet']))")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"space.options.N = {2**63} (space nb201): must be an integer in 1..256" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("space", "option", "value", "accepted"), [
    ("nb201", "N", 257, "1..256"), ("nb201", "C", 2**20, "1..16384"), ("darts", "layers", 10**6, "3..256"),
    ("darts", "steps", 33, "1..32"), ("rnn", "num_layers", 10**9, "1..256"), ("rnn", "steps", 100, "1..32"),
    ("transformer", "num_cells", 10**9, "1..256"), ("transformer", "nodes", 64, "2..32"),
    ("transformer", "d_model", 10**7, "2..16384"),
])
def test_space_sizes_are_bounded_naming_the_field_value_and_range(space: str, option: str, value: int,
                                                                  accepted: str) -> None:
    with pytest.raises(ConfigError, match=rf"{space} option {option} = {value}: must be an integer in {accepted}"):
        get_space(space, **{option: value})
