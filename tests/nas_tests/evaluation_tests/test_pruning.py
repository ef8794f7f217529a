"""ASHA and Hyperband early stopping: the rung rules, brackets, wiring through the train evaluator, config errors."""

from __future__ import annotations

import numpy as np
import pytest
from _ray import quiet_ray

from nas.core.errors import ConfigError
from nas.evaluation.pruning import ASHA
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment


def test_rungs_sit_at_grace_times_powers_of_the_reduction_factor():
    asha = ASHA(grace_epochs=1, reduction_factor=3)
    assert [e for e in range(1, 30) if asha.is_rung(e)] == [1, 3, 9, 27]
    asha = ASHA(grace_epochs=2, reduction_factor=2)
    assert [e for e in range(1, 20) if asha.is_rung(e)] == [2, 4, 8, 16]


def test_a_trial_goes_on_only_in_the_top_fraction_of_its_rung():
    asha = ASHA(grace_epochs=1, reduction_factor=3)
    assert asha.report(0, 1, 90.0)  # first at the rung: goes on
    assert asha.report(1, 1, 95.0)
    assert not asha.report(2, 1, 70.0)  # three values: only the best third (95) goes on
    assert asha.report(3, 2, 10.0)  # not a rung: never stopped
    assert asha.report(4, 1, 99.0)


@pytest.mark.parametrize("options, fragment", [
    ({"grace_epochs": 0}, "grace_epochs"),
    ({"reduction_factor": 1}, "reduction_factor"),
])
def test_bad_options_are_rejected(options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ASHA(**options)


def _config(**extra):
    data = {"name": "asha", "seed": 0, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
            "strategy": {"name": "random"},
            "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300},
                          "train": {"epochs": 3, "batch_size": 32, "lr": 0.05}},
            "budget": {"max_trials": 8}, "execution": {"executor": "local", "workers": 1},
            "early_stopping": {"grace_epochs": 1, "reduction_factor": 2}}
    data.update(extra)
    return data


def test_weak_candidates_are_pruned_and_never_ranked(tmp_path):
    exp = Experiment.create(parse_config(_config()), tmp_path / "exp")
    ranked = exp.run()
    trials = exp.store.trials()
    pruned = [t for t in trials if t.status == "PRUNED"]
    assert len(trials) == 8
    assert pruned, "with reduction factor 2 some of 8 random cells must be stopped early"
    assert all(t.metrics["epochs"] < 3 for t in pruned)
    assert all(t.status == "COMPLETE" for t in ranked)
    assert {t.id for t in ranked}.isdisjoint({t.id for t in pruned})
    exp.close()


@pytest.mark.parametrize("extra, fragment", [
    ({"early_stopping": {"grace_epochs": 1, "reduction": 3}}, "early_stopping"),
    ({"early_stopping": {"reduction_factor": 1}}, "reduction_factor"),
    ({"evaluator": {"name": "nb201"}, "space": {"name": "nb201"}},
     "only the train and ssl evaluators train epoch by epoch, not evaluator.name = .nb201."),
])
def test_bad_early_stopping_configs(extra, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_config(_config(**extra))


def test_one_remote_pruner_serves_every_worker():
    import os

    import ray

    from nas.evaluation.pruning import RemotePruner

    for key, value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_AUTH_MODE", "disabled")):
        os.environ.setdefault(key, value)
    with quiet_ray(num_cpus=2):
        pruner = RemotePruner(grace_epochs=1, reduction_factor=3)

        @ray.remote(num_cpus=0)
        def report(handle: RemotePruner, trial: int, value: float) -> bool:
            return handle.report(trial, 1, value)

        # two copies of the handle (as two workers hold) share one rung
        assert ray.get(report.remote(pruner, 0, 90.0))
        assert ray.get(report.remote(pruner, 1, 95.0))
        assert not ray.get(report.remote(pruner, 2, 70.0))


# -- Hyperband ----------------------------------------------------------------------------------------------

def test_hyperband_brackets_follow_li_et_al_proportions_and_first_rungs():
    from nas.evaluation.pruning import Hyperband

    hb = Hyperband(grace_epochs=1, reduction_factor=3, max_epochs=9, seed=0)
    assert hb.s_max == 2
    # Hyperband with eta 3 over 1..9 epochs starts 9, 5 and 3 configurations in its three brackets
    assert [hb.order.count(s) for s in range(3)] == [9, 5, 3]
    assert [[e for e in range(1, 10) if b.is_rung(e)] for b in hb.brackets] == [[1, 3, 9], [3, 9], [9]]
    # the assignment is a function of the trial id and the seed: a fresh pruner (a resumed run) agrees
    assert [hb.bracket(i) for i in range(40)] == [Hyperband(max_epochs=9, seed=0).bracket(i) for i in range(40)]
    assert [hb.bracket(i) for i in range(40)] != [Hyperband(max_epochs=9, seed=1).bracket(i) for i in range(40)]


def test_hyperband_stops_only_within_a_bracket_and_never_at_the_last_epoch():
    from nas.evaluation.pruning import Hyperband

    hb = Hyperband(grace_epochs=1, reduction_factor=2, max_epochs=4, seed=0)
    ids = {s: [i for i in range(64) if hb.bracket(i) == s] for s in range(hb.s_max + 1)}
    first, late = ids[0], ids[hb.s_max]
    assert hb.report(first[0], 1, 90.0) and hb.report(first[1], 1, 95.0)
    assert not hb.report(first[2], 1, 10.0)  # bottom half of bracket 0's first rung
    assert hb.report(late[0], 1, 0.0)  # a late bracket never stops before its first rung (4 epochs here)
    assert hb.report(late[1], 1, 0.0)
    assert all(hb.report(i, 4, -1.0) for i in first)  # the full training length: complete, never pruned


@pytest.mark.parametrize("options, fragment", [
    ({"name": "hyperbnd"}, "did you mean 'hyperband'"),
    ({"name": "hyperband", "grace_epochs": 5, "max_epochs": 3}, "grace_epochs = 5 exceeds max_epochs"),
    ({"name": "hyperband", "brackets": 3}, "early_stopping.brackets"),
    ({"name": "asha", "seeds": 3}, "early_stopping.seeds"),
])
def test_make_pruner_rejects_bad_options_naming_the_field(options, fragment):
    from nas.evaluation.pruning import make_pruner

    with pytest.raises(ConfigError, match=fragment):
        make_pruner(**options)


def test_bohb_with_hyperband_prunes_a_real_search_and_bohb_needs_it(tmp_path):
    from nas.runtime.config import pruner_options

    cfg = parse_config(_config(early_stopping={"name": "hyperband", "grace_epochs": 1, "reduction_factor": 2},
                               strategy={"name": "bohb", "options": {"n_min": 2}}))
    assert pruner_options(cfg) == {"name": "hyperband", "grace_epochs": 1, "reduction_factor": 2,
                                   "max_epochs": 3, "seed": 0}
    exp = Experiment.create(cfg, tmp_path / "exp")
    exp.run()
    trials = exp.store.trials()
    pruned = [t for t in trials if t.status == "PRUNED"]
    assert len(trials) == 8 and pruned
    assert all(t.metrics["epochs"] < 3 for t in pruned)
    # the model learnt from every epoch of every trial, the pruned ones included
    bohb = getattr(exp.strategy, "inner", exp.strategy)
    assert len(bohb.observations[1]) >= len(trials)  # every trial's first epoch, pruned or not
    assert sum(map(len, bohb.observations.values())) >= sum(len(t.history) for t in trials)
    exp.close()
    with pytest.raises(ConfigError, match=r"early_stopping: \{name: hyperband\}"):
        parse_config(_config(strategy={"name": "bohb"}))


def test_a_hyperband_pruner_rebuilt_from_the_reported_history_decides_as_the_original():
    """What a resumed experiment does: a fresh pruner fed the stored per-epoch scores continues identically."""
    from nas.evaluation.pruning import Hyperband

    rng = np.random.default_rng(0)
    history = [(i, e, float(rng.random())) for i in range(30) for e in (1, 2, 3)]
    original = Hyperband(grace_epochs=1, reduction_factor=2, max_epochs=4, seed=7)
    for trial_id, epoch, value in history[:60]:
        original.report(trial_id, epoch, value)
    resumed = Hyperband(grace_epochs=1, reduction_factor=2, max_epochs=4, seed=7)
    for trial_id, epoch, value in history[:60]:
        resumed.report(trial_id, epoch, value)
    assert [original.report(*h) for h in history[60:]] == [resumed.report(*h) for h in history[60:]]
