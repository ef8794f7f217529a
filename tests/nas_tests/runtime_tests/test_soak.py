"""A short soak (``experiments/benchmarks/soak.py`` at a small size): a de-duplicated evolution search on the
NAS-Bench-201 evaluator, SIGKILLed twice at seeded random points and resumed with ``nas resume``, ends with exactly
the store of an uninterrupted run, and its checkpoint does not grow with the number of trials; so does a
de-duplicated optuna (TPE) search.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from _experiments import load_benchmark, run_experiment

from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.storage.checkpoint import read_checkpoint
from nas.storage.store import TrialStore

TRIALS = 300


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    return load_benchmark("soak.py")


def test_killed_and_resumed_soak_matches_the_uninterrupted_run(soak: ModuleType, tmp_path: Path) -> None:
    config = soak.soak_config(TRIALS, dedup=True)
    points = soak.kill_points(TRIALS, 2, seed=1)
    assert len(set(points)) == 2 and all(0 < p < TRIALS for p in points)

    reference = tmp_path / "reference"
    run_experiment(config, reference)
    expected = soak.store_rows(reference / Experiment.STORE)
    assert [r[0] for r in expected] == sorted({r[0] for r in expected}) and len(expected) == TRIALS
    assert all(r[3] == "COMPLETE" and r[4] is not None for r in expected)

    killed = soak.run_killed(config, tmp_path / "killed", points, timeout=300)
    assert len(killed.killed_at) == 2
    assert all(p <= k < TRIALS for p, k in zip(points, killed.killed_at))  # killed mid-search, where asked
    assert killed.rows == expected  # ids, hashes, seeds, statuses and scores: the same search

    # the checkpoint does not grow with trials: the de-duplication's results stay in the store
    sizes = killed.checkpoint_bytes
    assert max(sizes) - min(sizes) < 4096, sizes
    state = read_checkpoint(tmp_path / "killed" / Experiment.CHECKPOINT)
    assert state["strategy"]["results"] is None
    assert state["loop"]["done"] == TRIALS
    assert len(json.dumps(state)) < 32 * 1024


def test_a_killed_and_resumed_optuna_search_matches_the_uninterrupted_run(soak: ModuleType, tmp_path: Path) -> None:
    """Optuna's TPE (de-duplicated), SIGKILLed twice: the same store as an uninterrupted run, and a checkpoint that
    does not grow (the finished Optuna trials are journal records in the store)."""
    trials = 150
    config = {**soak.soak_config(trials, dedup=True), "strategy": {"name": "optuna", "dedup": True}}
    points = soak.kill_points(trials, 2, seed=2)

    reference = tmp_path / "reference"
    run_experiment(config, reference)
    expected = soak.store_rows(reference / Experiment.STORE)
    assert len(expected) == trials and all(r[3] == "COMPLETE" for r in expected)

    killed = soak.run_killed(config, tmp_path / "killed", points, timeout=300)
    assert len(killed.killed_at) == 2
    assert killed.rows == expected  # ids, hashes, seeds, statuses and scores: the same search

    sizes = killed.checkpoint_bytes
    assert max(sizes) - min(sizes) < 4096 and max(sizes) < 32 * 1024, sizes  # (a trial in flight, or none)
    state = read_checkpoint(tmp_path / "killed" / Experiment.CHECKPOINT)["strategy"]["inner"]["own"]
    assert state["journal"] == [] and state["running"] == [] and state["n_trials"] >= trials
    store = TrialStore(tmp_path / "killed" / Experiment.STORE, readonly=True)
    assert [k for k, _ in store.journal()] == list(range(state["n_trials"]))
    store.close()


def test_a_checkpoint_with_the_results_in_it_still_resumes(tmp_path: Path) -> None:
    """Checkpoints written before the results moved to the store hold them; such a checkpoint resumes as before,
    and what the wrapper reuses is the same."""
    config = parse_config({"name": "old", "seed": 3, "space": {"name": "nb201"}, "strategy": {"name": "evolution"},
                           "evaluator": {"name": "nb201"}, "budget": {"max_trials": 40},
                           "execution": {"executor": "local", "workers": 1}})
    exp = Experiment.create(config, tmp_path / "exp")
    exp.run()
    told = dict(exp.strategy.results)  # type: ignore[attr-defined]  # a Deduplicate
    exp.close()
    path = tmp_path / "exp" / Experiment.CHECKPOINT
    state = json.loads(path.read_text())
    store = TrialStore(tmp_path / "exp" / Experiment.STORE, readonly=True)
    state["strategy"]["results"] = {key: store.result(trial_id).to_dict() for key, trial_id in told.items()}
    store.close()
    path.write_text(json.dumps(state))

    resumed = Experiment.open(tmp_path / "exp")
    dedup = resumed.strategy
    assert set(dedup.results) == set(told)  # type: ignore[attr-defined]  # the wrapper's own
    assert all(dedup._result(k).to_dict() == resumed.store.result(i).to_dict()  # type: ignore[attr-defined]  # the wrapper's own
               for k, i in told.items())
    resumed.checkpoint()
    assert read_checkpoint(path)["strategy"]["results"] is None  # written compact from now on
    resumed.close()
