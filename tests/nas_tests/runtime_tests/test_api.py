"""The Python entry point (nas.runtime.api, re-exported as ``nas.search``): a search from a dict, a YAML file or an
ExperimentConfig runs to its budget and returns the finished Experiment; the three forms of one config store the
same trials (local executor, NAS-Bench-201 evaluator); bad configs fail before anything is written; neither
``import nas`` nor reaching ``nas.search`` loads torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import nas
from nas.core.errors import ConfigError
from nas.runtime import api
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

ROOT = Path(__file__).resolve().parents[3]

CONFIG: dict[str, Any] = {
    "name": "api", "seed": 2, "space": {"name": "nb201"}, "strategy": {"name": "evolution",
                                                                      "options": {"population": 4, "sample_size": 2}},
    "evaluator": {"name": "nb201"}, "budget": {"max_trials": 8}, "execution": {"executor": "local", "workers": 1},
}


def _trials(exp: Experiment) -> list[tuple[int, str, float | None]]:
    return [(t.id, t.hash, t.score) for t in exp.store.trials()]


def test_search_from_a_dict_runs_the_budget_and_returns_the_experiment(tmp_path: Path) -> None:
    lines: list[str] = []
    exp = nas.search(CONFIG, directory=tmp_path / "run", progress=lambda event: lines.append(str(event)))
    try:
        assert isinstance(exp, nas.Experiment)
        assert exp.directory == tmp_path / "run"
        assert exp.done() == 8 and len(exp.store.trials("COMPLETE")) == 8
        ranked = exp.ranked()
        scores = [t.score for t in ranked]
        assert len(ranked) == 8 and scores == sorted(scores, reverse=True)
        assert nas.Architecture.from_json((exp.directory / Experiment.BEST).read_text()) == ranked[0].arch
        assert lines[0].startswith("search api: 0/8 trials done") and lines[-1].startswith("[8/8] trial ")
        assert exp.summary()["done"] == 8
    finally:
        exp.close()


def test_a_path_a_dict_and_a_config_object_give_the_same_search(tmp_path: Path) -> None:
    config_file = tmp_path / "api.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    results = []
    for i, config in enumerate((config_file, str(config_file), CONFIG, parse_config(CONFIG))):
        exp = nas.search(config, directory=tmp_path / f"run{i}")
        results.append(_trials(exp))
        exp.close()
    assert len(results[0]) == 8 and all(r == results[0] for r in results)


def test_search_defaults_to_the_configured_output_and_overwrites_only_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = {**CONFIG, "budget": {"max_trials": 2}, "output": "out/here"}
    nas.search(config).close()
    assert (tmp_path / "out" / "here" / Experiment.STORE).is_file()
    with pytest.raises(ConfigError, match="already holds an experiment"):
        nas.search(config)
    exp = nas.search(config, overwrite=True)
    assert exp.done() == 2
    exp.close()


def test_bad_configs_fail_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config = 42 \(int\): give the path"):
        nas.search(42, directory=tmp_path / "a")  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(ConfigError, match="does not exist"):
        nas.search(tmp_path / "missing.yaml", directory=tmp_path / "b")
    with pytest.raises(ConfigError, match=r"budget\.max_trials = 0"):
        nas.search({**CONFIG, "budget": {"max_trials": 0}}, directory=tmp_path / "c")
    assert not any(tmp_path.iterdir())


def test_public_names_are_the_runtime_ones() -> None:
    from nas.runtime.config import load_config

    assert nas.search is api.search and nas.Experiment is Experiment and nas.load_config is load_config
    assert {"search", "Experiment", "load_config"} <= set(nas.__all__)


def test_importing_nas_and_its_search_names_does_not_import_torch(tmp_path: Path) -> None:
    """``nas.search`` and ``nas.load_config`` are reached without torch; running or validating loads it."""
    code = "import sys, nas; f = (nas.search, nas.load_config); print('torch' in sys.modules, callable(f[0]))"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False, env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True"]
