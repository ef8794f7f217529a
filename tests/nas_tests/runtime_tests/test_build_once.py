"""Validating a config builds its components without side effects, an experiment builds each component exactly
once (nas.runtime.config.build), evaluators are handed a compiler rather than the space, and a proposal outside
the space is refused where trials are made (the strategy's ``ask``), so no evaluator ever sees it."""

from __future__ import annotations

import copy
import functools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from nas.core.errors import InvalidArchitectureError
from nas.evaluation.evaluators import NB201Evaluator, TrainEvaluator
from nas.graph.architecture import Architecture
from nas.runtime.config import build, load_config, parse_config
from nas.runtime.executors import LocalExecutor
from nas.runtime.experiment import Experiment, run_loop
from nas.trials.trial import Result, Trial
from search_spaces import NB201Space, get_space
from search_spaces.base import SpaceCompiler
from strategies import RandomSearch, Strategy

MAX_TRIALS = 4


def config(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "once", "seed": 2, "space": {"name": "nb201"}, "strategy": {"name": "random"},
                            "evaluator": {"name": "nb201"}, "budget": {"max_trials": MAX_TRIALS},
                            "execution": {"executor": "local", "workers": 1}}
    data.update(changes)
    return data


def count_constructions(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[object]:
    """Every instance of ``cls`` constructed from now on (the constructor keeps its signature)."""
    made: list[object] = []
    original = cls.__init__

    @functools.wraps(original)
    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return made


# -- validation has no side effects ----------------------------------------------------------------------
def optuna_sqlite(db: Path) -> dict[str, Any]:
    return config(strategy={"name": "optuna", "options": {"storage": f"sqlite:///{db}", "study_name": "s"}})


def test_validating_an_optuna_config_with_sqlite_storage_creates_no_file(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    parse_config(optuna_sqlite(db))
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(optuna_sqlite(db)))
    cfg = load_config(path, seed=5)
    cfg.replace(**{"budget.max_trials": 9})
    assert not db.exists()
    # the study is made when the experiment first uses the strategy, and it holds the experiment's trials
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        exp.run()
    finally:
        exp.close()
    assert db.exists()
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert len(study.trials) >= MAX_TRIALS and all(t.state.name == "COMPLETE" for t in study.trials)


def test_an_unknown_optuna_sampler_is_still_refused_when_the_config_is_checked(tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    data = optuna_sqlite(db)
    data["strategy"]["options"]["sampler"] = "tpee"
    with pytest.raises(Exception, match=r"unknown sampler 'tpee'.*did you mean 'tpe'"):
        parse_config(data)
    data["strategy"]["options"].update(sampler="tpe", sampler_options={"n_startup": 3})
    with pytest.raises(Exception, match=r"sampler TPESampler rejected sampler_options"):
        parse_config(data)
    assert not db.exists()


# -- each component is built once ------------------------------------------------------------------------
@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    return {"space": count_constructions(monkeypatch, NB201Space),
            "strategy": count_constructions(monkeypatch, RandomSearch),
            "evaluator": count_constructions(monkeypatch, NB201Evaluator)}


def test_load_validate_create_and_open_build_each_component_once(tmp_path: Path,
                                                                  counts: dict[str, list[object]]) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config()))
    exp = Experiment.create(load_config(path, seed=3), tmp_path / "exp")
    try:
        assert {k: len(v) for k, v in counts.items()} == {"space": 1, "strategy": 1, "evaluator": 1}
        # the experiment holds the very objects the validation built
        assert exp.space is counts["space"][0] and exp.strategy.space is exp.space
        assert exp.strategy.inner is counts["strategy"][0] and exp.evaluator is counts["evaluator"][0]
        exp.run()
    finally:
        exp.close()
    for made in counts.values():
        made.clear()
    exp = Experiment.open(tmp_path / "exp", max_trials=MAX_TRIALS + 2)  # a bigger budget: the config is replaced
    try:
        assert {k: len(v) for k, v in counts.items()} == {"space": 1, "strategy": 1, "evaluator": 1}
        assert len(exp.run()) >= MAX_TRIALS + 2 - 1  # nb201 lookups of distinct cells (dedup) all complete
        assert exp.done() == MAX_TRIALS + 2
    finally:
        exp.close()


def test_build_hands_out_the_validated_components_once_then_builds_anew(counts: dict[str, list[object]]) -> None:
    cfg = parse_config(config())
    first = build(cfg)
    assert first.strategy.inner is counts["strategy"][0] and len(counts["strategy"]) == 1
    second = build(cfg)  # the first ones may be in use by now: never handed out twice
    assert second.strategy is not first.strategy and second.space is not first.space
    assert len(counts["strategy"]) == len(counts["space"]) == 2


def test_copies_and_pickles_of_a_config_carry_settings_not_components(counts: dict[str, list[object]]) -> None:
    cfg = parse_config(config())
    for other in (copy.deepcopy(cfg), pickle.loads(pickle.dumps(cfg))):
        assert other == cfg and other.to_dict() == cfg.to_dict()
        assert build(other).space is not counts["space"][0]
    assert build(cfg).space is counts["space"][0]


# -- the evaluator is handed a compiler ------------------------------------------------------------------
TINY = get_space("nb201", C=4, N=1)
TRAIN = {"evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 200}, "train": {"epochs": 1}},
         "space": {"name": "nb201", "options": {"C": 4, "N": 1}}}


def test_the_train_evaluator_holds_the_space_compiler_not_the_space(tmp_path: Path) -> None:
    exp = Experiment.create(parse_config(config(**TRAIN)), tmp_path / "exp")
    try:
        evaluator = exp.evaluator
        assert isinstance(evaluator, TrainEvaluator) and not hasattr(evaluator, "space")
        assert evaluator.compiler == exp.space.compiler() == SpaceCompiler(name="nb201", input_kind="image")
        shipped = pickle.loads(pickle.dumps(evaluator))  # as to a Ray worker
        (trial,) = exp.strategy.ask(1)
        result = shipped.evaluate(trial)
        assert result.ok, result.error
    finally:
        exp.close()


def test_the_compiler_compiles_without_the_membership_check_of_build_model() -> None:
    other = get_space("nb201", C=2, N=1).sample(np.random.default_rng(0))  # nb201, but other macro settings
    assert not TINY.contains(other)
    with pytest.raises(InvalidArchitectureError, match="not a member of space 'nb201'"):
        TINY.build_model(other, (3, 8, 8), 10)
    model = TINY.compiler()(other, (3, 8, 8), 10)  # the architecture's own validity is all it checks
    assert sum(p.numel() for p in model.parameters()) > 0


# -- membership is checked once, where trials are made ---------------------------------------------------
class Stray(Strategy):
    """Proposes members of another nb201 space (same name, other macro settings)."""

    name = "stray"

    def _propose(self, n: int) -> list[Architecture]:
        other = get_space("nb201", C=2, N=1)
        return [other.sample(self.rng) for _ in range(n)]

    def _observe(self, trial: Trial, result: Result) -> None:
        return None


class Recording(NB201Evaluator):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Trial] = []

    def evaluate(self, trial: Trial, on_epoch: Any = None) -> Result:
        self.seen.append(trial)
        return super().evaluate(trial, on_epoch)


def test_a_proposal_outside_the_space_is_refused_by_ask_and_never_evaluated() -> None:
    strategy = Stray(space=TINY, seed=0)
    with pytest.raises(InvalidArchitectureError, match=r"strategy 'stray' proposed an architecture outside its "
                                                       r"space: architecture is not a member of space 'nb201'"):
        strategy.ask(2)
    assert strategy.pending == []  # no trial was made
    evaluator = Recording()
    with pytest.raises(InvalidArchitectureError):
        run_loop(Stray(space=TINY, seed=0), evaluator, LocalExecutor(), max_trials=3)
    assert evaluator.seen == []
    members = RandomSearch(space=TINY, seed=0).ask(3)  # members pass
    assert all(TINY.contains(t.arch) for t in members)
