"""The ``train`` evaluator's ``zero_cost`` option: a training-free score (the log parameter count of the compiled
network) handed to ``gp_bo`` in a real training search, as the ``nb201`` evaluator hands it its table's."""

from __future__ import annotations

import math

import pytest
import torch

from nas.core.errors import ConfigError
from nas.evaluation.evaluators import get_evaluator
from nas.evaluation.measure import count_params
from nas.runtime.api import search
from nas.runtime.config import build, parse_config
from nas.testing.strategies import unwrap
from search_spaces import get_space
from strategies import GPBayesOpt
from strategies.features import path_depth

NB201 = get_space("nb201")


def config(**options: object) -> dict:
    return {"name": "zc", "seed": 5, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
            "strategy": {"name": "gp_bo", "options": {"warm_start": 40, "n_init": 3}},
            "evaluator": {"name": "train", "task": "digits", "train": {"epochs": 1, "batch_size": 128},
                          "options": options},
            "budget": {"max_trials": 4}, "execution": {"executor": "local", "workers": 1}}


def test_a_bad_score_name_is_refused_naming_the_option_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"evaluator\.options\.zero_cost = 'synflw': must be one of params"):
        build(parse_config(config(zero_cost="synflw")))


def test_without_the_option_there_is_no_score() -> None:
    evaluator = get_evaluator("train", compiler=NB201.compiler(), task="digits")
    assert evaluator.zero_cost is None  # type: ignore[attr-defined]  # get_evaluator returns the base class


def test_the_score_is_the_log_parameter_count_and_leaves_the_torch_rng_alone() -> None:
    evaluator = get_evaluator("train", compiler=NB201.compiler(), task="digits", zero_cost="params")
    arch = NB201.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    task = evaluator.task  # type: ignore[attr-defined]  # get_evaluator returns the base class
    expected = math.log(count_params(NB201.compiler()(arch, task.input_shape, task.num_classes)))
    torch.manual_seed(11)
    state = torch.random.get_rng_state()
    assert evaluator.zero_cost(arch) == pytest.approx(expected)  # type: ignore[attr-defined]  # as above
    assert torch.equal(torch.random.get_rng_state(), state)


def test_a_training_search_hands_the_score_to_gp_bo_and_proposes_the_best_scored_cells_first(tmp_path) -> None:
    inner = unwrap(build(parse_config(config(zero_cost="params"))).strategy)
    assert isinstance(inner, GPBayesOpt) and inner._zero_cost is not None and inner.ucb_weight == 0.5
    exp = search(config(zero_cost="params"), directory=tmp_path / "zc")
    try:
        trials = sorted(exp.store.trials(), key=lambda t: t.id)
    finally:
        exp.close()
    assert len(trials) == 4 and all(t.result().ok for t in trials)
    params = [t.metrics["params"] for t in trials]
    # the warm start: the best-scored cells of the pool first (score: log parameters + 0.6 x path depth)
    scores = [math.log(p) + 0.6 * path_depth(t.arch) for p, t in zip(params, trials)]
    assert scores[0] >= scores[1] >= scores[2]
    plain = search(config(), directory=tmp_path / "plain")
    try:
        plain_params = [t.metrics["params"] for t in sorted(plain.store.trials(), key=lambda t: t.id)]
    finally:
        plain.close()
    assert sum(params[:3]) > sum(plain_params[:3])  # uniform samples without the score
