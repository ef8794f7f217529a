"""Weight inheritance in a real search (evolution on digits, real training, local executor): children start from
their parent's weights and train fewer epochs; a search killed at any point of the weights' bookkeeping and resumed
equals an uninterrupted one; a corrupt weight file is detected and the child trains from scratch with a note."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _experiments import killed_at, run_experiment, write_config

from nas.cli import main
from nas.core.errors import ConfigError
from nas.evaluation import evaluators
from nas.evaluation.evaluators import TrainEvaluator
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.runtime.inheritance import InlineWeights
from nas.storage.store import TrialStore
from nas.storage.weights import WeightStore
from nas.trials.trial import ParentWeights, Trial
from search_spaces import get_space

N = 7
CONFIG: dict[str, Any] = {
    "name": "inherit", "seed": 2, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
    "strategy": {"name": "evolution", "options": {"population": 3, "sample_size": 2}},
    "evaluator": {"name": "train", "task": "digits", "train": {"epochs": 2, "batch_size": 128, "threads": 1},
                  "inherit": {"epochs": 1, "keep": 3}, "options": {"latency_runs": 0}},
    "budget": {"max_trials": N}, "execution": {"executor": "local", "workers": 1}}


def rows(directory: Path) -> list[tuple[Any, ...]]:
    """What must not depend on interruptions: ids, architectures, seeds, parents, scores and what was inherited."""
    store = TrialStore(directory / "trials.db", readonly=True)
    try:
        return [(t.id, t.hash, t.seed, t.parent, t.status, t.score, t.metrics.get("epochs"),
                 t.metrics.get("tensors_copied"), t.metrics.get("val_loss")) for t in store.trials()]
    finally:
        store.close()


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_experiment(CONFIG, tmp_path_factory.mktemp("straight") / "exp")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


def test_children_inherit_and_train_fewer_epochs(straight: Path) -> None:
    store = TrialStore(straight / "trials.db", readonly=True)
    trials = store.trials()
    store.close()
    children = [t for t in trials if t.parent is not None]
    assert children and len(children) < len(trials)
    ids = {t.id for t in trials}
    for t in trials:
        assert t.status == "COMPLETE"
        if t.parent is None:
            assert t.metrics["epochs"] == 2 and t.metrics["tensors_copied"] == 0
            assert "inherited_from" not in t.metrics
        else:
            assert t.parent in ids and t.parent < t.id
            assert t.metrics["inherited_from"] == t.parent
            assert t.metrics["epochs"] == 1 and t.metrics["tensors_copied"] > 0
            assert t.info["inheritance"].startswith(f"inherited {int(t.metrics['tensors_copied'])} of ")
    weights = WeightStore(straight / "weights")
    entries = weights.entries()
    assert 0 < len(entries) <= 2 * 3  # keep 3: the 3 most recent and the 3 best
    assert entries[-1].trial == trials[-1].id
    for e in entries:
        digest, data = weights.get(e.trial)
        assert hashlib.sha256(data).hexdigest() == digest == weights.path(digest).stem
    weights.close()


@pytest.mark.parametrize("spec", ["weights.before:4", "weights.after:5", "store.after:14", "checkpoint.before:7"])
def test_a_killed_and_resumed_search_equals_an_uninterrupted_one(straight: Path, config_file: Path, tmp_path: Path,
                                                                 spec: str) -> None:
    out = tmp_path / "exp"
    assert killed_at(["search", str(config_file), "--out", str(out), "--quiet"], spec)
    assert main(["resume", str(out), "--quiet"]) == 0
    assert rows(out) == rows(straight)
    assert (out / "best.json").read_bytes() == (straight / "best.json").read_bytes()
    a, b = WeightStore(out / "weights"), WeightStore(straight / "weights")
    assert [(e.trial, e.sha256) for e in a.entries()] == [(e.trial, e.sha256) for e in b.entries()]
    a.close()
    b.close()


def test_a_corrupt_weight_is_detected_and_the_child_trains_from_scratch(straight: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    shutil.copytree(straight, out)
    for file in (out / "weights").rglob("*.pt"):  # every kept weight file damaged on disk
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
    assert main(["resume", str(out), "--max-trials", str(N + 2), "--quiet"]) == 0
    store = TrialStore(out / "trials.db", readonly=True)
    new = [t for t in store.trials() if t.id >= N]
    store.close()
    assert new
    first = new[0]
    assert first.parent is not None and first.parent < N
    assert first.status == "COMPLETE"
    assert first.metrics["epochs"] == 2 and first.metrics["tensors_copied"] == 0
    assert f"trained from scratch: the weights of trial {first.parent} are corrupt" in first.info["inheritance"]


def test_the_worker_checks_the_hash_too(tmp_path: Path) -> None:
    """Weights damaged on their way to the worker: the evaluator's own sha256 check refuses them."""
    space = get_space("nb201", C=4, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", train={"epochs": 2, "threads": 1},
                               latency_runs=0, inherit={"epochs": 1})
    parent = Trial(0, space.sample(np.random.default_rng(0)), 5)
    result = evaluator.evaluate(parent)
    assert result.ok and result.weights is not None
    digest = hashlib.sha256(result.weights).hexdigest()
    child = Trial(1, space.mutate(parent.arch, np.random.default_rng(1)), 6, parent=0)
    good = evaluator.evaluate(dataclasses.replace(child, inherit=ParentWeights(0, digest,
                                                                               InlineWeights(result.weights))))
    assert good.metrics["epochs"] == 1 and good.metrics["tensors_copied"] > 0
    damaged = result.weights[:-1] + bytes([result.weights[-1] ^ 1])
    bad = evaluator.evaluate(dataclasses.replace(child, inherit=ParentWeights(0, digest, InlineWeights(damaged))))
    assert bad.ok and bad.metrics["epochs"] == 2 and bad.metrics["tensors_copied"] == 0
    assert "fail their hash check" in bad.info["inheritance"]


def test_an_inheriting_child_trains_at_the_scaled_rate_and_schedule() -> None:
    """``lr_scale`` and ``schedule`` apply to a child that inherits weights, and only to it: a child whose parent's
    weights are unusable trains like a trial without a parent (full rate, the trial's schedule and epochs)."""
    space = get_space("nb201", C=4, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", latency_runs=0,
                               train={"epochs": 2, "threads": 1, "lr": 0.05, "schedule": "cosine", "warmup_epochs": 1},
                               inherit={"epochs": 2, "lr_scale": 0.2, "schedule": "constant"})
    parent = Trial(0, space.sample(np.random.default_rng(0)), 5)
    first = evaluator.evaluate(parent)
    assert first.ok and first.weights is not None
    assert first.history[0]["lr"] < 0.05 / 100  # the trial's warm-up starts near 0
    digest = hashlib.sha256(first.weights).hexdigest()
    child = Trial(1, space.mutate(parent.arch, np.random.default_rng(1)), 6, parent=0)
    warm = evaluator.evaluate(dataclasses.replace(child, inherit=ParentWeights(0, digest,
                                                                               InlineWeights(first.weights))))
    assert warm.metrics["tensors_copied"] > 0 and warm.metrics["epochs"] == 2
    assert [h["lr"] for h in warm.history] == pytest.approx([0.01, 0.01])  # constant 0.2 x 0.05, no warm-up
    cold = evaluator.evaluate(dataclasses.replace(child, inherit=ParentWeights(0, note="not kept")))
    assert cold.metrics["tensors_copied"] == 0
    assert [h["lr"] for h in cold.history] == pytest.approx([h["lr"] for h in first.history])
    settings = evaluator.inherit
    assert settings is not None and type(settings).from_dict(settings.to_dict()) == settings


def _edge_swap(space: Any, old: str, new: str = "nor_conv_3x3") -> tuple[Trial, Trial]:
    """A parent (trial 0) with ``old`` on the first edge of a sampled cell, and its child (trial 1) with ``new``."""
    arch = space.sample(np.random.default_rng(0))
    edges = list(arch.cell("cell").edges)
    src, dst, _ = edges[0]
    edges[0] = (src, dst, old)
    parent = Trial(0, arch.replace(cells={"cell": arch.cell("cell").with_edges(edges)}), 5)
    edges[0] = (src, dst, new)
    return parent, Trial(1, arch.replace(cells={"cell": arch.cell("cell").with_edges(edges)}), 6, parent=0)


def _inheriting(child: Trial, parent_result: Any) -> Trial:
    """``child`` carrying the weights of its parent's result (as the runtime hands them over)."""
    digest = hashlib.sha256(parent_result.weights).hexdigest()
    return dataclasses.replace(child, inherit=ParentWeights(0, digest, InlineWeights(parent_result.weights)))


def test_zero_new_ops_reaches_the_child_through_the_evaluator() -> None:
    """``evaluator.inherit.zero_new_ops``: the convolution a mutation added to a child starts at zero output (once per
    cell: 3 in nb201 with N=1), and the child's note says so."""
    space = get_space("nb201", C=4, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", task_options={"limit": 300},
                               train={"epochs": 1, "threads": 1}, latency_runs=0,
                               inherit={"epochs": 1, "zero_new_ops": True, "morph": False})
    parent, child = _edge_swap(space, "none")
    first = evaluator.evaluate(parent)
    assert first.ok and first.weights is not None
    result = evaluator.evaluate(_inheriting(child, first))
    assert result.ok and result.metrics["tensors_copied"] > 0
    assert "(3 new ops start at zero output)" in result.info["inheritance"]


@pytest.mark.parametrize(("old", "morph", "exact"), [("none", True, True), ("nor_conv_1x1", True, True),
                                                     ("none", False, False)])
def test_a_morphed_child_starts_at_its_parents_validation_accuracy(old: str, morph: bool, exact: bool) -> None:
    """``evaluator.inherit.morph``: a child whose new op has an exact morphism (none -> conv, conv1x1 -> conv3x3)
    scores, before any training (``start_val_acc``, epoch 0), exactly its parent's validation accuracy; without
    ``morph`` the fresh op starts it elsewhere."""
    space = get_space("nb201", C=4, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", task_options={"limit": 600},
                               train={"epochs": 2, "threads": 1}, latency_runs=0,
                               inherit={"epochs": 1, "morph": morph, "measure_start": True})
    parent, child = _edge_swap(space, old)
    first = evaluator.evaluate(parent)
    assert first.ok and first.weights is not None
    result = evaluator.evaluate(_inheriting(child, first))
    assert result.ok and "start_val_acc" in result.metrics and "start_score" in result.metrics
    assert (result.metrics["start_val_acc"] == first.metrics["val_acc"]) is exact
    assert ("3 new ops start from the op they replaced exactly" in result.info["inheritance"]) is exact


def test_the_start_is_measured_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluator.inherit.measure_start``: off (the default), an inheriting child gets no extra validation pass and
    no ``start_val_acc`` / ``start_score``; on, it gets one pass more and both metrics, and nothing else changes
    (same training, same scores, same weights)."""
    calls: list[int] = []
    real = evaluators.score_split

    def counted(*args: Any, **kwargs: Any) -> Any:  # the real scoring, counted
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluators, "score_split", counted)
    space = get_space("nb201", C=4, N=1)
    parent, child = _edge_swap(space, "none")
    results, names = [], []
    for measure in (False, True):
        evaluator = TrainEvaluator(compiler=space.compiler(), task="digits", task_options={"limit": 300},
                                   train={"epochs": 1, "threads": 1}, latency_runs=0,
                                   inherit={"epochs": 1, **({"measure_start": True} if measure else {})})
        first = evaluator.evaluate(parent)
        assert first.ok and first.weights is not None
        calls.clear()
        results.append(evaluator.evaluate(_inheriting(child, first)))
        names.append(evaluator.metric_names())
        validation, test = len(evaluator.task.x_val), len(evaluator.task.x_test)
        assert calls == ([validation, test] if measure else [test])  # the start's pass on validation, then test
    off, on = results
    assert off.ok and on.ok and off.metrics["tensors_copied"] > 0
    assert not {"start_val_acc", "start_score"} & (set(off.metrics) | names[0])
    assert {"start_val_acc", "start_score"} <= set(on.metrics) & names[1]
    assert 0.0 <= on.metrics["start_val_acc"] <= 100.0
    assert {k: v for k, v in on.metrics.items() if not k.startswith("start_") and k != "train_seconds"} == {
        k: v for k, v in off.metrics.items() if k != "train_seconds"}
    assert on.weights == off.weights


@pytest.mark.parametrize(("change", "words"), [
    ({"inherit": {"measure_start": "yes"}}, "evaluator.inherit.measure_start = 'yes': must be true or false"),
    ({"inherit": {"epochs": 0}}, "evaluator.inherit.epochs = 0"),
    ({"inherit": {"epoch": 1}}, "evaluator.inherit.epoch: unknown key"),
    ({"inherit": {"keep": "all"}}, "evaluator.inherit.keep = 'all'"),
    ({"inherit": {"lr_scale": 0}}, "evaluator.inherit.lr_scale = 0: must be a number in (0, 1]"),
    ({"inherit": {"lr_scale": True}}, "evaluator.inherit.lr_scale = True"),
    ({"inherit": {"schedule": "cosin"}}, "evaluator.inherit.schedule = 'cosin': choose from"),
    ({"inherit": {"zero_new_ops": 1}}, "evaluator.inherit.zero_new_ops = 1: must be true or false"),
])
def test_bad_inherit_settings(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse_config({**CONFIG, "evaluator": {**CONFIG["evaluator"], **change}})


def test_inherit_needs_the_train_evaluator() -> None:
    with pytest.raises(ConfigError, match=re.escape("evaluator.inherit: the 'nb201' evaluator trains nothing")):
        parse_config({**CONFIG, "space": {"name": "nb201"}, "evaluator": {"name": "nb201", "inherit": {"epochs": 1}}})


def test_a_child_of_a_skipped_duplicate_names_the_evaluated_trial(tmp_path: Path) -> None:
    """De-duplication tells evolution the result of a duplicate under the duplicate's own id; a child bred from that
    member names the trial that was evaluated (whose weights exist) as its parent, also after a resume."""
    data = {"name": "alias", "seed": 0, "space": {"name": "nb201"},
            "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 4}},
            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 60},
            "execution": {"executor": "local", "workers": 1}}
    # the table evaluator keeps the test fast; the runtime tracks parents only when the evaluator inherits weights,
    # so the test turns it on as that runtime would
    exp = Experiment.create(parse_config({**data, "budget": {"max_trials": 30}}), tmp_path / "exp")
    exp.strategy.track_parents = True  # type: ignore[attr-defined]  # the Deduplicate wrapper
    exp.run()
    exp.close()
    exp = Experiment.open(tmp_path / "exp", max_trials=60)
    exp.strategy.track_parents = True  # type: ignore[attr-defined]  # the Deduplicate wrapper
    exp.run()
    trials = exp.store.trials()
    skipped = exp.strategy.skipped  # type: ignore[attr-defined]  # the Deduplicate wrapper
    exp.close()
    ids = {t.id for t in trials}
    parents = [t.parent for t in trials if t.parent is not None]
    assert skipped > 0 and parents
    assert all(p in ids for p in parents)


def test_parents_are_tracked_only_when_the_evaluator_inherits(tmp_path: Path) -> None:
    """Without inheritance the de-duplication keeps no aliases, so its checkpoint does not grow with the trials."""
    data = {"name": "noalias", "seed": 0, "space": {"name": "nb201"},
            "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 4}},
            "evaluator": {"name": "nb201"}, "budget": {"max_trials": 30},
            "execution": {"executor": "local", "workers": 1}}
    exp = Experiment.create(parse_config(data), tmp_path / "exp")
    exp.run()
    strategy = exp.strategy
    exp.close()
    assert strategy.skipped > 0  # type: ignore[attr-defined]  # the Deduplicate wrapper
    assert strategy.track_parents is False and strategy.aliases == {}  # type: ignore[attr-defined]  # the wrapper
