"""The weight store never collects the weights of a parent the strategy may still pick (evolution's population,
``Strategy.live_parents``), however small ``evaluator.inherit.keep`` is; and a child of a skipped duplicate whose
original's weights were collected before the duplicate was proposed is re-parented to the member the duplicate was
bred from, instead of training from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _experiments import run_experiment

from nas.storage.store import TrialStore
from nas.storage.weights import WeightStore
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space
from strategies import get_strategy
from strategies.dedup import Deduplicate

CONFIG: dict[str, Any] = {
    "name": "parents", "seed": 1, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
    "strategy": {"name": "evolution", "options": {"population": 3, "sample_size": 2}},
    "evaluator": {"name": "train", "task": "digits", "train": {"epochs": 2, "batch_size": 128, "threads": 1},
                  "inherit": {"epochs": 1, "keep": 1}, "options": {"latency_runs": 0}},
    "budget": {"max_trials": 9}, "execution": {"executor": "local", "workers": 1}}


def test_keep_1_still_keeps_the_population(tmp_path: Path) -> None:
    """keep = 1 keeps only the newest and the best trial's weights on its own; every child of a population member
    still inherits (none trains from scratch because its parent's weights were collected)."""
    out = run_experiment(CONFIG, tmp_path / "exp")
    store = TrialStore(out / "trials.db", readonly=True)
    trials = store.trials()
    store.close()
    children = [t for t in trials if t.parent is not None]
    assert len(children) == len(trials) - 3  # all but the first population are mutated children
    # the tournament picks other members than the newest and the best: parents keep==1 alone would have dropped
    assert any(t.parent != t.id - 1 for t in children)
    for t in children:
        assert t.status == "COMPLETE"
        assert t.metrics["inherited_from"] == t.parent and t.metrics["tensors_copied"] > 0, t.info["inheritance"]
        assert t.metrics["epochs"] == 1
    weights = WeightStore(out / "weights")
    kept = {e.trial for e in weights.entries()}
    weights.close()
    assert len(kept) <= 1 + 1 + 3  # the newest, the best, the population (overlapping)
    assert {trials[-1].id} <= kept


def test_a_child_of_a_duplicate_whose_original_was_collected_inherits_from_a_kept_ancestor(tmp_path: Path) -> None:
    """Evolution with growth mutations repeats cells (all-conv cells have no growth left); de-duplication tells it
    a repeat's result under the repeat's own id. The weight store is collected after every result as the runtime
    does (keep = 1 plus the strategy's live parents); every child then names a parent whose weights are kept."""
    space = get_space("nb201", C=4, N=1)
    strategy = get_strategy("evolution", space=space, seed=0, population=3, sample_size=2,
                            mutation={"prefer": "growth"})
    assert isinstance(strategy, Deduplicate)
    results: dict[int, Result] = {}
    store = WeightStore(tmp_path / "w")
    gone: list[int] = []  # originals of duplicates whose weights were already collected

    def kept(trial_id: int) -> bool:
        if not store.has(trial_id):
            gone.append(trial_id)
            return False
        return True

    strategy.use_result_source(results.__getitem__)
    strategy.track_parents = True
    strategy.weights_kept = kept
    children = 0
    for _ in range(25):
        trial: Trial = strategy.ask(1)[0]
        if trial.parent is not None:
            children += 1
            assert store.has(trial.parent), f"trial {trial.id}: the weights of its parent {trial.parent} are gone"
        # the score: how grown the cell is (so evolution keeps growing and reaches repeats), tie-broken by the id
        edges = trial.arch.cell("cell").edges
        score = sum(op == "nor_conv_3x3" for _, _, op in edges) + 0.001 * trial.id
        results[trial.id] = Result(Status.COMPLETE, score=score)
        strategy.tell(trial, results[trial.id])
        store.put(trial.id, trial.id.to_bytes(4, "big"), score)  # stands for the trained weights
        store.collect(1, protect=strategy.live_parents() or ())
    store.close()
    assert children >= 20 and strategy.skipped > 0
    assert gone  # the case happened: a repeat of a trial whose weights were collected long before
    print(children, strategy.skipped, len(gone), len(strategy.aliases))
