"""The weight_sharing evaluator (nas.weightsharing): a member inherits exactly its path's weights from the trained
single-path supernet and computes what the supernet computes on that path; batch-norm recalibration changes the
running statistics only (to the plain average over the batches); the supernet training is deterministic under a
seed and resumes from its last epoch with identical weights (also after kill -9 of `nas search`); a search with it
end to end (local executor) scores candidates with inherited weights, retrains the best from scratch and ranks them
first; bad inputs are refused before the first trial."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from _experiments import kill_mid_job, write_config

from nas.cli import main
from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.evaluation.tasks import load_task
from nas.oneshot.supernet import build_supernet
from nas.outputs.view import ExperimentView
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment
from nas.trials.trial import Status, Trial
from nas.weightsharing.evaluator import WeightSharingEvaluator
from nas.weightsharing.inherit import inherit, path_of, recalibrate_bn
from nas.weightsharing.job import run_spos_training, sample_path, set_path, zero_ops
from nas.weightsharing.spec import SharedWeights, SposConfig, SposTraining
from search_spaces import get_space

TASK_OPTIONS = {"limit": 200}


@pytest.fixture(scope="module")
def space():
    return get_space("nb201", C=2, N=1)


def train_supernet(space, directory, *, seed=0, epochs=2, on_epoch=None, none_weight=1.0) -> SharedWeights:
    spec = SposTraining(space=space, task="digits", task_options=TASK_OPTIONS, seed=seed,
                        config=SposConfig(epochs=epochs, batch_size=32, device="cpu", none_weight=none_weight),
                        directory=str(directory), threads=1)
    return run_spos_training(spec, on_epoch)


@pytest.fixture(scope="module")
def shared(space, tmp_path_factory) -> SharedWeights:
    return train_supernet(space, tmp_path_factory.mktemp("spos"))


def evaluator(space, shared=None, **options) -> WeightSharingEvaluator:
    ev = WeightSharingEvaluator(space=space, compiler=space.compiler(), task="digits", task_options=TASK_OPTIONS,
                                train={"epochs": 1, "batch_size": 32, "device": "cpu"}, data_seed=0,
                                **{"bn_recalibration_batches": 2, "supernet_batch_size": 32, **options})
    if shared is not None:
        ev.tell_job(shared)
    return ev


def test_a_member_inherits_exactly_its_paths_weights_and_computes_the_supernets_path(space, shared):
    task = load_task("digits", seed=0, **TASK_OPTIONS)
    net = build_supernet(space, task.input_shape, task.num_classes, seed=0)
    net.network.load_state_dict(shared.weights)
    for arch in [space.sample(np.random.default_rng(s)) for s in range(4)]:
        path = path_of(arch, shared.slots, shared.edges, shared.macro)
        model = space.compiler()(arch, task.input_shape, task.num_classes)
        fresh = {k: v.clone() for k, v in model.state_dict().items()}
        copied = inherit(model, shared.weights, shared.sites, path)
        state = model.state_dict()
        assert copied == len(state)
        changed = 0
        for key, value in state.items():  # each entry is the supernet's entry of the chosen op, bit for bit
            site = next((s for s in sorted(shared.sites, key=len, reverse=True) if key.startswith(s + ".")), None)
            source = key if site is None else f"{site}.ops.{path[shared.sites[site][0]][shared.sites[site][1]]}" \
                                              f"{key[len(site):]}"
            assert torch.equal(value, shared.weights[source]), key
            changed += value.is_floating_point() and not torch.equal(value, fresh[key])
        assert changed > 0  # the fresh initialisation was replaced
        # the same function: the member's forward equals the supernet's forward along its path (eval mode)
        x = torch.as_tensor(task.x_val[:16], dtype=torch.float32)
        model.eval()
        net.eval()
        set_path(net, path, torch.device("cpu"))
        with torch.no_grad():
            assert torch.allclose(model(x), net.network(x), atol=1e-5)


def test_a_member_that_does_not_line_up_is_refused(space, shared):
    task = load_task("digits", seed=0, **TASK_OPTIONS)
    wide = get_space("nb201", C=4, N=1)  # a member of a wider space: same cell, other channel counts
    arch = wide.sample(np.random.default_rng(0))
    wider = wide.compiler()(arch, task.input_shape, task.num_classes)
    path = path_of(arch, shared.slots, shared.edges, shared.macro)
    with pytest.raises(InvalidArchitectureError, match="does not line up"):
        inherit(wider, shared.weights, shared.sites, path)


def test_bn_recalibration_changes_only_the_running_statistics(space, shared):
    task = load_task("digits", seed=0, **TASK_OPTIONS)
    arch = space.sample(np.random.default_rng(1))
    model = space.compiler()(arch, task.input_shape, task.num_classes)
    inherit(model, shared.weights, shared.sites, path_of(arch, shared.slots, shared.edges, shared.macro))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.as_tensor(task.x_train[:64], dtype=torch.float32)
    batches = [x[:32], x[32:]]
    assert recalibrate_bn(model, batches) > 0
    assert not model.training
    after = model.state_dict()
    stats = ("running_mean", "running_var", "num_batches_tracked")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.rsplit(".", 1)[1] in stats for k in changed)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    # the stem's statistics are the plain average of the per-batch statistics of the stem convolution's output
    stem_conv, stem_bn = model.stem[0], model.stem[1]
    with torch.no_grad():
        means = [stem_conv(b).mean(dim=(0, 2, 3)) for b in batches]
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert int(stem_bn.num_batches_tracked) == 2


def test_path_sampling_is_uniform_by_default_and_down_weights_the_none_op_on_request(space):
    task = load_task("digits", seed=0, **TASK_OPTIONS)
    net = build_supernet(space, task.input_shape, task.num_classes, seed=0)
    zero = zero_ops(net)
    (slot, ops), = net.slots.items()
    assert [op == "none" for op in ops.ops] == zero[slot] and sum(zero[slot]) == 1
    none = zero[slot].index(True)

    def counts(none_weight: float) -> np.ndarray:
        gen = torch.Generator().manual_seed(0)
        drawn = [i for _ in range(400) for i in sample_path(net, gen, none_weight, zero)[slot]]
        return np.bincount(drawn, minlength=len(ops.ops)) / len(drawn)

    uniform, never, half = counts(1.0), counts(0.0), counts(0.5)
    assert np.all(np.abs(uniform - 1 / len(ops.ops)) < 0.02)  # 2400 draws: sd ~0.008
    assert never[none] == 0 and np.all(np.abs(np.delete(never, none) - 1 / (len(ops.ops) - 1)) < 0.02)
    assert abs(half[none] - 0.5 / (len(ops.ops) - 0.5)) < 0.02
    # the default draws exactly what a uniform draw per row draws (checkpoints of earlier trainings stay valid)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert sample_path(net, gen_a) == {slot: torch.randint(len(ops.ops), (ops.rows,), generator=gen_b).tolist()}


def test_a_supernet_trained_without_the_none_op_differs_and_its_settings_guard_the_checkpoint(space, shared,
                                                                                               tmp_path):
    no_none = train_supernet(space, tmp_path / "n", none_weight=0.0)
    assert any(not torch.equal(no_none.weights[k], shared.weights[k]) for k in shared.weights
               if shared.weights[k].is_floating_point())
    with pytest.raises(ConfigError, match="other settings"):
        train_supernet(space, tmp_path / "n", none_weight=0.5)
    ev = evaluator(space, no_none)
    assert ev.bn_batches == 2 and WeightSharingEvaluator.__init__.__kwdefaults__["bn_recalibration_batches"] == 20
    result = ev.evaluate(Trial(0, space.sample(np.random.default_rng(4)), 1))
    assert result.status is Status.COMPLETE, result.error


def test_supernet_training_and_scores_are_deterministic_under_a_seed(space, shared, tmp_path):
    again = train_supernet(space, tmp_path / "a")
    assert again.weights.keys() == shared.weights.keys()
    assert all(torch.equal(again.weights[k], shared.weights[k]) for k in shared.weights)
    other = train_supernet(space, tmp_path / "b", seed=1)
    assert any(not torch.equal(other.weights[k], shared.weights[k]) for k in shared.weights
               if shared.weights[k].is_floating_point())
    ev = evaluator(space, shared)
    arch = space.sample(np.random.default_rng(2))
    first, second = ev.evaluate(Trial(0, arch, 5)), ev.evaluate(Trial(0, arch, 5))
    assert first.status is Status.COMPLETE, first.error
    assert first.score == second.score and first.metrics["val_loss"] == second.metrics["val_loss"]
    assert first.info["evaluation"] == "weight_sharing" and first.metrics["inherited"] > 0


def test_an_interrupted_supernet_training_continues_from_its_last_epoch_with_identical_weights(space, tmp_path):
    straight = train_supernet(space, tmp_path / "straight", epochs=3)

    class StopError(Exception):
        pass

    def stop_after_first(record):
        if record["epoch"] == 0:
            raise StopError

    with pytest.raises(StopError):
        train_supernet(space, tmp_path / "cut", epochs=3, on_epoch=stop_after_first)
    seen: list[int] = []
    resumed = train_supernet(space, tmp_path / "cut", epochs=3, on_epoch=lambda r: seen.append(r["epoch"]))
    assert seen == [1, 2]  # epoch 0 came from the checkpoint
    assert resumed.history == straight.history
    assert all(torch.equal(resumed.weights[k], straight.weights[k]) for k in straight.weights)
    # a finished training is read back without training
    seen.clear()
    done = train_supernet(space, tmp_path / "cut", epochs=3, on_epoch=lambda r: seen.append(r["epoch"]))
    assert seen == [] and done.epochs_run == 3
    # a checkpoint of other settings is refused, naming the fix
    with pytest.raises(ConfigError, match="other settings; delete it"):
        train_supernet(space, tmp_path / "cut", epochs=4)


def config(**changes) -> dict:
    cfg = {"name": "ws", "seed": 1, "space": {"name": "nb201", "options": {"C": 2, "N": 1}},
           "strategy": {"name": "random"},
           "evaluator": {"name": "weight_sharing", "task": "digits", "task_options": TASK_OPTIONS,
                         "train": {"epochs": 1, "batch_size": 32},
                         "options": {"supernet_epochs": 2, "supernet_batch_size": 32, "bn_recalibration_batches": 2,
                                     "retrain_top": 2}},
           "budget": {"max_trials": 6}, "execution": {"executor": "local", "workers": 1, "threads_per_trial": 1}}
    cfg.update(changes)
    return cfg


def test_a_search_scores_with_inherited_weights_then_retrains_and_ranks_the_best(tmp_path, capsys):
    exp = Experiment.create(parse_config(config()), tmp_path / "exp")
    lines: list[str] = []
    ranked = exp.run(progress=lambda event: lines.append(str(event)))
    assert sum(line.startswith("weight_sharing epoch") for line in lines) == 2
    trials = exp.store.trials()
    assert len(trials) == 6 and all(t.status == "COMPLETE" for t in trials)
    assert all(t.info["evaluation"] == "weight_sharing" and "train_seconds" not in t.metrics for t in trials)
    retrained = exp.store.retrained()
    top2 = exp.search_ranking().ranked[:2]
    assert sorted(t.id for t in retrained) == sorted(t.id for t in top2)
    assert all(t.status == "COMPLETE" and "train_seconds" in t.metrics for t in retrained)  # trained from scratch
    by_id = {t.id: t for t in trials}
    for t in retrained:  # both scores are kept
        assert t.metrics["inherited_score"] == by_id[t.id].score
    assert sum(line.startswith("[retrain") for line in lines) == 2
    # the final ranking: the retrained winners first, by their stand-alone score, then the rest
    assert {t.id for t in ranked[:2]} == {t.id for t in retrained}
    assert ranked[0].score >= ranked[1].score and "inherited_score" in ranked[0].metrics
    assert len(ranked) == 6
    assert json.loads((tmp_path / "exp" / "best.json").read_text()) == json.loads(ranked[0].arch.to_json())
    assert exp.store.meta("evaluator_job")["epochs_run"] == 2
    assert (tmp_path / "exp" / "weight_sharing" / "checkpoint.pt").is_file()
    view = ExperimentView.open(tmp_path / "exp")
    assert [t.id for t in view.ranked()] == [t.id for t in ranked]
    done = view.summary()["evaluator_job"]
    assert done == exp.summary()["evaluator_job"] and done["state"] == "done" and done["epochs_run"] == 2
    exp.close()
    capsys.readouterr()
    assert main(["status", str(tmp_path / "exp")]) == 0
    assert (f"weight-sharing supernet: 2 epochs, {done['cpu_minutes']} CPU-min, sampled-path train acc "
            f"{done['train_acc']:.1f}") in capsys.readouterr().out
    # resuming with a larger budget reads the trained supernet back (no epoch runs again) and retrains only the
    # candidates that entered the top 2
    more = Experiment.open(tmp_path / "exp", max_trials=9)
    lines.clear()
    more.run(progress=lambda event: lines.append(str(event)))
    assert not any(line.startswith("weight_sharing epoch") for line in lines)
    assert len(more.store.trials()) == 9
    top2 = {t.id for t in more.search_ranking().ranked[:2]}
    assert top2 <= {t.id for t in more.store.retrained()}
    more.close()


def test_the_retraining_of_the_winners_is_part_of_the_time_budget(tmp_path):
    """``budget.max_seconds`` covers the whole search: once it is spent (here during the candidates, whose trial
    budget is out of reach), no winner is retrained; they keep their inherited-weight score, and the log says so.
    A session opened after the budget is spent retrains nothing either."""
    exp = Experiment.create(parse_config(config(budget={"max_trials": 1000, "max_seconds": 0.5})), tmp_path / "exp")
    lines: list[str] = []
    ranked = exp.run(progress=lambda event: lines.append(str(event)))
    assert 0 < len(exp.store.trials()) < 1000 and exp.store.retrained() == []
    assert not any(line.startswith("[retrain") for line in lines)
    cut = [line for line in lines if "not retrained" in line]
    assert cut == ["budget.max_seconds = 0.5 spent: 2 of the 2 best trials not retrained from scratch (they keep "
                   "their inherited-weight score); raise budget.max_seconds or lower evaluator.options.retrain_top "
                   "to retrain them all"]
    assert [t.id for t in ranked] == [t.id for t in exp.search_ranking().ranked]
    lines.clear()
    exp.run(progress=lambda event: lines.append(str(event)))
    assert exp.store.retrained() == [] and any("not retrained" in line for line in lines)
    assert any(line.startswith("budget already spent") for line in lines)
    exp.close()


def test_a_search_killed_mid_supernet_resumes_from_its_last_epoch(tmp_path):
    cfg = config(budget={"max_trials": 1})
    cfg["evaluator"]["options"] = {**cfg["evaluator"]["options"], "supernet_epochs": 12, "retrain_top": 0}
    path = write_config(tmp_path, cfg, "cfg.yaml")
    killed = tmp_path / "killed"
    epochs = kill_mid_job(path, killed, "weight_sharing", timeout=300)
    assert 2 <= epochs < 12, f"the search was not caught mid-supernet ({epochs} epochs)"
    assert main(["resume", str(killed), "--quiet"]) == 0
    assert "resuming after epoch" in (killed / "search.log").read_text()
    straight = tmp_path / "straight"
    assert main(["search", str(path), "--out", str(straight), "--quiet"]) == 0
    a, b = Experiment.open(killed), Experiment.open(straight)
    try:
        assert a.store.meta("evaluator_job")["history"] == b.store.meta("evaluator_job")["history"]
        assert [t.score for t in a.store.trials()] == [t.score for t in b.store.trials()]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(("changes", "message"), [
    ({"space": {"name": "rnn"}, "evaluator": {"name": "weight_sharing", "task": "italy_power"}},
     r"needs a space with a supernet.*space 'rnn' has none"),
    ({"space": {"name": "darts", "options": {"C": 2, "layers": 3}}},
     r"members of space 'darts' hold .* edges .* choose their inputs"),
    ({"evaluator": {"name": "weight_sharing"}}, r"evaluator.task: missing; the weight_sharing evaluator"),
    ({"evaluator": {"name": "weight_sharing", "task": "digits", "options": {"supernet_epochs": 0}}},
     r"evaluator.options.supernet_epochs = 0: must be an integer >= 1"),
    ({"evaluator": {"name": "weight_sharing", "task": "digits", "options": {"supernet_none_weight": 2}}},
     r"evaluator.options.supernet_none_weight = 2: must be a number in \[0(.0)?, 1(.0)?\]"),
    ({"evaluator": {"name": "weight_sharing", "task": "digits", "options": {"retrain_top": -1}}},
     r"evaluator.options.retrain_top = -1"),
    ({"evaluator": {"name": "weight_sharing", "task": "digits", "options": {"supernet_epoch": 3}}},
     r"evaluator.options.supernet_epoch is not an option of the weight_sharing evaluator.*did you mean "
     r"'supernet_epochs'"),
])
def test_bad_inputs_are_refused_before_the_first_trial(changes, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config(**changes))


def test_on_ray_the_supernet_trains_in_a_worker_and_its_weights_reach_the_trials_through_the_object_store(tmp_path):
    pytest.importorskip("ray")
    for key, value in (("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
        os.environ.setdefault(key, value)
    cfg = config(execution={"executor": "ray", "workers": 1, "cpus_per_trial": 1, "threads_per_trial": 1},
                 budget={"max_trials": 3})
    exp = Experiment.create(parse_config(cfg), tmp_path / "exp")
    lines: list[str] = []
    ranked = exp.run(progress=lambda event: lines.append(str(event)))
    assert [line.split(":")[0] for line in lines if line.startswith("weight_sharing epoch")] == \
        ["weight_sharing epoch 1/2", "weight_sharing epoch 2/2"]
    trials = exp.store.trials()
    assert len(trials) == 3 and all(t.status == "COMPLETE" and t.worker for t in trials)
    assert len(exp.store.retrained()) == 2 and "inherited_score" in ranked[0].metrics
    # no file carries the weights to the workers: the job's folder holds its checkpoint and history only
    assert sorted(p.name for p in (tmp_path / "exp" / "weight_sharing").iterdir()) == ["checkpoint.pt",
                                                                                    "history.json"]
    exp.close()


def test_retrained_trials_rank_first_by_their_stand_alone_score_under_the_constraints():
    from dataclasses import dataclass, field

    from nas.trials.objectives import parse_constraints
    from nas.trials.ranking import rank, with_retrained

    @dataclass
    class Row:
        id: int
        score: float | None
        status: str = "COMPLETE"
        metrics: dict = field(default_factory=dict)

    constraints = parse_constraints({"params": {"max": 100}})
    search = [Row(0, 90.0, metrics={"params": 50}), Row(1, 80.0, metrics={"params": 50}),
              Row(2, 70.0, metrics={"params": 50}), Row(3, 95.0, metrics={"params": 500})]
    ranking = rank(search, constraints, ident=lambda r: r.id, outcome=lambda r: r)
    again = [Row(0, 60.0, metrics={"params": 50}), Row(1, 75.0, metrics={"params": 50}),
             Row(2, None, status="FAILED", metrics={"params": 50})]
    final = with_retrained(ranking, again, ident=lambda r: r.id, outcome=lambda r: r)
    assert [(r.id, r.score) for r in final.ranked] == [(1, 75.0), (0, 60.0)]  # the failed retraining drops out
    assert [r.id for r in final.infeasible] == [3] and final.violations == ranking.violations
    assert with_retrained(ranking, [], ident=lambda r: r.id, outcome=lambda r: r) is ranking
