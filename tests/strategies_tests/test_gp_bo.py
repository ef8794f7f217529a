"""``gp_bo``: its path features, its target warp, the zero-cost warm start handed in by the runtime, and the
strategy contract with that warm start attached (the plain strategy is covered by the registry-wide suite)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation.evaluators import NB201Evaluator
from nas.runtime.api import search
from nas.runtime.benchmark import run_benchmark
from nas.runtime.config import attach_zero_cost, build, parse_config
from nas.testing.strategies import StrategyConformance, drive, nb201_result, unwrap
from nas.trials.trial import Result
from search_spaces import get_space
from strategies import GPBayesOpt, Strategy, get_strategy
from strategies.features import path_depth, path_features
from strategies.gp_bo import WARPS, warp_targets

NB201 = get_space("nb201")
EVALUATOR = NB201Evaluator()


def arch(text: str):
    return NB201.from_string(text)


def test_path_features_cut_zero_ops_and_drop_identities() -> None:
    # only the residual path (skip 0->3) and conv3x3 0->1->3 reach the output
    a = arch("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert path_features(a) == {"cell|0|": 1.0, "cell|0|nor_conv_3x3>nor_conv_3x3": 1.0}
    # no path at all when the output is cut off
    assert path_features(arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == {}


def test_cells_computing_the_same_function_share_path_features() -> None:
    # the edges into node 2 do not matter when node 2 feeds the output through `none`
    a = arch("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    b = arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    assert a.canonical_hash() == b.canonical_hash()
    assert path_features(a) == path_features(b)


def test_path_depth_counts_the_most_parametric_ops_on_one_path() -> None:
    # conv 0->1, conv 1->2, conv 2->3: three convolutions in a row
    deep = arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert path_depth(deep) == 3
    # pooling and identities carry no parameters; a zero op cuts the path
    assert path_depth(arch("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")) == 1
    assert path_depth(arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|")) == 0
    assert path_depth(arch("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")) == 0


@pytest.mark.parametrize("option, value", [("warm_start", -1), ("proxy_weight", -0.5), ("path_weight", "x"),
                                           ("explore", math.inf), ("explore", "high"), ("n_init", 0), ("window", 0),
                                           ("parents", 0), ("refit_every", True), ("depth_weight", -0.3),
                                           ("depth_weight", math.nan), ("prior_top", 0), ("prior_top", 1.5),
                                           ("prior_top", "all"), ("prior_weight", -1.0)])
def test_bad_options_are_refused_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        get_strategy("gp_bo", space=NB201, **{option: value})


def test_an_unknown_warp_is_refused_naming_the_option_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"warp = 'log'.*log_gap, copula, none"):
        get_strategy("gp_bo", space=NB201, warp="log")


@pytest.mark.parametrize("warp", WARPS)
def test_target_warps_are_monotone_standardised_and_scale_free(warp: str) -> None:
    y = np.asarray([10.0, 85.2, 91.5, 91.3, 10.0, 90.1, 88.0])
    ys = warp_targets(y, warp)
    assert np.all(np.diff(ys[np.argsort(y, kind="stable")]) >= 0)  # order kept, ties kept tied
    assert abs(ys.mean()) < 1e-9 and abs(ys.std() - 1.0) < 1e-9
    np.testing.assert_allclose(warp_targets(3.0 * y + 7.0, warp), ys, atol=1e-9)
    if warp != "none":  # the best two are further apart than a plain standardisation puts them
        plain = (y - y.mean()) / y.std()
        assert ys[2] - ys[3] > plain[2] - plain[3]


def with_zero_cost(seed: int, **options) -> Strategy:
    strategy = get_strategy("gp_bo", space=NB201, seed=seed, **options)
    assert attach_zero_cost(strategy, EVALUATOR)
    return strategy


def test_warm_start_proposes_the_best_scored_cells_of_its_pool_first() -> None:
    strategy = with_zero_cost(1, warm_start=200, n_init=4)
    first = strategy.ask(4)
    inner = unwrap(strategy)
    assert isinstance(inner, GPBayesOpt)
    assert inner.zero_cost_calls >= 200  # the pool was screened (scores are not queries: nothing was told)
    assert inner.zero_cost_seconds > 0.0  # and the time it took is counted
    # the default score: the evaluator's zero-cost score plus depth_weight (0.6) times the path depth
    scores = [EVALUATOR.zero_cost(t.arch) + 0.6 * path_depth(t.arch) for t in first]
    assert scores == sorted(scores, reverse=True)
    pool_scores = sorted(inner._scores.values(), reverse=True)
    assert scores[0] == pool_scores[0]
    assert len({t.arch.canonical_hash() for t in first}) == 4
    # without a scorer the first proposals are uniform samples, as for random search
    plain = get_strategy("gp_bo", space=NB201, seed=1, warm_start=200, n_init=4)
    assert [t.arch for t in plain.ask(4)] != [t.arch for t in first]
    assert unwrap(plain).zero_cost_calls == 0  # type: ignore[attr-defined]  # unwrap gives a Strategy


def test_zero_cost_warm_start_is_seeded() -> None:
    a = drive(with_zero_cost(7), 12, nb201_result, batch=2)
    b = drive(with_zero_cost(7), 12, nb201_result, batch=2)
    c = drive(with_zero_cost(8), 12, nb201_result, batch=2)
    assert a == b
    assert a != c


def test_depth_weight_adds_the_path_depth_to_the_zero_cost_score_and_is_seeded() -> None:
    strategy = with_zero_cost(3, warm_start=300, n_init=5, depth_weight=0.5)
    first = strategy.ask(5)
    scores = [EVALUATOR.zero_cost(t.arch) + 0.5 * path_depth(t.arch) for t in first]
    assert scores == sorted(scores, reverse=True)
    inner = unwrap(strategy)
    assert isinstance(inner, GPBayesOpt)
    assert scores[0] == max(inner._scores.values())  # the best combined score of the pool comes first
    plain = with_zero_cost(3, warm_start=300, n_init=5, depth_weight=0.0)  # the same pool, by the score alone
    assert [t.arch for t in plain.ask(5)] != [t.arch for t in first]
    a = drive(with_zero_cost(5, depth_weight=0.5), 14, nb201_result, batch=2)
    assert a == drive(with_zero_cost(5, depth_weight=0.5), 14, nb201_result, batch=2)
    assert a != drive(with_zero_cost(6, depth_weight=0.5), 14, nb201_result, batch=2)


def test_prior_top_keeps_every_model_proposal_in_the_top_of_the_prior_and_is_seeded() -> None:
    strategy = with_zero_cost(4, warm_start=400, n_init=4, prior_top=0.25)
    drive(strategy, 16, nb201_result)
    inner = unwrap(strategy)
    assert isinstance(inner, GPBayesOpt) and inner._cut is not None
    scored = np.asarray(list(inner._scores.values()))
    assert 0.1 < (scored >= inner._cut).mean() < 0.5  # the cut is the warm-start pool's upper quartile
    model_picks = inner.X[4:]
    assert len(model_picks) == 12 and all(inner._score(x) >= inner._cut for x in model_picks)
    a = drive(with_zero_cost(4, prior_top=0.25), 14, nb201_result, batch=2)
    assert a == drive(with_zero_cost(4, prior_top=0.25), 14, nb201_result, batch=2)
    assert a != drive(with_zero_cost(5, prior_top=0.25), 14, nb201_result, batch=2)


def test_prior_weight_changes_the_model_proposals_and_is_seeded() -> None:
    a = drive(with_zero_cost(2, prior_weight=2.0), 16, nb201_result)
    assert a == drive(with_zero_cost(2, prior_weight=2.0), 16, nb201_result)
    plain = drive(with_zero_cost(2, prior_weight=0.0), 16, nb201_result)
    assert a[:10] == plain[:10]  # the same warm start
    assert a != plain  # the prior reorders the candidates after it


def test_the_default_acquisition_is_ucb_and_explore_null_restores_expected_improvement() -> None:
    inner = unwrap(get_strategy("gp_bo", space=NB201))
    assert isinstance(inner, GPBayesOpt) and inner.explore == "auto"
    assert inner.ucb_weight is None  # no scorer attached: expected improvement
    assert unwrap(with_zero_cost(2)).ucb_weight == 0.5  # with one: UCB
    ucb = drive(with_zero_cost(2), 16, nb201_result)
    ei = drive(with_zero_cost(2, explore=None), 16, nb201_result)
    assert ei == drive(with_zero_cost(2, explore=None), 16, nb201_result)
    assert ucb[:10] == ei[:10]  # the same warm start
    assert ucb != ei  # the acquisition orders the model's candidates differently


def test_without_a_scorer_the_default_is_expected_improvement() -> None:
    # on held-out NAS-Bench-201 seeds without the zero-cost score, UCB 0.5 trailed expected improvement by
    # 0.03-0.13 points at 100 queries: "auto" uses UCB only with a scorer's prior beside it
    default = drive(get_strategy("gp_bo", space=NB201, seed=4), 16, nb201_result)
    assert default == drive(get_strategy("gp_bo", space=NB201, seed=4, explore=None), 16, nb201_result)
    assert default != drive(get_strategy("gp_bo", space=NB201, seed=4, explore=0.5), 16, nb201_result)


def test_proposals_leave_the_processs_blas_threads_as_they_were() -> None:
    before = [info["num_threads"] for info in threadpool_info()]
    drive(with_zero_cost(3), 13, nb201_result)
    assert [info["num_threads"] for info in threadpool_info()] == before


def test_the_warm_start_lifts_early_queries_and_its_time_is_reported() -> None:
    """The runtime attaches the nb201 evaluator's zero-cost score in ``run_benchmark``: after 10 queries the
    warm-started search is ahead of the same strategy without it (``warm_start=0``) on the same seeds, and the
    report carries the zero-cost seconds and calls (none without the warm start)."""
    warm = run_benchmark("gp_bo", queries=10, seeds=8, options={"warm_start": 500})
    cold = run_benchmark("gp_bo", queries=10, seeds=8, options={"warm_start": 0})
    assert warm.at(10)[0] > cold.at(10)[0]
    assert warm.zero_cost_calls > 8 * 450 and warm.zero_cost_seconds > 0.0  # pools of 500, a few cells twice
    assert cold.zero_cost_calls == 0 and cold.zero_cost_seconds == 0.0


class TestGPBOWithZeroCost(StrategyConformance):
    """The shipped contract suite, with the zero-cost scorer attached on nb201 (as the runtime does)."""

    strategy = "gp_bo"

    def prepare(self, strategy: Strategy) -> Strategy:
        if strategy.space.name == "nb201":
            attach_zero_cost(strategy, EVALUATOR)
            inner = unwrap(strategy)
            if isinstance(inner, GPBayesOpt):  # (the suite builds random search too, as its baseline)
                inner.warm_start = 200  # a smaller pool than the default 3000 keeps the suite cheap; same code
        return strategy


def test_an_experiment_hands_the_evaluators_zero_cost_to_the_strategy(tmp_path) -> None:
    """``nas search`` with the nb201 evaluator: the runtime attaches the evaluator's zero-cost score, so the first
    trial is the best-scored cell of the warm-start pool, and the experiment's trials are those of the same
    strategy driven directly with the scorer attached."""
    data = {"name": "zc", "seed": 3, "space": {"name": "nb201"},
            "strategy": {"name": "gp_bo", "options": {"warm_start": 50}},
            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 8},
            "execution": {"executor": "local", "workers": 1}}
    inner = unwrap(build(parse_config(data)).strategy)
    assert isinstance(inner, GPBayesOpt) and inner._zero_cost is not None
    exp = search(data, directory=tmp_path / "zc")
    try:
        ran = [t.arch.to_json() for t in sorted(exp.store.trials(), key=lambda t: t.id)]
    finally:
        exp.close()
    direct = with_zero_cost(3, warm_start=50)
    assert ran == [proposal[2] for proposal in drive(direct, 8, nb201_result)]


def test_nas_benchmark_runs_gp_bo_on_another_dataset_and_reports_the_zero_cost_work(tmp_path, capsys) -> None:
    """``nas benchmark nb201 --strategy gp_bo --dataset cifar100``: the figures of ``run_benchmark`` and, since the
    nb201 evaluator hands the strategy its zero-cost score, the cells scored and seconds per search."""
    argv = ["benchmark", "nb201", "--strategy", "gp_bo", "--dataset", "cifar100", "--queries", "12", "--seeds", "1",
            "--plot", str(tmp_path / "p.png")]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    expected = run_benchmark("gp_bo", queries=12, seeds=1, dataset="cifar100")
    assert summary["queries"]["10"]["mean"] == expected.at(10)[0]
    # the 3000-cell pool is drawn with replacement: a few cells come twice and are scored once
    assert summary["zero_cost_per_search"]["cells"] == expected.zero_cost_per_run()[0] > 2500
    assert main(argv) == 0
    assert "zero-cost screening (not queries): " in capsys.readouterr().out


def test_nas_benchmark_without_the_zero_cost_score_runs_gp_bo_as_on_real_training(tmp_path, capsys) -> None:
    """``--no-zero-cost``: the strategy is not handed the table's score (as on an evaluator without one), so it
    screens nothing and searches from uniform samples: a different search from the screened one."""
    argv = ["benchmark", "nb201", "--strategy", "gp_bo", "--queries", "12", "--seeds", "1", "--json",
            "--plot", str(tmp_path / "p.png")]
    assert main([*argv, "--no-zero-cost"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert "zero_cost_per_search" not in summary  # no cell was scored
    plain = run_benchmark("gp_bo", queries=12, seeds=1, zero_cost=False)
    screened = run_benchmark("gp_bo", queries=12, seeds=1)
    assert plain.zero_cost_calls == 0 and screened.zero_cost_calls > 0
    assert summary["queries"]["10"]["mean"] == plain.at(10)[0]
    assert plain.curves != screened.curves


def test_a_failed_or_infeasible_cell_is_never_proposed_again() -> None:
    # the GP models only results with a fitness; before, the cells it could not model stayed candidates, so a
    # constrained search re-proposed one infeasible cell (or its twins) until the de-duplicating wrapper gave up
    strategy = get_strategy("gp_bo", space=get_space("nb201"), seed=0, dedup=False,
                            objectives=["max:score", "min:params"], constraints={"params": {"max": 800000}})
    unfit: set[str] = set()
    for _ in range(30):
        (trial,) = strategy.ask(1)
        key = trial.arch.canonical_hash()
        assert key not in unfit, f"trial {trial.id} computes the same function as an earlier unfit one"
        result = nb201_result(trial) if trial.id % 7 else Result.failed("out of memory")
        if strategy.fitness(result) is None:
            unfit.add(key)
        strategy.tell(trial, result)
    assert len(unfit) >= 5  # the case was exercised: failures and infeasible cells alike
    state = json.loads(json.dumps(strategy.state_dict()))
    again = get_strategy("gp_bo", space=get_space("nb201"), seed=0, dedup=False,
                         objectives=["max:score", "min:params"], constraints={"params": {"max": 800000}})
    again.load_state_dict(state)
    assert isinstance(again, GPBayesOpt) and isinstance(strategy, GPBayesOpt)
    assert again.unfit == strategy.unfit  # kept in the checkpoint
