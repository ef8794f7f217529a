"""The plug points' Protocols (:mod:`nas.trials.protocols` and the few kept by their layers) hold for the
framework's own implementations.

Statically: mypy checks this module (``setup.cfg`` ``[mypy] files``, run by ``make lint``), so each ``_as_*``
function below proves that the class it takes is assignable to the Protocol it returns. At run time: real
instances (every registered space and strategy, the evaluators, the in-process executor, a supernet job) carry
every member their Protocol declares, read without running properties (``inspect.getattr_static``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Protocol

import pytest

from nas.evaluation.evaluators import (
    Evaluator,
    ModelCompiler,
    NB201Evaluator,
    ProxyEvaluator,
    TrainEvaluator,
    TrainingEvaluator,
)
from nas.evaluation.pruning import ASHA, RemotePruner
from nas.oneshot.config import OneShotConfig, SupernetSpace
from nas.oneshot.job import run_supernet_search
from nas.oneshot.outcome import SearchOutcome
from nas.oneshot.spec import SupernetSearch
from nas.runtime.executors import LocalExecutor, RayExecutor
from nas.trials import protocols
from search_spaces import get_space, list_spaces
from search_spaces.base import SearchSpace, SpaceCompiler
from strategies import Strategy, get_strategy, list_strategies


# -- the static half: mypy fails on any of these returns if the class does not satisfy the Protocol ------------
def _as_space(space: SearchSpace) -> protocols.Space:
    return space


def _as_supernet_space(space: SearchSpace) -> SupernetSpace:
    return space


def _as_strategy(strategy: Strategy) -> protocols.Strategy:
    return strategy


def _as_evaluator(evaluator: Evaluator) -> protocols.Evaluator:
    return evaluator


def _as_prunable(evaluator: TrainEvaluator) -> protocols.PrunableEvaluator:
    return evaluator


def _as_training(evaluator: TrainEvaluator) -> TrainingEvaluator:
    return evaluator


def _as_compiler(compiler: SpaceCompiler) -> ModelCompiler:
    return compiler


def _as_pruners(local: ASHA, remote: RemotePruner) -> list[protocols.Pruner]:
    return [local, remote]


def _as_executors(local: LocalExecutor, ray: RayExecutor) -> list[protocols.Executor]:
    return [local, ray]


def _as_job(job: SupernetSearch) -> protocols.JobSpec:
    return job


def _as_runner() -> protocols.JobRunner[SupernetSearch]:
    return run_supernet_search


def _as_outcome(outcome: SearchOutcome) -> protocols.JobOutcome:
    return outcome


# -- the run-time half ---------------------------------------------------------------------------------------
def _members(protocol: type) -> set[str]:
    """The public members a Protocol declares, its bases' included (methods, properties, attributes)."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass in (Protocol, object) or not getattr(klass, "_is_protocol", False):
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")}
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")}
    return names


def _missing(obj: object, protocol: type) -> list[str]:
    missing = object()
    return sorted(n for n in _members(protocol) if inspect.getattr_static(obj, n, missing) is missing)


def test_members_lists_what_a_protocol_declares() -> None:
    assert _members(protocols.Proposer) == {"ask", "tell"}
    assert _members(protocols.Strategy) >= {"ask", "tell", "name", "space", "state_dict", "job", "tell_job"}
    assert _members(protocols.PrunableEvaluator) == {"name", "evaluate", "pruner"}
    assert _missing(object(), protocols.Proposer) == ["ask", "tell"]


@pytest.mark.parametrize("name", list_spaces())
def test_every_registered_space_is_a_space(name: str) -> None:
    space = _as_space(get_space(name))
    assert _missing(space, protocols.Space) == []
    assert _missing(space, SupernetSpace) == []


@pytest.mark.parametrize("name", list_strategies())
def test_every_registered_strategy_is_a_strategy(name: str) -> None:
    for dedup in (False, True):
        strategy = _as_strategy(get_strategy(name, space=get_space("nb201", C=2, N=1), seed=0, dedup=dedup))
        assert _missing(strategy, protocols.Strategy) == []
        assert isinstance(strategy.space, SearchSpace)


def test_evaluators_are_evaluators_and_the_train_evaluator_trains() -> None:
    compiler = _as_compiler(get_space("nb201", C=2, N=1).compiler())
    train = TrainEvaluator(compiler=compiler, task="digits")
    table = NB201Evaluator()
    proxy = ProxyEvaluator(compiler=compiler, proxy="synflow", input_shape=(1, 8, 8))
    for evaluator in (train, table, proxy):
        assert _missing(_as_evaluator(evaluator), protocols.Evaluator) == []
    assert _missing(train, TrainingEvaluator) == []
    assert isinstance(_as_prunable(train), protocols.PrunableEvaluator)
    assert not isinstance(table, protocols.PrunableEvaluator)
    assert not isinstance(table, TrainingEvaluator) and not isinstance(proxy, TrainingEvaluator)


def test_the_local_executor_and_the_pruner_satisfy_their_protocols() -> None:
    assert _missing(LocalExecutor(), protocols.Executor) == []
    assert _missing(ASHA(), protocols.Pruner) == []
    # a RayExecutor starts Ray when built: its methods are checked on the class, its capacity by mypy above
    assert _missing(RayExecutor, protocols.Executor) == ["capacity"]


def test_a_supernet_search_is_a_job_spec(tmp_path: Path) -> None:
    job = _as_job(SupernetSearch(space=get_space("nb201", C=2, N=1), task="digits", task_options={}, seed=0,
                                 config=OneShotConfig(epochs=1), directory=str(tmp_path)))
    assert _missing(job, protocols.JobSpec) == []
    assert _as_runner() is run_supernet_search
    assert job.read_history() == []
    assert _missing(SearchOutcome, protocols.JobOutcome) == []
