"""Weight reuse on Ray workers. Inheritance: the driver puts each parent's weights in Ray's object store once, the
trial carries the reference, the worker reads the weights from there (never from the experiment's folder).
``evaluator.init_from``: the driver reads the weights once and they travel with the evaluator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

for _key, _value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before Ray is imported and started

ray = pytest.importorskip("ray")
from _ray import quiet_ray  # noqa: E402  (after the skip: it imports ray)

from nas.evaluation.tasks import load_task  # noqa: E402
from nas.evaluation.training import TrainConfig, seeded, train  # noqa: E402
from nas.runtime import inheritance  # noqa: E402
from nas.runtime.config import parse_config  # noqa: E402
from nas.runtime.experiment import Experiment  # noqa: E402
from search_spaces import get_space  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    with quiet_ray(num_cpus=2):
        yield


def test_children_inherit_through_the_object_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    puts: list[int] = []
    real_put = ray.put

    def counting_put(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, bytes):
            puts.append(len(value))
        return real_put(value, *args, **kwargs)

    monkeypatch.setattr(ray, "put", counting_put)
    attached: list[Any] = []
    real_attach = inheritance.WeightShipper.attach

    def spying_attach(self: inheritance.WeightShipper, trial: Any) -> Any:
        out = real_attach(self, trial)
        attached.append(out.inherit)
        return out

    monkeypatch.setattr(inheritance.WeightShipper, "attach", spying_attach)
    cfg = parse_config({
        "name": "inherit-ray", "seed": 4, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "strategy": {"name": "evolution", "options": {"population": 2, "sample_size": 2}},
        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 400},
                      "train": {"epochs": 2, "threads": 1}, "inherit": {"epochs": 1, "keep": 4},
                      "options": {"latency_runs": 0}},
        "budget": {"max_trials": 7},
        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "threads_per_trial": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    try:
        exp.run()
        trials = exp.store.trials()
    finally:
        exp.close()
    children = [t for t in trials if t.parent is not None]
    assert children and all(t.status == "COMPLETE" for t in trials)
    shipped = [w for w in attached if w is not None]
    assert shipped and all(isinstance(w.source, inheritance.RayWeights) for w in shipped if w.source is not None)
    inherited = [t for t in children if t.metrics["tensors_copied"] > 0]
    assert inherited and all(t.metrics["epochs"] == 1 for t in inherited)
    assert all(t.worker for t in inherited)  # they ran on Ray workers
    # one put per parent, however many children it had
    parents = {w.parent for w in shipped if w.source is not None}
    assert len(puts) == len(parents)


def test_init_from_weights_reach_the_ray_workers(tmp_path: Path) -> None:
    """``evaluator.init_from`` on the Ray executor: the driver reads the weights once and ships them with the
    evaluator, so the workers start every candidate from them without reading the file (gone by the time they run:
    a worker on another node would not have it)."""
    space = get_space("nb201", C=4, N=1)
    arch = space.sample(np.random.default_rng(5))
    task = load_task("digits", seed=0, limit=300)
    with seeded(0):
        model = space.compiler()(arch, task.input_shape, task.num_classes)
    train(model, task, TrainConfig(epochs=1, batch_size=32, device="cpu", threads=1), seed=0)
    weights = tmp_path / "source.pt"
    torch.save(model.state_dict(), weights)
    cfg = parse_config({
        "name": "init-from-ray", "seed": 2, "space": {"name": "nb201", "options": {"C": 4, "N": 1}},
        "strategy": {"name": "random"},
        "evaluator": {"name": "train", "task": "digits", "task_options": {"limit": 300},
                      "train": {"epochs": 1, "batch_size": 32, "threads": 1}, "init_from": str(weights),
                      "init_mode": "partial", "init_freeze": 1, "options": {"latency_runs": 0}},
        "budget": {"max_trials": 2},
        "execution": {"executor": "ray", "workers": 2, "cpus_per_trial": 1, "threads_per_trial": 1}})
    exp = Experiment.create(cfg, tmp_path / "exp")
    weights.rename(tmp_path / "moved.pt")
    try:
        exp.run()
        trials = exp.store.trials()
    finally:
        exp.close()
    assert len(trials) == 2 and all(t.status == "COMPLETE" for t in trials), [t.error for t in trials]
    state = model.state_dict()
    for t in trials:
        assert t.worker  # ran on a Ray worker
        fresh = space.compiler()(t.arch, task.input_shape, task.num_classes).state_dict()
        # stem, resblocks and head always fit; of the cells, the ops the candidate shares with the source
        assert 0 < t.metrics["init_copied"] <= len(state)
        assert t.metrics["init_copied"] + t.metrics["init_reinit"] == len(fresh)
        assert t.metrics["init_frozen"] >= 2 and f"from {weights}; mode partial" in t.info["init_from"]
