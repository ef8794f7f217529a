"""Experiment configs (nas.runtime.config): every kind of bad config raises ConfigError naming the field and the bad
value (with a close match where one exists), before anything is written; through the CLI that is exit code 2
and no output directory. A valid config survives ``to_dict`` -> ``parse_config`` and a YAML round trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from nas.cli import main
from nas.core.errors import ConfigError
from nas.runtime.api import load_quickstart
from nas.runtime.config import ExperimentConfig, build_evaluator, build_space, build_strategy, load_config, parse_config
from nas.trials.trial import Status, Trial

VALID: dict[str, Any] = {
    "name": "cfgtest",
    "seed": 3,
    "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
    "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
    "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300}, "train": {"epochs": 1}},
    "searchable": {"lr": [0.1, 0.05]},
    "objectives": ["max:score", "min:params"],
    "constraints": {"params": {"max": 200000}},
    "budget": {"max_trials": 5, "max_seconds": 600},
    "execution": {"executor": "local", "workers": 1},
}


def _with(path: str, value: Any, *, drop: bool = False) -> dict[str, Any]:
    """VALID with the dotted ``path`` set to ``value`` (or removed)."""
    data = copy.deepcopy(VALID)
    node = data
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    if drop:
        del node[last]
    else:
        node[last] = value
    return data


def _renamed(old: str, new: str) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    data[new] = data.pop(old)
    return data


# id -> (config data, substrings the message must hold: the field path, the bad value, the hint)
BAD: dict[str, tuple[Any, list[str]]] = {
    "unknown top-level key": (_renamed("strategy", "stratgy"), ["stratgy", "unknown key", "did you mean 'strategy'"]),
    "unknown nested key": (_with("budget.max_trial", 3), ["budget.max_trial", "did you mean 'max_trials'"]),
    "wrong type seed": (_with("seed", "x"), ["seed", "'x'", "integer"]),
    "bool as int": (_with("seed", True), ["seed", "True", "integer"]),
    "negative seed": (_with("seed", -1), ["seed = -1", ">= 0"]),
    "float max_trials": (_with("budget.max_trials", 2.5), ["budget.max_trials", "2.5", "integer"]),
    "zero max_trials": (_with("budget.max_trials", 0), ["budget.max_trials = 0", "> 0"]),
    "negative max_trials": (_with("budget.max_trials", -4), ["budget.max_trials = -4", "> 0"]),
    "negative max_seconds": (_with("budget.max_seconds", -1), ["budget.max_seconds = -1"]),
    "unknown space": (_with("space.name", "nb210"), ["space", "'nb210'", "did you mean 'nb201'"]),
    "unknown space option": (_with("space.options.opss", ["none"]), ["space", "'opss'", "'ops'"]),
    "bad space option value": (_with("space.options.C", 0), ["space.options.C = 0 (space nb201)"]),
    "space not a mapping": (_with("space", 3), ["space", "3", "mapping"]),
    "unknown strategy": (_with("strategy.name", "evoluton"), ["strategy", "'evoluton'", "did you mean 'evolution'"]),
    "unknown strategy option": (_with("strategy.options.populaton", 4),
                                ["strategy", "'populaton'", "did you mean 'population'"]),
    "bad strategy option value": (_with("strategy.options.population", 0),
                                  ["strategy.options.population = 0 (strategy evolution)"]),
    "inconsistent strategy options": (_with("strategy.options.sample_size", 9), ["strategy", "sample_size 9"]),
    "bad dedup": (_with("strategy.dedup", "yes"), ["strategy.dedup", "'yes'"]),
    "unknown task": (_with("evaluator.task", "digts"), ["evaluator.task", "'digts'", "did you mean 'digits'"]),
    "train evaluator without task": (_with("evaluator.task", None, drop=True), ["evaluator.task", "missing"]),
    "unknown train field": (_with("evaluator.train", {"epoch": 3}), ["train", "'epoch'", "did you mean 'epochs'"]),
    "bad train value": (_with("evaluator.train", {"lr": -1}), ["train.lr = -1"]),
    "bad optimizer": (_with("evaluator.train", {"optimizer": "sdg"}), ["train.optimizer = 'sdg'",
                                                                        "did you mean 'sgd'"]),
    "unknown evaluator": (_with("evaluator", {"name": "nb210"}), ["evaluator", "'nb210'", "did you mean 'nb201'"]),
    "unknown evaluator option": (_with("evaluator", {"name": "nb201", "options": {"datset": "cifar10"}}),
                                 ["evaluator", "'datset'"]),
    "bad evaluator option value": (_with("evaluator", {"name": "nb201", "options": {"dataset": "cifar11"}}),
                                   ["evaluator", "'cifar11'"]),
    "task for the nb201 evaluator": (_with("evaluator", {"name": "nb201", "task": "digits"}),
                                     ["evaluator", "'nb201'", "no task"]),
    "unknown executor": (_with("execution.executor", "rey"), ["execution.executor = 'rey'", "did you mean 'ray'"]),
    "zero workers": (_with("execution.workers", 0), ["execution.workers = 0"]),
    "local executor with 2 workers": (_with("execution.workers", 2), ["execution.workers = 2", "local"]),
    "zero cpus_per_trial": (_with("execution.cpus_per_trial", 0), ["execution.cpus_per_trial = 0"]),
    "gpus_per_trial fraction above 1": (_with("execution.gpus_per_trial", 1.5), ["execution.gpus_per_trial = 1.5"]),
    "negative max_retries": (_with("execution.max_retries", -1), ["execution.max_retries = -1"]),
    "bad objective direction": (_with("objectives", [{"metric": "score", "direction": "up"}]),
                                ["objectives", "'up'", "'max' or 'min'"]),
    "bad objective string": (_with("objectives", ["maximize:score"]), ["objectives", "'maximize'"]),
    "bad constraint": (_with("constraints", {"params": {"maxx": 3}}), ["constraints", "'params'", "maxx"]),
    "missing space": (_with("space", None, drop=True), ["space", "missing"]),
    "searchable unknown field": (_with("searchable", {"lrr": [0.1, 0.01]}), ["searchable", "'lrr'",
                                                                            "did you mean 'lr'"]),
    "searchable bad value": (_with("searchable", {"lr": [0.1, -1]}), ["searchable", "lr = -1"]),
    "searchable not a list": (_with("searchable", {"lr": 0.1}), ["searchable.lr = 0.1", "list"]),
    "nb201 evaluator on another space": (_with("evaluator", {"name": "nb201"}) | {"space": {"name": "darts"}},
                                         ["evaluator.name = 'nb201'", "space.name = 'darts'"]),
    "name with a slash": (_with("name", "a/b"), ["name = 'a/b'"]),
}

# Raw file contents that fail before parse_config: (text, substrings).
BAD_FILES: dict[str, tuple[str, list[str]]] = {
    "malformed yaml": ("name: x\nspace: {name: nb201\n", ["not valid YAML"]),
    "yaml list": ("- name: x\n- space: nb201\n", ["mapping", "list"]),
    "empty file": ("", ["mapping", "NoneType"]),
}


def _message(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_raises_config_error_naming_field_and_value(case: str) -> None:
    data, needles = BAD[case]
    with pytest.raises(ConfigError) as excinfo:
        parse_config(data)
    message = _message(excinfo)
    for needle in needles:
        assert needle in message, f"{case}: {needle!r} not in {message!r}"


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_config_file_raises_config_error(tmp_path: Path, case: str) -> None:
    text, needles = BAD_FILES[case]
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    for needle in needles:
        assert needle in _message(excinfo)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def _cli_rejects(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    out = tmp_path / "out"
    code = main(["search", str(config), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not out.exists(), "a rejected config must not create the output directory"
    assert err.startswith("error: ")
    return err


@pytest.mark.parametrize("case", list(BAD) + list(BAD_FILES) + ["missing file"])
def test_cli_search_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a default `runs/<name>` would land here
    path = tmp_path / "cfg.yaml"
    if case in BAD:
        path.write_text(yaml.safe_dump(BAD[case][0]))
    elif case in BAD_FILES:
        path.write_text(BAD_FILES[case][0])
    err = _cli_rejects(tmp_path, path, capsys)
    assert not (tmp_path / "runs").exists()
    if case in BAD:
        assert BAD[case][1][0] in err


@pytest.mark.parametrize("flag", [["--max-trials", "0"], ["--workers", "2"], ["--seed", "-1"]])
def test_cli_overrides_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: list[str]) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(VALID))
    err = _cli_rejects(tmp_path, path, capsys, *flag)
    assert {"--max-trials": "budget.max_trials = 0", "--workers": "execution.workers = 2",
            "--seed": "seed = -1"}[flag[0]] in err


def test_valid_config_round_trips_through_to_dict_and_yaml(tmp_path: Path) -> None:
    cfg = parse_config(VALID)
    assert isinstance(cfg, ExperimentConfig)
    assert parse_config(cfg.to_dict()) == cfg
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert load_config(path) == cfg
    # defaults are filled in and survive too
    assert cfg.strategy.dedup is True and cfg.execution.max_retries == 1
    assert cfg.budget.max_seconds == 600.0 and isinstance(cfg.budget.max_seconds, float)


def test_shorthand_names_and_overrides() -> None:
    cfg = parse_config({"name": "s", "space": "nb201", "strategy": "random", "evaluator": {"name": "nb201"},
                        "execution": {"executor": "local", "workers": 1}})
    assert cfg.space.name == "nb201" and cfg.strategy.name == "random"
    bigger = cfg.replace(**{"budget.max_trials": 40, "seed": 7})
    assert bigger.budget.max_trials == 40 and bigger.seed == 7 and cfg.budget.max_trials == 20
    with pytest.raises(ConfigError, match=r"budget\.max_trials = 0"):
        cfg.replace(**{"budget.max_trials": 0})


def test_quickstart_config_is_valid_and_round_trips() -> None:
    cfg = load_quickstart()
    assert cfg.execution.executor == "ray" and cfg.evaluator.task == "digits"
    assert parse_config(cfg.to_dict()) == cfg


def test_load_config_overrides_ignore_none() -> None:
    cfg = load_quickstart(seed=None, **{"budget.max_trials": 3})
    assert cfg.budget.max_trials == 3 and cfg.seed == 0


def test_build_functions_turn_the_config_into_objects() -> None:
    cfg = parse_config(VALID)
    space = build_space(cfg)
    assert space.name == "nb201" and any(n.startswith("train.") for n in space.decision_names())
    strategy = build_strategy(cfg, space)
    evaluator = build_evaluator(cfg, space)
    assert strategy.name == "evolution" and evaluator.name == "train"
    assert evaluator.train_config.epochs == 1 and evaluator.data_seed == cfg.seed


def test_threads_per_trial_reaches_the_trainer() -> None:
    cfg = parse_config(_with("execution.threads_per_trial", 1))
    assert build_evaluator(cfg, build_space(cfg)).train_config.threads == 1


@pytest.mark.parametrize("evaluator", [
    {"name": "train", "task": "digits", "train": {"epochs": 1}},
    {"name": "weight_sharing", "task": "digits", "train": {"epochs": 1}},
    {"name": "ssl", "task": "digits", "options": {"pretext": "rotation"}},
    {"name": "gan", "task": "digits"},
])
def test_threads_per_trial_reaches_every_training_evaluator_unless_it_names_its_own(evaluator: dict[str, Any]
                                                                                    ) -> None:
    """``execution.threads_per_trial`` fills the torch threads of the train, weight_sharing, ssl and gan
    evaluators; their own ``threads`` setting (``evaluator.train``, or ``evaluator.options`` for gan) wins."""
    space = {"name": "gan", "options": {"C": 4, "latent_dim": 8}} if evaluator["name"] == "gan" else VALID["space"]
    own = "options" if evaluator["name"] == "gan" else "train"
    for given, expected in ((None, 3), (2, 2)):
        ev = copy.deepcopy(evaluator)
        if given is not None:
            ev[own] = {**ev.get(own, {}), "threads": given}
        data = {**_with("execution.threads_per_trial", 3), "space": space, "evaluator": ev}
        data.pop("searchable", None)
        cfg = parse_config(data)
        built = build_evaluator(cfg, build_space(cfg))
        threads = built.threads if evaluator["name"] == "gan" else built.train_config.threads
        assert threads == expected, (evaluator["name"], given)


def test_space_task_kind_mismatch_of_a_named_task_is_refused_at_config_time() -> None:
    data = _with("space", {"name": "rnn"})
    del data["searchable"]
    with pytest.raises(ConfigError, match=r"evaluator\.task = 'digits' holds image data but space 'rnn' builds "
                                          r"sequence models; pick a matching space or task"):
        parse_config(data)


def test_space_task_kind_mismatch_of_an_npz_task_is_caught_at_the_first_evaluation(tmp_path: Path) -> None:
    """An `npz` task's kind is known once its data is loaded: the config is accepted and every trial fails with
    a reason naming the space and the task."""
    path = tmp_path / "images.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(60, 1, 8, 8)), y=np.arange(60) % 3)
    data = _with("space", {"name": "rnn"})
    del data["searchable"]
    data["evaluator"] = {"name": "train", "task": "npz", "task_options": {"path": str(path)}, "train": {"epochs": 1}}
    cfg = parse_config(data)
    space = build_space(cfg)
    strategy = build_strategy(cfg, space)
    (trial,) = strategy.ask(1)
    result = build_evaluator(cfg, space).evaluate(Trial(trial.id, trial.arch, trial.seed))
    assert result.status is Status.FAILED
    assert "space 'rnn'" in result.error and "task 'npz'" in result.error
