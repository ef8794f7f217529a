"""Evaluators (nas.evaluation.evaluators): the NAS-Bench-201 lookup against the shipped table, the train evaluator's
result contract and cost measurements (nas.evaluation.measure), and the zero-cost proxies (nas.evaluation.proxies)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from nas import references
from nas.core.errors import ConfigError, UnknownNameError
from nas.evaluation.benchmarks import load_nb201
from nas.evaluation.evaluators import NB201Evaluator, ProxyEvaluator, TrainEvaluator, get_evaluator, list_evaluators
from nas.evaluation.gan import GanEvaluator
from nas.evaluation.measure import count_flops, count_params, cpu_latency_ms
from nas.evaluation.proxies import PROXIES, naswot, synflow
from nas.evaluation.ssl import SslEvaluator
from nas.graph.compiler import build_model
from nas.trials.trial import Result, Status, Trial
from nas.weightsharing.evaluator import WeightSharingEvaluator
from search_spaces import get_space

NB201 = get_space("nb201")
RECORDS = load_nb201()
BY_STRING = {r.arch_str: r for r in RECORDS}
TINY = get_space("nb201", C=4, N=1)
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"

# dataset: (score field, test field, best test accuracy over the table, words of the signal)
DATASETS = {
    "cifar10": ("cifar10_val200", "cifar10_test200", 94.37, "200-epoch validation"),
    "cifar100": ("cifar100_val12", "cifar100_test200", 73.51, "12-epoch validation"),
    "imagenet16-120": ("imagenet16_val12", "imagenet16_test200", 47.31, "12-epoch validation"),
}


@pytest.fixture(scope="module")
def all_archs():
    return [NB201.from_string(r.arch_str) for r in RECORDS]


def test_registry_lists_the_built_in_evaluators():
    # weight_sharing lives a layer above evaluation, gan and ssl in their own packages; each registers itself when
    # imported (the runtime imports them)
    assert set(list_evaluators()) == {"train", "nb201", "proxy", WeightSharingEvaluator.name, GanEvaluator.name,
                                     SslEvaluator.name}
    with pytest.raises(UnknownNameError, match="did you mean 'nb201'"):
        get_evaluator("nb210")


# -- nb201 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_nb201_best_test_accuracy_of_the_argmax_architecture(dataset):
    _, test_field, best, _ = DATASETS[dataset]
    record = max(RECORDS, key=lambda r: getattr(r, test_field))
    assert round(getattr(record, test_field), 2) == best
    result = get_evaluator("nb201", dataset=dataset).evaluate(Trial(0, NB201.from_string(record.arch_str)))
    assert result.status is Status.COMPLETE
    assert round(result.metrics["test_acc"], 2) == best
    assert result.metrics["nb201_index"] == record.index


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_nb201_over_the_whole_table(dataset, all_archs):
    score_field, test_field, best, _ = DATASETS[dataset]
    ev = get_evaluator("nb201", dataset=dataset)
    results = [ev.evaluate(Trial(i, arch)) for i, arch in enumerate(all_archs)]
    assert all(r.status is Status.COMPLETE for r in results)
    assert round(max(r.metrics["test_acc"] for r in results), 2) == best
    # the score is the validation signal, never the test accuracy
    assert [r.score for r in results] == [getattr(rec, score_field) for rec in RECORDS]
    assert [r.metrics["test_acc"] for r in results] == [getattr(rec, test_field) for rec in RECORDS]
    assert sum(r.score != r.metrics["test_acc"] for r in results) > 15000
    # ranking by score does not pick the test-accuracy argmax for free: it picks the val argmax
    best_by_score = max(range(len(results)), key=lambda i: results[i].score)
    assert results[best_by_score].score == max(getattr(rec, score_field) for rec in RECORDS)


def test_nb201_lookups_agree_with_the_table_for_a_seeded_sample():
    rng = np.random.default_rng(2024)
    evaluators = {d: NB201Evaluator(dataset=d) for d in DATASETS}
    seen = set()
    for i in range(200):
        arch = NB201.sample(rng)
        record = BY_STRING[NB201.to_string(arch)]
        seen.add(record.index)
        assert evaluators["cifar10"].lookup(arch) == record
        for dataset, (score_field, test_field, _, _) in DATASETS.items():
            result = evaluators[dataset].evaluate(Trial(i, arch))
            assert result.score == getattr(record, score_field)
            assert result.metrics["val_acc"] == result.score
            assert result.metrics["test_acc"] == getattr(record, test_field)
            assert result.metrics["nb201_index"] == record.index
            if record.params_M is not None:
                assert result.metrics["params"] == pytest.approx(record.params_M * 1e6)
            if record.flops_M is not None:
                assert result.metrics["flops"] == pytest.approx(record.flops_M * 1e6)
    assert len(seen) > 190  # really a sample of different cells


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_nb201_signal_says_which_validation(dataset):
    words = DATASETS[dataset][3]
    result = get_evaluator("nb201", dataset=dataset).evaluate(Trial(0, NB201.from_string(CELL)))
    assert words in result.info["signal"]
    assert "test" in result.info["test"] and "200-epoch" in result.info["test"]


def test_nb201_cifar10_12_epoch_signal():
    arch = NB201.from_string(CELL)
    record = BY_STRING[CELL]
    result = get_evaluator("nb201", dataset="cifar10", signal="val12").evaluate(Trial(0, arch))
    assert "12-epoch validation" in result.info["signal"]
    assert result.score == record.cifar10_val12
    assert result.metrics["test_acc"] == record.cifar10_test200


def test_nb201_ignores_the_macro_so_smaller_builds_share_the_record():
    arch = TINY.from_string(CELL)
    assert get_evaluator("nb201").evaluate(Trial(0, arch)).score == BY_STRING[CELL].cifar10_val200


@pytest.mark.parametrize(
    "arch",
    [references.get("lenet5"), get_space("darts").sample(np.random.default_rng(0))],
    ids=["reference", "darts"],
)
def test_nb201_rejects_other_spaces_as_failed_results(arch):
    result = get_evaluator("nb201").evaluate(Trial(0, arch))
    assert result.status is Status.FAILED
    assert "nb201" in result.error
    assert result.score is None and result.traceback


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"dataset": "cifar-10"}, "dataset 'cifar-10'"),
        ({"dataset": "imagenet"}, "dataset 'imagenet'"),
        ({"dataset": "cifar100", "signal": "val200"}, "signal 'val200' is not available for cifar100"),
        ({"signal": "test200"}, "signal 'test200'"),
        ({"datset": "cifar10"}, "evaluator 'nb201'"),
    ],
)
def test_nb201_bad_options_raise(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        get_evaluator("nb201", **options)


# -- train -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def train_result():
    ev = get_evaluator("train", compiler=TINY.compiler(), task="digits", task_options={"limit": 400},
                       train={"epochs": 3, "device": "cpu"}, latency_runs=3)
    return ev, ev.evaluate(Trial(0, TINY.from_string(CELL), seed=1))


def test_train_result_contract(train_result):
    ev, result = train_result
    assert isinstance(ev, TrainEvaluator)
    assert result.status is Status.COMPLETE and result.ok and result.error is None
    assert result.score == result.metrics["val_acc"]
    assert 0.0 <= result.metrics["test_acc"] <= 100.0
    assert math.isfinite(result.metrics["test_loss"])
    for key in ("params", "flops", "latency_ms", "train_seconds"):
        assert result.metrics[key] > 0, key
    assert len(result.history) == 3 == result.metrics["epochs"]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.score == max(h["val_acc"] for h in result.history)  # restore_best: the best epoch counts
    assert "validation" in result.info["signal"] and "digits" in result.info["signal"]
    assert Result.from_dict(result.to_dict()).score == result.score


def test_train_result_params_and_flops_match_the_compiled_model(train_result):
    ev, result = train_result
    model = TINY.build_model(TINY.from_string(CELL), ev.task.input_shape, ev.task.num_classes)
    assert result.metrics["params"] == count_params(model)
    assert result.metrics["flops"] == count_flops(model, ev.task.input_shape)


def test_train_evaluator_measures_lenet5_bn_like_a_hand_count():
    class ReferenceCompiler:
        name, input_kind = "reference", "image"

        def __call__(self, arch, input_shape, num_classes):
            return build_model(arch, input_shape, num_classes)

    ev = get_evaluator("train", compiler=ReferenceCompiler(), task="digits", task_options={"limit": 200},
                       train={"epochs": 1, "device": "cpu"}, latency_runs=0)
    result = ev.evaluate(Trial(0, references.get("lenet5_bn")))
    assert result.status is Status.COMPLETE
    assert "latency_ms" not in result.metrics
    # the graph-encoded LeNet-5 on 1x8x8: conv5x5 (1->6, 8x8, no bias) + BN, max-pool to 4x4, conv5x5 (6->16, 4x4) + BN,
    # max-pool to 2x2, flatten 64 -> 120 -> 84 -> 10. A multiply-add counts 2 FLOPs; pooling and BN none.
    conv_flops = 2 * (6 * 8 * 8 * 25 * 1) + 2 * (16 * 4 * 4 * 25 * 6)
    fc_flops = 2 * (64 * 120 + 120 * 84 + 84 * 10)
    assert result.metrics["flops"] == conv_flops + fc_flops == 133_200
    conv_params = 6 * 25 + 2 * 6 + 16 * 6 * 25 + 2 * 16
    fc_params = (64 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert result.metrics["params"] == conv_params + fc_params


def test_count_flops_of_hand_built_layers():
    assert count_flops(nn.Linear(20, 7), (20,)) == 2 * 20 * 7
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    assert count_flops(conv, (3, 10, 10)) == 2 * (8 * 10 * 10) * (3 * 3 * 3)
    strided = nn.Conv2d(4, 6, kernel_size=3, stride=2)  # 11x11 -> 5x5
    assert count_flops(strided, (4, 11, 11)) == 2 * (6 * 5 * 5) * (4 * 3 * 3)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 5))
    assert count_flops(net, (1, 4, 4)) == 2 * (2 * 16 * 9) + 2 * (32 * 5)
    assert count_params(net) == (2 * 9 + 2) + (32 * 5 + 5)


def test_count_flops_restores_training_mode_and_latency_is_positive():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    net.train()
    count_flops(net, (4,))
    assert net.training
    assert cpu_latency_ms(net, (4,), runs=3) > 0
    assert net.training  # measured on a copy


def test_image_space_with_a_sequence_task_fails_with_a_clear_reason():
    # The evaluator is built lazily: the mismatch shows when the task is first loaded, as a FAILED result.
    ev = get_evaluator("train", compiler=TINY.compiler(), task="italy_power", train={"epochs": 1, "device": "cpu"})
    result = ev.evaluate(Trial(0, TINY.from_string(CELL)))
    assert result.status is Status.FAILED
    assert result.error.startswith("ConfigError: ")
    assert "builds image models but task 'italy_power' holds sequence data" in result.error


def test_sequence_space_with_an_image_task_fails_with_a_clear_reason():
    space = get_space("transformer", d_model=16, num_cells=1)
    ev = get_evaluator("train", compiler=space.compiler(), task="digits", train={"epochs": 1, "device": "cpu"})
    result = ev.evaluate(Trial(0, space.sample(np.random.default_rng(0))))
    assert result.status is Status.FAILED
    assert "builds sequence models but task 'digits' holds image data" in result.error


def test_train_evaluator_bad_options_raise():
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        get_evaluator("train", compiler=TINY.compiler(), task="digit")
    with pytest.raises(ConfigError, match="unknown field 'epoch'"):
        get_evaluator("train", compiler=TINY.compiler(), task="digits", train={"epoch": 3})
    with pytest.raises(ConfigError, match="evaluator 'train'"):
        get_evaluator("train", compiler=TINY.compiler(), task="digits", tasks="digits")


def test_train_evaluator_applies_architecture_hparams():
    ev = get_evaluator("train", compiler=TINY.compiler(), task="digits", train={"epochs": 2, "lr": 0.05})
    arch = TINY.from_string(CELL)
    assert ev.config_for(arch) == ev.train_config
    joint = arch.replace(macro={**arch.macro, "hparams": {"lr": 0.2, "optimizer": "adam"}})
    cfg = ev.config_for(joint)
    assert (cfg.lr, cfg.optimizer, cfg.epochs) == (0.2, "adam", 2)


# -- proxies ---------------------------------------------------------------------------------------------
def test_synflow_is_data_free():
    ev = get_evaluator("proxy", compiler=TINY.compiler(), proxy="synflow", input_shape=(3, 32, 32))
    assert isinstance(ev, ProxyEvaluator)
    arch = TINY.from_string(CELL)
    a = ev.evaluate(Trial(0, arch, seed=0))
    b = ev.evaluate(Trial(1, arch, seed=0))
    assert a.status is Status.COMPLETE and math.isfinite(a.score)
    assert a.score == b.score == a.metrics["synflow"]
    assert a.metrics["params"] > 0
    assert "synflow" in a.info["signal"]
    # the data-free score only sees the input shape
    model = TINY.build_model(arch, (3, 32, 32), 10)
    assert synflow(model, torch.zeros(2, 3, 32, 32)) == synflow(model, torch.randn(5, 3, 32, 32))


def test_synflow_does_not_touch_the_model():
    model = TINY.build_model(TINY.from_string(CELL), (3, 16, 16), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synflow(model, torch.zeros(1, 3, 16, 16))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_naswot_needs_a_task():
    with pytest.raises(ConfigError, match="'naswot' needs a task"):
        get_evaluator("proxy", compiler=TINY.compiler(), proxy="naswot", input_shape=(3, 32, 32))
    with pytest.raises(ConfigError, match="'synflow' needs a task or an input_shape"):
        get_evaluator("proxy", compiler=TINY.compiler(), proxy="synflow")
    with pytest.raises(ConfigError, match="proxy 'snip'"):
        get_evaluator("proxy", compiler=TINY.compiler(), proxy="snip", input_shape=(3, 32, 32))
    assert set(PROXIES) == {"synflow", "naswot"}


def test_naswot_on_a_task_is_finite_and_deterministic():
    ev = get_evaluator("proxy", compiler=TINY.compiler(), proxy="naswot", task="digits", batch_size=32)
    arch = TINY.from_string(CELL)
    a = ev.evaluate(Trial(0, arch, seed=0))
    b = ev.evaluate(Trial(1, arch, seed=0))
    assert a.status is Status.COMPLETE and math.isfinite(a.score)
    assert a.score == b.score
    other = ev.evaluate(Trial(2, TINY.from_string(CELL.replace("nor_conv_3x3", "avg_pool_3x3")), seed=0))
    assert other.ok and other.score != a.score


def test_naswot_is_the_log_determinant_of_the_activation_kernel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    x = torch.randn(4, 6)
    codes = (model(x) > 0).double()
    kernel = codes @ codes.t() + (1 - codes) @ (1 - codes).t()
    sign, logdet = torch.linalg.slogdet(kernel)
    expected = float(logdet) if sign != 0 else -math.inf
    assert naswot(model, x) == expected
    assert naswot(nn.Linear(6, 5), x) == 0.0  # no ReLU: nothing to score


def test_synflow_tracks_nb201_accuracy():
    ev = get_evaluator("proxy", compiler=NB201.compiler(), proxy="synflow", input_shape=(3, 32, 32))
    rng = np.random.default_rng(0)
    archs = [NB201.sample(rng) for _ in range(40)]
    results = [ev.evaluate(Trial(i, arch, seed=0)) for i, arch in enumerate(archs)]
    assert all(r.ok and math.isfinite(r.score) for r in results)
    accuracy = [BY_STRING[NB201.to_string(a)].cifar10_test200 for a in archs]
    rho = spearmanr([r.score for r in results], accuracy).statistic
    assert rho > 0.5, rho


def test_for_workers_carries_the_drivers_data_so_a_worker_reads_no_file(tmp_path):
    import pickle

    x = np.random.default_rng(0).standard_normal((60, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=np.arange(60) % 3)
    space = get_space("nb201", C=2, N=1)
    evaluator = TrainEvaluator(compiler=space.compiler(), task="npz", task_options={"path": str(path)},
                               train={"epochs": 1, "batch_size": 16}, latency_runs=0)
    assert pickle.loads(pickle.dumps(evaluator))._task is None  # shipped as is: each worker loads the task
    shipped = pickle.dumps(evaluator.for_workers())  # loads the task here, once
    path.unlink()  # the file exists on the driver only
    worker = pickle.loads(shipped)
    assert worker.task.num_classes == 3 and worker.task.x_train.flags.writeable
    assert worker.evaluate(Trial(0, space.sample(np.random.default_rng(0)), seed=0)).ok
    broken = TrainEvaluator(compiler=space.compiler(), task="npz", task_options={"path": str(tmp_path / "no.npz")})
    assert broken.for_workers() is broken  # cannot load: shipped as is, each trial fails with the reason
    proxy = ProxyEvaluator(compiler=space.compiler(), proxy="naswot", task="digits", task_options={"limit": 200})
    assert pickle.loads(pickle.dumps(proxy.for_workers()))._batch is not None
