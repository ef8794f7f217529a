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


def growth_search(store: WeightStore, results: dict[int, Result]) -> Deduplicate:
    """De-duplicated evolution with growth mutations whose repeats consult ``store`` as the runtime sets it up."""
    strategy = get_strategy("evolution", space=get_space("nb201", C=4, N=1), seed=0, population=3, sample_size=2,
                            mutation={"prefer": "growth"})
    assert isinstance(strategy, Deduplicate)
    strategy.use_result_source(results.__getitem__)
    strategy.track_parents = True
    strategy.weights_kept = store.has
    return strategy


def step(strategy: Deduplicate, store: WeightStore, results: dict[int, Result]) -> Trial:
    """One trial as the runtime runs it: ask; tell a result (how grown the cell is, so that evolution keeps growing
    and reaches repeats, tie-broken by the id); keep its "weights" and collect the store (keep = 1 plus the
    strategy's live parents)."""
    trial: Trial = strategy.ask(1)[0]
    score = sum(op == "nor_conv_3x3" for _, _, op in trial.arch.cell("cell").edges) + 0.001 * trial.id
    results[trial.id] = Result(Status.COMPLETE, score=score)
    strategy.tell(trial, results[trial.id])
    store.put(trial.id, trial.id.to_bytes(4, "big"), score)  # stands for the trained weights
    store.collect(1, protect=strategy.live_parents() or ())
    return trial


def test_a_child_of_a_duplicate_whose_original_was_collected_inherits_from_a_kept_ancestor(tmp_path: Path) -> None:
    """Evolution with growth mutations repeats cells (all-conv cells have no growth left); de-duplication tells it
    a repeat's result under the repeat's own id. With the store collected after every result as the runtime does,
    every child names a parent whose weights are kept, also when the repeat's original was collected long before."""
    results: dict[int, Result] = {}
    store = WeightStore(tmp_path / "w")
    strategy = growth_search(store, results)
    gone: list[int] = []  # originals of repeats whose weights were already collected

    def kept(trial_id: int) -> bool:
        if not store.has(trial_id):
            gone.append(trial_id)
            return False
        return True

    strategy.weights_kept = kept
    children = 0
    for _ in range(25):
        before = {e.trial for e in store.entries()}
        trial = step(strategy, store, results)
        if trial.parent is not None:
            children += 1
            assert trial.parent in before, f"trial {trial.id}: the weights of its parent {trial.parent} are gone"
    store.close()
    assert children >= 20 and strategy.skipped > 0
    assert gone  # the case happened: a repeat of a trial whose weights were collected long before


def test_resumed_from_a_checkpoint_the_parents_are_the_same(tmp_path: Path) -> None:
    """The strategy's state and the store at a checkpoint give the same trials and parents afterwards."""
    results: dict[int, Result] = {}
    store = WeightStore(tmp_path / "straight")
    strategy = growth_search(store, results)
    straight = [(t.id, t.arch, t.parent) for t in (step(strategy, store, results) for _ in range(24))]
    store.close()
    results = {}
    store = WeightStore(tmp_path / "resumed")
    first = growth_search(store, results)
    head = [(t.id, t.arch, t.parent) for t in (step(first, store, results) for _ in range(10))]
    state = first.state_dict()
    store.close()
    store = WeightStore(tmp_path / "resumed")  # reopened, as a resumed experiment does
    second = growth_search(store, results)
    second.load_state_dict(state)
    second.restore_results((second.key(arch), i) for i, arch, _ in head)
    gone: list[int] = []  # originals of repeats whose weights were collected, met after the resume

    def kept(trial_id: int) -> bool:
        if store.has(trial_id):
            return True
        gone.append(trial_id)
        return False

    second.weights_kept = kept
    tail = [(t.id, t.arch, t.parent) for t in (step(second, store, results) for _ in range(14))]
    store.close()
    assert head + tail == straight
    assert gone and any(p is not None for _, _, p in tail)  # re-parented children after the resume
