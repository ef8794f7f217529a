"""Joint architecture + hyperparameter spaces (search_spaces.hparams.with_hyperparameters)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.evaluation.evaluators import HPARAMS_KEY, get_evaluator
from nas.evaluation.training import TrainConfig
from nas.trials.trial import Status, Trial
from search_spaces import get_space
from search_spaces.hparams import HyperparameterSpace, with_hyperparameters

INNER = get_space("nb201", C=4, N=1)
CHECK = TrainConfig().replace  # what the runtime passes: the training config validates each field and value
SEARCHABLE = {"lr": [0.1, 0.05, 0.01], "optimizer": ["sgd", "adam"], "augment": [[], ["crop"]]}
JOINT = with_hyperparameters(INNER, SEARCHABLE, check=CHECK)


def test_decisions_extend_the_inner_ones():
    assert isinstance(JOINT, HyperparameterSpace)
    assert JOINT.decision_sizes() == [*INNER.decision_sizes(), 3, 2, 2]
    assert JOINT.decision_names() == [*INNER.decision_names(), "train.lr", "train.optimizer", "train.augment"]
    assert len(set(JOINT.decision_names())) == len(JOINT.decision_names())
    assert JOINT.size() == INNER.size() * 12
    assert JOINT.name == INNER.name and JOINT.input_kind == INNER.input_kind
    assert JOINT.options()["searchable"] == SEARCHABLE
    assert json.loads(json.dumps(JOINT.options())) == JOINT.options()  # plain JSON data
    assert JOINT.options()["C"] == 4


def test_decode_puts_the_chosen_values_in_the_macro():
    decisions = [3] * 6 + [2, 1, 1]
    arch = JOINT.decode(decisions)
    assert arch.macro[HPARAMS_KEY] == {"lr": 0.01, "optimizer": "adam", "augment": ["crop"]}
    assert arch.cell("cell") == INNER.decode([3] * 6).cell("cell")
    with pytest.raises(InvalidArchitectureError, match=r"decision 6 \(train.lr\)"):
        JOINT.decode([0] * 6 + [3, 0, 0])
    with pytest.raises(InvalidArchitectureError, match="takes 9 decisions"):
        JOINT.decode([0] * 6)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        decisions = [int(rng.integers(n)) for n in JOINT.decision_sizes()]
        arch = JOINT.decode(decisions)
        assert JOINT.encode(arch) == decisions
        assert JOINT.decode(JOINT.encode(arch)) == arch


def test_round_trip_through_json():
    from nas.graph.architecture import Architecture

    arch = JOINT.decode([1] * 6 + [0, 1, 1])
    again = Architecture.from_json(arch.to_json())
    assert again == arch and JOINT.encode(again) == JOINT.encode(arch)


def test_sample_mutate_and_neighbours_produce_members():
    rng = np.random.default_rng(1)
    samples = [JOINT.sample(rng) for _ in range(30)]
    assert all(JOINT.contains(a) for a in samples)
    assert len({str(a.macro[HPARAMS_KEY]) for a in samples}) > 1  # hyperparameters are really sampled
    for arch in samples[:10]:
        child = JOINT.mutate(arch, rng)
        assert JOINT.contains(child)
        diff = [i for i, (a, b) in enumerate(zip(JOINT.encode(arch), JOINT.encode(child))) if a != b]
        assert len(diff) == 1
    arch = samples[0]
    neighbours = JOINT.neighbours(arch)
    assert len(neighbours) == sum(n - 1 for n in JOINT.decision_sizes())
    assert all(JOINT.contains(n) for n in neighbours)
    assert len(set(neighbours)) == len(neighbours) and arch not in neighbours
    # some neighbours only change a hyperparameter, keeping the cell
    assert sum(n.cell("cell") == arch.cell("cell") for n in neighbours) == 2 + 1 + 1


def test_sampling_is_driven_by_the_rng_only():
    a = [JOINT.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]


def test_chosen_values_reach_the_train_evaluator():
    ev = get_evaluator("train", compiler=JOINT.compiler(), task="digits", task_options={"limit": 200},
                       train={"epochs": 1, "lr": 0.5, "optimizer": "rmsprop", "device": "cpu", "batch_size": 32},
                       latency_runs=0)
    for decisions, expected in (([0] * 6 + [0, 0, 0], (0.1, "sgd", ())),
                                ([3] * 6 + [2, 1, 1], (0.01, "adam", ("crop",)))):
        cfg = ev.config_for(JOINT.decode(decisions))
        assert (cfg.lr, cfg.optimizer, cfg.augment) == expected
        assert cfg.epochs == 1 and cfg.batch_size == 32  # fields not searched keep the evaluator's values
    result = ev.evaluate(Trial(0, JOINT.decode([3] * 6 + [2, 1, 1]), seed=0))
    assert result.status is Status.COMPLETE, result.error
    assert result.history[0]["lr"] == pytest.approx(0.01)  # the searched lr was used, not the evaluator's 0.5


def test_joint_architectures_compile_and_look_up():
    arch = JOINT.decode([3] * 6 + [0, 0, 1])
    model = JOINT.build_model(arch, (1, 8, 8), 10)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    inner_arch = INNER.decode([3] * 6)
    nb201 = get_evaluator("nb201")
    assert nb201.evaluate(Trial(0, arch)).score == nb201.evaluate(Trial(0, inner_arch)).score


def test_inner_space_does_not_contain_joint_architectures():
    rng = np.random.default_rng(2)
    for _ in range(10):
        joint_arch = JOINT.sample(rng)
        assert not INNER.contains(joint_arch)
        inner_arch = INNER.sample(rng)
        assert not JOINT.contains(inner_arch)
    with pytest.raises(InvalidArchitectureError, match="no 'hparams'"):
        JOINT.check(INNER.sample(rng))
    with pytest.raises(InvalidArchitectureError):
        INNER.build_model(JOINT.sample(rng), (1, 8, 8), 10)


def test_values_outside_the_searched_lists_are_not_members():
    arch = JOINT.decode([0] * 9)
    off_list = arch.replace(macro={**arch.macro, HPARAMS_KEY: {"lr": 0.3, "optimizer": "sgd", "augment": []}})
    assert not JOINT.contains(off_list)
    missing = arch.replace(macro={**arch.macro, HPARAMS_KEY: {"lr": 0.1, "optimizer": "sgd"}})
    assert not JOINT.contains(missing)


def test_hyperparameters_over_another_space():
    seq = with_hyperparameters(get_space("transformer", d_model=16, num_cells=1), {"dropout": [0.0, 0.2]}, check=CHECK)
    arch = seq.sample(np.random.default_rng(0))
    assert seq.input_kind == "sequence"
    assert arch.macro[HPARAMS_KEY]["dropout"] in (0.0, 0.2)
    assert seq.encode(arch)[-1] == [0.0, 0.2].index(arch.macro[HPARAMS_KEY]["dropout"])


@pytest.mark.parametrize(
    "searchable, pattern",
    [
        ({"lrr": [0.1, 0.01]}, r"unknown field 'lrr' \(did you mean 'lr'\?\)"),
        ({"optimizer": ["sgd", "sgdd"]}, r"train\.optimizer = 'sgdd'.*did you mean 'sgd'"),
        ({"lr": []}, r"searchable\.lr = \[\]: give a non-empty list"),
        ({"lr": 0.1}, r"searchable\.lr = 0\.1"),
        ({"optimizer": "adam"}, r"searchable\.optimizer = 'adam'"),
        ({"lr": [0.1, -0.1]}, r"train\.lr = -0\.1"),
        ({"lr": [0.1, 0.1]}, "repeats a value"),
        ({"augment": [[], ["cropp"]]}, r"train\.augment.*did you mean 'crop'"),
        ({}, "at least one field"),
    ],
)
def test_invalid_searchable_values_raise(searchable, pattern):
    with pytest.raises(ConfigError, match=pattern):
        with_hyperparameters(INNER, searchable, check=CHECK)
