"""One-shot strategies through the one loop (nas.runtime.experiment): the supernet search runs as one executor job
before the first trial, its outcome is stored and handed to the strategy, the derived cell is the first trial
and is trained from scratch, stored and ranked; a search killed mid-supernet continues from its last epoch
with identical architecture parameters; on Ray the job reports its epochs while it runs; config errors."""

from __future__ import annotations

import os

import pytest
from _experiments import kill_mid_job, write_config

from nas.cli import main
from nas.core.errors import ConfigError, NASError
from nas.graph.architecture import Architecture
from nas.oneshot.outcome import SearchOutcome
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

for _key, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)

SEARCH = {"epochs": 3, "batch_size": 32, "arch_lr": 0.01}


def config(**changes) -> dict:
    cfg = {"name": "oneshot", "seed": 1, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "darts", "options": dict(SEARCH)},
           "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 240},
                         "train": {"epochs": 1, "batch_size": 32}},
           "budget": {"max_trials": 3}, "execution": {"executor": "local", "workers": 1}}
    cfg.update(changes)
    return cfg


def test_supernet_then_derived_candidates_are_trained_stored_and_ranked(tmp_path, capsys):
    exp = Experiment.create(parse_config(config()), tmp_path / "exp")
    lines: list[str] = []
    ranked = exp.run(progress=lambda event: lines.append(str(event)))
    outcome = exp.store.meta("job")
    assert outcome is not None and outcome["epochs_run"] == 3 and len(outcome["history"]) == 3
    assert sum(line.startswith("supernet epoch") for line in lines) == 3
    assert any(line.startswith("supernet search done") for line in lines)
    trials = exp.store.trials()
    assert len(trials) == 3 and all(t.status == "COMPLETE" for t in trials)
    first = min(trials, key=lambda t: t.id)
    assert first.arch == Architecture.from_json(outcome["arch"])  # the derived cell is trial 0
    assert len(ranked) == 3 and ranked[0].score >= ranked[-1].score
    assert (tmp_path / "exp" / "supernet" / "checkpoint.pt").is_file()
    assert exp.summary()["supernet"]["epochs_run"] == 3
    from nas import load_experiment

    assert load_experiment(tmp_path / "exp").supernet == SearchOutcome.from_dict(outcome)  # for notebooks
    assert SearchOutcome.from_dict(outcome).to_dict() == outcome  # the stored format round-trips
    assert main(["status", str(tmp_path / "exp")]) == 0
    assert "supernet search (darts): 3 epochs" in capsys.readouterr().out
    # an experiment written before the outcome moved to meta "job" held it under "supernet": still read
    exp.store.set_meta("supernet", outcome)
    exp.store.set_meta("job", None)
    exp.store.set_meta("runs_job", None)
    assert load_experiment(tmp_path / "exp").supernet == SearchOutcome.from_dict(outcome)
    # extending the budget does not search again
    exp.close()
    more = Experiment.open(tmp_path / "exp", max_trials=4)
    lines.clear()
    more.run(progress=lambda event: lines.append(str(event)))
    assert not any("supernet" in line for line in lines) and len(more.store.trials()) == 4
    more.close()


def test_derived_cells_can_be_scored_by_the_nb201_table(tmp_path):
    cfg = config(space={"name": "nb201"}, evaluator={"name": "nb201"},
                 strategy={"name": "gdas", "options": {**SEARCH, "task": "digits", "task_options": {"limit": 240},
                                                       "space_options": {"C": 2, "N": 1}}})
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    ranked = exp.run()
    assert len(ranked) == 3 and all(60 < t.score < 95 for t in ranked)  # NB201 CIFAR-10 validation accuracies
    exp.close()


def test_a_failing_supernet_job_says_what_failed_and_how_to_go_on(tmp_path, capsys):
    from nas.runtime.executors import LocalExecutor

    class OutOfMemory(LocalExecutor):
        """Runs the job until its second epoch ends, then fails as a GPU out of memory would."""

        def run_job(self, runner, spec, on_progress=None):
            def epoch(record):
                if record["epoch"] == 1:
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

            return runner(spec, epoch)

    exp = Experiment.create(parse_config(config()), tmp_path / "exp")
    with pytest.raises(NASError, match=r"failed after 2 of 3 epochs: RuntimeError: CUDA out of memory.*"
                                       r"lower strategy.options.batch_size.*nas resume .* continues"):
        exp.run(executor=OutOfMemory())
    exp.close()
    assert main(["resume", str(tmp_path / "exp"), "--quiet"]) == 0  # continues from epoch 2 and finishes
    assert "resuming after epoch 2" in (tmp_path / "exp" / "search.log").read_text()


@pytest.mark.parametrize(("changes", "message"), [
    ({"searchable": {"lr": [0.01, 0.1]}}, "searchable: the one-shot strategy 'darts' searches the architecture"),
    ({"space": {"name": "nb201"}, "evaluator": {"name": "nb201"}}, "strategy.options.task: the darts strategy"),
    ({"space": {"name": "rnn"}, "evaluator": {"name": "train", "task": "italy_power"}}, "has no supernet"),
    ({"strategy": {"name": "darts", "options": {"epoch": 2}}}, "did you mean 'epochs'"),
    ({"strategy": {"name": "darts", "options": {"epochs": 0}}}, r"^strategy.options.epochs = 0: must be an integer"),
])
def test_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config(**changes))


def test_a_search_killed_mid_supernet_resumes_from_its_last_epoch(tmp_path):
    # one torch thread in the killed process and here alike: a different thread count reorders float sums
    cfg = config(strategy={"name": "darts", "options": {**SEARCH, "epochs": 12}}, budget={"max_trials": 1},
                 execution={"executor": "local", "workers": 1, "threads_per_trial": 1})
    path = write_config(tmp_path, cfg, "cfg.yaml")
    killed = tmp_path / "killed"
    epochs = kill_mid_job(path, killed, "supernet", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert 2 <= epochs < 12, f"the search was not caught mid-supernet ({epochs} epochs)"
    assert main(["resume", str(killed), "--quiet"]) == 0
    log = (killed / "search.log").read_text()
    assert "supernet search (darts, 12 epochs): resuming after epoch" in log
    straight = tmp_path / "straight"
    assert main(["search", str(path), "--out", str(straight), "--quiet"]) == 0
    a, b = Experiment.open(killed), Experiment.open(straight)
    try:
        ma, mb = a.store.meta("job"), b.store.meta("job")
        assert ma["final_alphas"] == mb["final_alphas"] and ma["arch"] == mb["arch"]
        assert [h["derived_hash"] for h in ma["history"]] == [h["derived_hash"] for h in mb["history"]]
    finally:
        a.close()
        b.close()


def test_the_supernet_job_runs_on_a_ray_worker_and_reports_its_epochs(tmp_path):
    pytest.importorskip("ray")
    cfg = config(execution={"executor": "ray", "workers": 1, "cpus_per_trial": 1, "threads_per_trial": 1},
                 budget={"max_trials": 2})
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    lines: list[str] = []
    ranked = exp.run(progress=lambda event: lines.append(str(event)))
    assert [line.split(":")[0] for line in lines if line.startswith("supernet epoch")] == \
        ["supernet epoch 1/3", "supernet epoch 2/3", "supernet epoch 3/3"]
    assert len(ranked) == 2
    assert exp.store.meta("job")["epochs_run"] == 3
    exp.close()
