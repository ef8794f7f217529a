"""Device use of the trainer (nas.evaluation.device): mixed precision, memory format, task placement and the
per-worker device cache. CPU tests check everything the CPU can show; ``gpu``-marked tests run the CUDA-only paths
(fp16 with its scaler, channels_last on CUDA, resident and pinned streamed data, memory released between trials)."""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.device import (
    DeviceDataCache,
    TaskTensors,
    apply_memory_format,
    autocast,
    grad_scaler,
    place_task,
    resident_on,
    same_device,
    task_nbytes,
    to_device,
)
from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.tasks import load_task
from nas.evaluation.training import TrainConfig, seeded, train
from nas.trials.trial import Status, Trial
from search_spaces import get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SPACE = get_space("nb201", C=4, N=1)
ARCH = SPACE.from_string(CELL)
CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits():
    return load_task("digits", seed=0)


@pytest.fixture(scope="module")
def small_digits():
    return load_task("digits", seed=0, limit=300)


def model_for(task, seed: int = 0, space=SPACE) -> nn.Module:
    with seeded(seed):
        return space.build_model(ARCH, task.input_shape, task.num_classes)


def _conv(model: nn.Module) -> nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)


def record_forward(model: nn.Module) -> list[tuple[torch.dtype, bool]]:
    """(dtype of the first conv's output, whether its input was channels-last) for every forward pass of the first
    conv with several input channels (with one, both layouts are the same)."""
    seen: list[tuple[torch.dtype, bool]] = []
    conv = _conv(model)
    conv.register_forward_hook(lambda mod, inp, out: seen.append(
        (out.dtype, inp[0].is_contiguous(memory_format=torch.channels_last) and not inp[0].is_contiguous())))
    return seen


# -- configuration ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "pattern"), [
    ({"precision": "bf61"}, r"train.precision = 'bf61'.*did you mean 'bf16'"),
    ({"precision": "half"}, r"train.precision = 'half': choose from fp32, bf16, fp16"),
    ({"memory_format": "channel_last"}, r"train.memory_format = 'channel_last'.*did you mean 'channels_last'"),
    ({"resident_data_mb": -1}, r"train.resident_data_mb = -1"),
    ({"precison": "bf16"}, r"unknown field 'precison'.*did you mean 'precision'"),
    ({"precision": "fp16", "device": "cpu"}, r"train.precision = 'fp16' needs a CUDA device.*use 'bf16'"),
])
def test_device_settings_are_validated_with_the_field_and_a_hint(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig.from_dict(options)


def test_device_settings_round_trip():
    cfg = TrainConfig(precision="bf16", memory_format="channels_last", resident_data_mb=64)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig().precision == "fp32" and TrainConfig().memory_format == "contiguous"


# -- precision --------------------------------------------------------------------------------------------------------
def test_bf16_trains_on_the_cpu_under_autocast_and_reaches_a_sensible_accuracy(digits):
    model = model_for(digits)
    seen = record_forward(model)
    report = train(model, digits, TrainConfig(epochs=4, precision="bf16", device="cpu"), seed=1)
    assert {dtype for dtype, _ in seen} == {torch.bfloat16}  # training and validation passes ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the weights stay fp32 (mixed precision)
    assert report.val_acc >= 85.0, report.history
    losses = [h["train_loss"] for h in report.history]
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_and_fp32_agree_on_the_first_epoch(small_digits):
    runs = {}
    for precision in ("fp32", "bf16"):
        runs[precision] = train(model_for(small_digits), small_digits,
                                TrainConfig(epochs=1, precision=precision, device="cpu"), seed=1).history[0]
    assert runs["fp32"]["train_loss"] == pytest.approx(runs["bf16"]["train_loss"], rel=0.05)
    assert runs["fp32"]["val_loss"] == pytest.approx(runs["bf16"]["val_loss"], rel=0.05)


def test_autocast_and_scaler_by_precision():
    assert grad_scaler(CPU, "fp32") is None and grad_scaler(CPU, "bf16") is None
    x = torch.randn(2, 3)
    with autocast(CPU, "bf16"):
        assert (x @ x.T).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert (x @ x.T).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where no CUDA is visible")
def test_fp16_is_refused_on_the_cpu_with_the_fix(small_digits):
    cfg = TrainConfig(epochs=1, precision="fp16")  # device auto: the decision is the trial's
    with pytest.raises(ConfigError, match=r"fp16' needs a CUDA device.*this trial runs on cpu; use 'bf16'"):
        train(model_for(small_digits), small_digits, cfg, seed=0)
    evaluator = TrainEvaluator(compiler=SPACE.compiler(), task="digits", task_options={"limit": 300},
                               train=cfg.to_dict(), latency_runs=0)
    result = evaluator.evaluate(Trial(0, ARCH, seed=0))
    assert result.status is Status.FAILED and "needs a CUDA device" in (result.error or "")


# -- memory format ----------------------------------------------------------------------------------------------------
def test_channels_last_trains_channels_last_and_matches_contiguous(small_digits):
    histories = {}
    for fmt in ("contiguous", "channels_last"):
        model = model_for(small_digits)
        seen = record_forward(model)
        histories[fmt] = train(model, small_digits, TrainConfig(epochs=2, memory_format=fmt, device="cpu"),
                               seed=1).history
        assert {cl for _, cl in seen} == {fmt == "channels_last"}
        conv = _conv(model)
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
    for a, b in zip(histories["contiguous"], histories["channels_last"]):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-4), key


def test_same_device_matches_an_unindexed_device_to_any_index():
    # resident tensors placed for "cuda" report "cuda:0": they must not be moved (or pinned) again per batch
    assert same_device(torch.device("cuda:0"), CUDA) and same_device(CUDA, torch.device("cuda:1"))
    assert not same_device(torch.device("cuda:0"), torch.device("cuda:1"))
    assert not same_device(CPU, CUDA) and same_device(CPU, torch.device("cpu"))


def test_to_device_lays_out_only_4d_tensors_channels_last():
    images, seqs = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 3)
    out = to_device(images, CPU, channels_last=True)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert torch.equal(out, images)
    assert to_device(seqs, CPU, channels_last=True) is seqs
    model = apply_memory_format(nn.Conv2d(3, 8, 3), "channels_last")
    assert model.weight.is_contiguous(memory_format=torch.channels_last)


# -- placement --------------------------------------------------------------------------------------------------------
def test_placement_decision_by_size_and_device():
    assert resident_on(CPU, 10 * 2**30, 1.0)  # host memory is the CPU's own: never streamed
    assert resident_on(CUDA, 2**20, 1.0)  # 1 MiB within a 1 MiB limit: copied once
    assert not resident_on(CUDA, 2**20 + 1, 1.0)  # larger: streamed through pinned memory
    assert not resident_on(CUDA, 1, 0.0)  # a limit of 0 streams everything


def test_a_large_task_bound_for_cuda_stays_in_host_memory_uncopied(small_digits):
    data = place_task(small_digits, CUDA, resident_limit_mb=0.0)  # no CUDA call is made: nothing is copied
    assert not data.resident and data.device == CUDA and data.index_device() == CPU
    assert data.x_train.device == CPU and data.nbytes == task_nbytes(small_digits)
    assert np.shares_memory(data.x_train.numpy(), small_digits.x_train)


def test_streamed_batches_train_exactly_as_resident_ones(small_digits):
    cfg = TrainConfig(epochs=2, device="cpu")
    resident = train(model_for(small_digits), small_digits, cfg, seed=3)
    placed = place_task(small_digits, CPU, cfg.resident_data_mb)
    assert placed.resident
    streamed = TaskTensors(*(getattr(placed, f) for f in ("x_train", "y_train", "x_val", "y_val", "x_test",
                                                          "y_test")), device=CPU, resident=False, nbytes=placed.nbytes)
    other = train(model_for(small_digits), small_digits, cfg, seed=3, data=streamed)
    assert other.history == resident.history


def test_device_cache_keeps_a_task_per_device_bounded_and_by_identity(small_digits):
    cache = DeviceDataCache(max_entries=2)
    first = cache.get(small_digits, CPU, 512)
    assert cache.get(small_digits, CPU, 512) is first and cache.placements == 1
    same_data = load_task("digits", seed=0, limit=300)  # equal arrays, another object: placed anew
    assert cache.get(same_data, CPU, 512) is not first and cache.placements == 2
    third = load_task("digits", seed=1, limit=300)
    cache.get(third, CPU, 512)
    assert len(cache) == 2 and cache.placements == 3  # the least recently used (first) was evicted
    cache.get(small_digits, CPU, 512)
    assert cache.placements == 4
    streamed = cache.get(small_digits, CUDA, 0.0)  # streamed placements copy nothing and are not kept
    assert not streamed.resident and len(cache) == 2
    with pytest.raises(ValueError):
        DeviceDataCache(max_entries=0)


def test_the_evaluator_places_its_task_once_per_worker_and_ships_without_it():
    evaluator = TrainEvaluator(compiler=SPACE.compiler(), task="digits", task_options={"limit": 300},
                               train={"epochs": 1, "device": "cpu"}, latency_runs=0)
    results = [evaluator.evaluate(Trial(i, ARCH, seed=i)) for i in range(2)]
    assert all(r.status is Status.COMPLETE for r in results), [r.error for r in results]
    assert evaluator._data.placements == 1
    assert all("peak_gpu_memory_mb" not in r.metrics for r in results)  # measured on CUDA only
    assert "peak_gpu_memory_mb" not in evaluator.metric_names()
    shipped = pickle.loads(pickle.dumps(evaluator))
    assert shipped._task is None and len(shipped._data) == 0 and shipped._data.placements == 0


# -- CUDA -------------------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_fp16_with_grad_scaler_trains_on_cuda(digits):
    model = model_for(digits)
    seen = record_forward(model)
    report = train(model, digits, TrainConfig(epochs=4, precision="fp16", device="cuda"), seed=1)
    assert {dtype for dtype, _ in seen} == {torch.float16}
    assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in model.parameters())
    assert report.val_acc >= 85.0, report.history
    assert isinstance(grad_scaler(CUDA, "fp16"), torch.amp.GradScaler)


@pytest.mark.gpu
def test_bf16_on_cuda_matches_fp32_on_the_first_epoch(small_digits):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU does not support bfloat16")
    runs = [train(model_for(small_digits), small_digits, TrainConfig(epochs=1, precision=p, device="cuda"),
                  seed=1).history[0] for p in ("fp32", "bf16")]
    assert runs[0]["train_loss"] == pytest.approx(runs[1]["train_loss"], rel=0.05)


@pytest.mark.gpu
def test_channels_last_on_cuda_matches_contiguous(small_digits):
    histories = []
    for fmt in ("contiguous", "channels_last"):
        model = model_for(small_digits)
        seen = record_forward(model)
        histories.append(train(model, small_digits, TrainConfig(epochs=2, memory_format=fmt, device="cuda"),
                               seed=1).history)
        assert {cl for _, cl in seen} == {fmt == "channels_last"}
    for a, b in zip(*histories):  # other cuDNN kernels, and their atomics: close, not bitwise equal
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-2)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-2)


@pytest.mark.gpu
def test_a_small_task_is_copied_to_the_gpu_once_per_worker():
    evaluator = TrainEvaluator(compiler=SPACE.compiler(), task="digits", task_options={"limit": 300},
                               train={"epochs": 1, "device": "cuda"}, latency_runs=0)
    results = [evaluator.evaluate(Trial(i, ARCH, seed=i)) for i in range(3)]
    assert all(r.status is Status.COMPLETE for r in results), [r.error for r in results]
    assert evaluator._data.placements == 1 and len(evaluator._data) == 1
    data = evaluator._data.get(evaluator.task, CUDA, 512)
    assert data.resident and data.x_train.device.type == "cuda"
    assert all(r.metrics["peak_gpu_memory_mb"] > 0 for r in results)


@pytest.mark.gpu
def test_a_large_task_is_streamed_through_pinned_memory_with_the_same_result(small_digits):
    before = torch.cuda.host_memory_stats().get("active_requests.allocated", 0)
    resident = train(model_for(small_digits), small_digits, TrainConfig(epochs=2, device="cuda"), seed=3)
    assert torch.cuda.host_memory_stats().get("active_requests.allocated", 0) == before  # resident: nothing pinned
    streamed_cfg = TrainConfig(epochs=2, device="cuda", resident_data_mb=0.0)
    data = place_task(small_digits, CUDA, streamed_cfg.resident_data_mb)
    assert not data.resident and data.x_train.device == CPU
    batch = data.x_train[:8]
    assert batch.pin_memory().is_pinned()  # the path to_device takes for a host batch bound for CUDA
    moved = to_device(batch, CUDA)
    assert moved.device.type == "cuda" and torch.equal(moved.cpu(), batch)
    handed_out = torch.cuda.host_memory_stats().get("active_requests.allocated", 0)  # pinned blocks handed out
    streamed = train(model_for(small_digits), small_digits, streamed_cfg, seed=3, data=data)
    batches = 2 * (-(-len(small_digits.y_train) // streamed_cfg.batch_size))  # two epochs of training batches
    assert torch.cuda.host_memory_stats()["active_requests.allocated"] - handed_out >= 2 * batches  # inputs, labels
    for a, b in zip(resident.history, streamed.history):  # same batches; cuDNN backward is not bitwise deterministic
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-2)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-2)


@pytest.mark.gpu
def test_gpu_memory_is_released_between_trials():
    evaluator = TrainEvaluator(compiler=get_space("nb201", C=16, N=2).compiler(), task="digits",
                               train={"epochs": 1, "device": "cuda"}, latency_runs=0)
    arch = get_space("nb201", C=16, N=2).from_string(CELL)
    gc.collect()
    before = torch.cuda.memory_allocated()
    first = evaluator.evaluate(Trial(0, arch, seed=0))
    after_first = torch.cuda.memory_allocated()
    second = evaluator.evaluate(Trial(1, arch, seed=1))
    after_second = torch.cuda.memory_allocated()
    assert first.ok and second.ok, (first.error, second.error)
    data_bytes = evaluator._data.get(evaluator.task, CUDA, 512).nbytes
    assert after_first - before >= data_bytes  # the task stays resident for the next trial
    assert after_second == after_first  # and nothing else of a trial stays: no growth from trial to trial
    assert second.metrics["peak_gpu_memory_mb"] * 2**20 > after_second  # the model's memory was there, and went
