"""ASHA early stopping: the rung rule, its wiring through the train evaluator, config errors."""

from __future__ import annotations

import pytest

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
    ({"evaluator": {"name": "nb201"}, "space": {"name": "nb201"}}, "only the train evaluator"),
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
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        pruner = RemotePruner(grace_epochs=1, reduction_factor=3)

        @ray.remote(num_cpus=0)
        def report(handle: RemotePruner, trial: int, value: float) -> bool:
            return handle.report(trial, 1, value)

        # two copies of the handle (as two workers hold) share one rung
        assert ray.get(report.remote(pruner, 0, 90.0))
        assert ray.get(report.remote(pruner, 1, 95.0))
        assert not ray.get(report.remote(pruner, 2, 70.0))
    finally:
        if started:
            ray.shutdown()
