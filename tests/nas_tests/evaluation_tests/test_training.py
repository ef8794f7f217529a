"""The trainer (nas.evaluation.training), augmentations (nas.evaluation.augment) and failure handling of the ``train``
evaluator."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from nas import references
from nas.core.errors import ConfigError
from nas.evaluation.augment import IMAGE_AUGMENTATIONS, SEQUENCE_AUGMENTATIONS, make_augmenter
from nas.evaluation.evaluators import get_evaluator
from nas.evaluation.tasks import load_task
from nas.evaluation.training import (
    OPTIMIZERS,
    SCHEDULES,
    Diverged,
    TrainConfig,
    evaluate_split,
    resolve_device,
    seeded,
    train,
)
from nas.graph.compiler import build_model
from nas.trials.trial import Status, Trial
from search_spaces import get_space

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SPACE = get_space("nb201", C=4, N=1)
ARCH = SPACE.from_string(CELL)


@pytest.fixture(scope="module")
def digits():
    return load_task("digits", seed=0)


@pytest.fixture(scope="module")
def small_digits():
    return load_task("digits", seed=0, limit=300)


def tiny_model(task, seed: int = 0) -> nn.Module:
    with seeded(seed):
        return SPACE.build_model(ARCH, task.input_shape, task.num_classes)


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"device": "cpu", "epochs": 1, **kw})


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


class ReferenceCompiler:
    """A compiler of reference architectures for the train evaluator (they belong to no search space)."""

    name = "reference"
    input_kind = "image"

    def __call__(self, arch, input_shape, num_classes):
        return build_model(arch, input_shape, num_classes)


class BrokenCompiler:
    """A compiler whose models (or their construction) raise."""

    name = "broken"
    input_kind = "image"

    def __init__(self, where: str, message: str = "boom: the op exploded\nsecond line of detail") -> None:
        self.where = where
        self.message = message

    def __call__(self, arch, input_shape, num_classes):
        if self.where == "build":
            raise RuntimeError(self.message)
        model = SPACE.build_model(ARCH, input_shape, num_classes)
        message = self.message

        def forward(*args, **kwargs):
            raise RuntimeError(message)

        model.forward = forward
        return model


# -- optimizers and schedules ----------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_steps_and_changes_every_weight(small_digits, optimizer):
    model = tiny_model(small_digits)
    before = _params(model)
    config = cfg(optimizer=optimizer, lr=0.01, weight_decay=0.0, restore_best=False, schedule="constant")
    report = train(model, small_digits, config, seed=0)
    assert report.epochs_run == 1 and math.isfinite(report.history[0]["train_loss"])
    after = _params(model)
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"{optimizer} left {unchanged} untouched"


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_steps_with_the_lr_of_lr_factor(small_digits, schedule):
    config = cfg(epochs=3, schedule=schedule, lr=0.05, min_lr=0.001, step_size=1, gamma=0.5, cycle_epochs=2,
                 restore_best=False)
    model = tiny_model(small_digits)
    before = _params(model)
    report = train(model, small_digits, config, seed=0)
    lrs = [h["lr"] for h in report.history]
    assert lrs == pytest.approx([config.lr * config.lr_factor(e) for e in range(3)])
    if schedule == "constant":
        assert lrs == pytest.approx([0.05] * 3)
    else:
        assert len({round(v, 12) for v in lrs}) > 1, f"{schedule} never changed the lr"
    after = _params(model)
    assert all(not torch.equal(before[k], after[k]) for k in before)


def test_cosine_ends_at_min_lr():
    c = TrainConfig(epochs=10, lr=0.1, min_lr=0.01, schedule="cosine")
    assert c.lr_factor(0) == pytest.approx(1.0)
    assert c.lr * c.lr_factor(5) == pytest.approx(0.01 + 0.09 / 2)
    assert c.lr * c.lr_factor(10) == pytest.approx(0.01)
    values = [c.lr_factor(e / 4) for e in range(41)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_step_schedule_halves_at_step_size():
    c = TrainConfig(epochs=20, schedule="step", step_size=3, gamma=0.5)
    assert c.lr_factor(0) == c.lr_factor(2.99) == 1.0
    assert c.lr_factor(3) == 0.5
    assert c.lr_factor(5.5) == 0.5
    assert c.lr_factor(6) == 0.25
    assert c.lr_factor(9) == 0.125


def test_exponential_and_polynomial_schedules():
    e = TrainConfig(epochs=10, schedule="exponential", gamma=0.8)
    for epoch in (0, 1, 2.5, 7):
        assert e.lr_factor(epoch) == pytest.approx(0.8**epoch)
    p = TrainConfig(epochs=10, lr=0.1, min_lr=0.0, schedule="polynomial", power=2.0)
    assert p.lr_factor(0) == pytest.approx(1.0)
    assert p.lr_factor(5) == pytest.approx(0.25)
    assert p.lr_factor(10) == pytest.approx(0.0)


def test_warmup_ramps_linearly_then_hands_over():
    c = TrainConfig(epochs=10, warmup_epochs=2, schedule="cosine", lr=0.1, min_lr=0.0)
    ramp = [c.lr_factor(e / 4) for e in range(8)]  # epochs 0 .. 1.75
    assert ramp[0] < 0.01
    assert all(b > a for a, b in itertools.pairwise(ramp))
    assert c.lr_factor(1.0) == pytest.approx(0.5, abs=1e-3)
    assert c.lr_factor(2.0) == pytest.approx(1.0)  # the cosine starts after the warmup
    assert c.lr_factor(10.0) == pytest.approx(0.0)


def test_cyclic_returns_to_the_floor_every_cycle():
    c = TrainConfig(epochs=12, schedule="cyclic", cycle_epochs=4, lr=0.1, min_lr=0.01)
    for k in range(4):
        assert c.lr * c.lr_factor(4 * k) == pytest.approx(0.01)
        assert c.lr_factor(4 * k + 2) == pytest.approx(1.0)
    values = [c.lr * c.lr_factor(e / 8) for e in range(12 * 8)]
    assert min(values) == pytest.approx(0.01) and max(values) == pytest.approx(0.1)
    assert all(0.01 - 1e-12 <= v <= 0.1 + 1e-12 for v in values)


# -- TrainConfig validation ------------------------------------------------------------------------------
def test_unknown_field_names_the_field_and_the_close_match():
    with pytest.raises(ConfigError, match=r"unknown field 'lrr' \(did you mean 'lr'\?\)"):
        TrainConfig.from_dict({"lrr": 0.1})
    with pytest.raises(ConfigError, match="unknown field 'learning_rate'"):
        TrainConfig().replace(learning_rate=0.1)


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"lr": -0.1}, r"train\.lr = -0\.1"),
        ({"lr": 0}, r"train\.lr = 0: must be > 0"),
        ({"lr": float("nan")}, r"train\.lr"),
        ({"optimizer": "adamm"}, r"train\.optimizer = 'adamm'.*did you mean 'adam'"),
        ({"optimizer": "adam", "nesterov": True}, r"train\.nesterov"),
        ({"nesterov": True, "momentum": 0.0}, r"train\.nesterov"),
        ({"schedule": "cosin"}, r"train\.schedule.*did you mean 'cosine'"),
        ({"epochs": 0}, r"train\.epochs"),
        ({"batch_size": 1.5}, r"train\.batch_size"),
        ({"dropout": 1.0}, r"train\.dropout"),
        ({"label_smoothing": -0.1}, r"train\.label_smoothing"),
        ({"grad_clip": 0}, r"train\.grad_clip"),
        ({"patience": 0}, r"train\.patience"),
        ({"restore_best": "yes"}, r"train\.restore_best"),
        ({"device": "tpu"}, r"train\.device"),
        ({"augment": "crop"}, r"train\.augment"),
        ({"augment": ["cropp"]}, r"train\.augment.*did you mean 'crop'"),
    ],
)
def test_bad_config_values_name_the_field(options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TrainConfig(**options)


def test_config_round_trips_through_dicts():
    c = TrainConfig(optimizer="adamw", lr=0.003, augment=["crop", "flip"], grad_clip=None, patience=3)
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert c.to_dict()["augment"] == ["crop", "flip"]
    assert c.replace(lr=0.1).lr == 0.1 and c.replace(lr=0.1).optimizer == "adamw"


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match=r"train\.device"):
        resolve_device("gpu0")


def test_seeded_restores_the_outer_rng():
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    with seeded(7):
        inner = torch.rand(3)
    assert torch.equal(torch.rand(3), expected)
    with seeded(7):
        assert torch.equal(torch.rand(3), inner)


# -- augmentations ---------------------------------------------------------------------------------------
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(IMAGE_AUGMENTATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_image_augmentations_keep_shape_and_dtype_change_data_and_are_seeded(name, dtype):
    fn = IMAGE_AUGMENTATIONS[name]
    x = torch.randn(32, 3, 16, 16, dtype=dtype)
    original = x.clone()
    out = fn(x, _gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(x, original)  # the input is not modified in place
    assert not torch.equal(out, x)
    assert torch.equal(fn(x, _gen(0)), out)
    assert not torch.equal(fn(x, _gen(1)), out)


@pytest.mark.parametrize("name", list(SEQUENCE_AUGMENTATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sequence_augmentations_keep_shape_and_dtype_change_data_and_are_seeded(name, dtype):
    fn = SEQUENCE_AUGMENTATIONS[name]
    x = torch.randn(32, 50, 3, dtype=dtype)
    original = x.clone()
    out = fn(x, _gen(0))
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.equal(x, original)
    assert not torch.equal(out, x)
    assert torch.equal(fn(x, _gen(0)), out)
    assert not torch.equal(fn(x, _gen(1)), out)


def test_crop_is_an_integer_shift_with_zero_fill():
    x = torch.randn(16, 2, 16, 16)
    out = IMAGE_AUGMENTATIONS["crop"](x, _gen(3))
    pad = 16 // 8
    for xi, oi in zip(x, out):
        padded = nn.functional.pad(xi, (pad, pad, pad, pad))
        shifts = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                  if torch.equal(padded[:, dy:dy + 16, dx:dx + 16], oi)]
        assert shifts, "crop output is not a shifted copy of its input"


def test_flip_flips_whole_samples_or_leaves_them():
    x = torch.randn(32, 1, 6, 6)
    out = IMAGE_AUGMENTATIONS["flip"](x, _gen(0))
    flipped = [torch.equal(o, xi.flip(2)) for xi, o in zip(x, out)]
    kept = [torch.equal(o, xi) for xi, o in zip(x, out)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert any(flipped) and any(kept)


def test_cutout_only_zeroes_pixels():
    x = torch.randn(16, 3, 16, 16)
    out = IMAGE_AUGMENTATIONS["cutout"](x, _gen(0))
    same = out == x
    assert bool(((out == 0) | same).all())
    assert (~same).any(dim=(1, 2, 3)).all()  # every sample lost a patch


def test_time_shift_is_a_circular_roll():
    x = torch.randn(16, 40, 2)
    out = SEQUENCE_AUGMENTATIONS["time_shift"](x, _gen(0))
    for xi, oi in zip(x, out):
        assert any(torch.equal(torch.roll(xi, k, dims=0), oi) for k in range(-4, 5))


def test_scaling_multiplies_each_channel_and_jitter_adds_small_noise():
    x = torch.randn(64, 30, 3, dtype=torch.float64) + 3.0
    scaled = SEQUENCE_AUGMENTATIONS["scaling"](x, _gen(0))
    ratio = scaled / x
    torch.testing.assert_close(ratio, ratio[:, :1, :].expand_as(ratio))
    assert 0.05 < float(ratio[:, 0, :].std()) < 0.2
    noise = SEQUENCE_AUGMENTATIONS["jitter"](x, _gen(0)) - x
    assert 0.02 < float(noise.std()) < 0.04


def test_make_augmenter_composes_and_rejects_the_wrong_kind():
    x = torch.randn(8, 1, 8, 8)
    both = make_augmenter(["flip", "cutout"], "image")
    g = _gen(5)
    manual = IMAGE_AUGMENTATIONS["cutout"](IMAGE_AUGMENTATIONS["flip"](x, g), g)
    assert torch.equal(both(x, _gen(5)), manual)
    with pytest.raises(ConfigError, match="not a sequence augmentation"):
        make_augmenter(["crop"], "sequence")
    with pytest.raises(ConfigError, match="did you mean 'jitter'"):
        make_augmenter(["jiter"], "sequence")


# -- training runs ---------------------------------------------------------------------------------------
def _seeded_run(task, config: TrainConfig, seed: int) -> list[dict[str, float]]:
    # as the train evaluator does it: dropout draws from torch's RNG, which `seeded` fixes for the block
    with seeded(seed):
        return train(tiny_model(task, seed=seed), task, config, seed=seed).history


def test_same_seed_gives_identical_histories(small_digits):
    config = cfg(epochs=2, augment=["crop", "flip"], dropout=0.1, drop_path=0.2)
    first = _seeded_run(small_digits, config, 3)
    assert _seeded_run(small_digits, config, 3) == first
    assert _seeded_run(small_digits, config, 4) != first


def test_without_dropout_the_seed_argument_alone_fixes_the_run(small_digits):
    config = cfg(epochs=2, augment=["crop", "flip"])
    runs = [train(tiny_model(small_digits, seed=3), small_digits, config, seed=3).history for _ in range(2)]
    assert runs[0] == runs[1]


def test_train_evaluator_is_deterministic_for_a_trial_seed():
    ev = get_evaluator("train", compiler=SPACE.compiler(), task="digits", task_options={"limit": 300}, latency_runs=0,
                       train={"epochs": 2, "device": "cpu", "dropout": 0.2, "augment": ["crop"]})
    a, b = (ev.evaluate(Trial(0, ARCH, seed=9)) for _ in range(2))
    assert a.status is Status.COMPLETE
    assert a.history == b.history and a.score == b.score
    assert a.metrics["test_acc"] == b.metrics["test_acc"]


def test_on_epoch_false_prunes(small_digits):
    seen = []

    def on_epoch(epoch, metrics):
        seen.append((epoch, set(metrics)))
        return epoch < 2

    report = train(tiny_model(small_digits), small_digits, cfg(epochs=5), seed=0, on_epoch=on_epoch)
    assert report.stopped == "pruned"
    assert report.epochs_run == 2 and len(report.history) == 2
    assert [e for e, _ in seen] == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= seen[0][1]


def test_on_epoch_returning_none_does_not_prune(small_digits):
    report = train(tiny_model(small_digits), small_digits, cfg(epochs=2), seed=0, on_epoch=lambda e, m: None)
    assert report.stopped is None and report.epochs_run == 2


class ConstantModel(nn.Module):
    """Predicts the same logits whatever it is fed: validation accuracy can never improve."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.classes = classes

    def forward(self, x):
        return torch.zeros(x.shape[0], self.classes) + 0.0 * self.w


def test_patience_stops_early(small_digits):
    report = train(ConstantModel(10), small_digits, cfg(epochs=10, patience=2), seed=0)
    assert report.stopped == "early_stopping"
    assert report.best_epoch == 1
    assert report.epochs_run == 3  # epochs 2 and 3 without improvement
    assert report.val_loss == pytest.approx(math.log(10))


def test_restore_best_leaves_the_best_weights(small_digits):
    model = tiny_model(small_digits)
    report = train(model, small_digits, cfg(epochs=4, lr=0.2, restore_best=True), seed=0)
    loss, acc = evaluate_split(model, torch.as_tensor(small_digits.x_val), torch.as_tensor(small_digits.y_val))
    assert acc == pytest.approx(report.val_acc)
    assert loss == pytest.approx(report.val_loss, rel=1e-5)
    assert report.val_acc == max(h["val_acc"] for h in report.history)


def test_without_restore_best_the_last_epoch_is_reported(small_digits):
    report = train(tiny_model(small_digits), small_digits, cfg(epochs=3, lr=0.2, restore_best=False), seed=0)
    assert report.best_epoch == 3
    assert report.val_acc == report.history[-1]["val_acc"]


@pytest.mark.parametrize(
    "options",
    [
        {"dropout": 0.3},
        {"drop_path": 0.2},
        {"l1": 1e-4},
        {"label_smoothing": 0.1},
        {"grad_clip": 0.5},
        {"grad_clip": None},
        {"optimizer": "sgd", "nesterov": True},
        {"warmup_epochs": 1, "schedule": "polynomial"},
        {"augment": ["crop", "flip", "rotate", "cutout"]},
    ],
)
def test_regularisation_options_run(small_digits, options):
    model = tiny_model(small_digits)
    report = train(model, small_digits, cfg(epochs=2, **options), seed=0)
    assert report.epochs_run == 2
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in report.history)
    if "dropout" in options:
        assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in model.classifier.modules())
    if "drop_path" in options:
        probs = [m.drop_prob for m in model.modules() if hasattr(m, "drop_prob")]
        assert probs and probs == pytest.approx([0.2 * 1 / 2] * len(probs))  # ramped linearly: last epoch's value


def test_l1_shrinks_the_weights(small_digits):
    def total_abs(l1: float) -> float:
        model = tiny_model(small_digits)
        train(model, small_digits, cfg(epochs=2, l1=l1, weight_decay=0.0, restore_best=False), seed=0)
        return sum(float(p.detach().abs().sum()) for p in model.parameters())

    assert total_abs(1e-2) < total_abs(0.0)


def test_sequence_training_with_augmentations():
    task = load_task("italy_power", seed=0, limit=200)
    space = get_space("transformer", d_model=16, num_cells=1)
    with seeded(0):
        model = space.build_model(space.sample(np.random.default_rng(0)), task.input_shape, task.num_classes)
    report = train(model, task, cfg(epochs=2, optimizer="adam", lr=1e-3,
                                    augment=["jitter", "scaling", "time_shift", "window_warp"]), seed=0)
    assert report.epochs_run == 2 and math.isfinite(report.val_loss)


# -- divergence and failures -----------------------------------------------------------------------------
DIVERGING = {"lr": 1e6, "grad_clip": None, "optimizer": "sgd", "epochs": 2, "device": "cpu"}


def test_nan_loss_raises_diverged(small_digits):
    with pytest.raises(Diverged, match="diverged at epoch 1"):
        train(tiny_model(small_digits), small_digits, TrainConfig(**DIVERGING), seed=0)


def test_train_evaluator_turns_divergence_into_a_failed_result():
    ev = get_evaluator("train", compiler=SPACE.compiler(), task="digits", task_options={"limit": 300}, train=DIVERGING,
                       latency_runs=0)
    result = ev.evaluate(Trial(0, ARCH, seed=0))
    assert result.status is Status.FAILED
    assert result.error.startswith("diverged at epoch")
    assert result.score is None and not result.ok


@pytest.mark.parametrize("where", ["build", "forward"])
def test_train_evaluator_turns_exceptions_into_failed_results(where):
    ev = get_evaluator("train", compiler=BrokenCompiler(where), task="digits", task_options={"limit": 300},
                       train={"epochs": 1, "device": "cpu"}, latency_runs=0)
    result = ev.evaluate(Trial(0, ARCH))
    assert result.status is Status.FAILED
    assert result.error == "RuntimeError: boom: the op exploded"  # the first line only
    assert "Traceback" in result.traceback and "second line of detail" in result.traceback
    assert "RuntimeError" in result.traceback
    assert result.to_dict()["status"] == "FAILED"


def test_train_evaluator_reports_out_of_memory():
    compiler = BrokenCompiler("forward", "CUDA out of memory. Tried to allocate 20.00 GiB\nmore")
    ev = get_evaluator("train", compiler=compiler, task="digits", task_options={"limit": 300},
                       train={"epochs": 1, "device": "cpu"}, latency_runs=0)
    result = ev.evaluate(Trial(0, ARCH))
    assert result.status is Status.FAILED
    assert result.error.startswith("out of memory: CUDA out of memory")


def test_train_evaluator_reports_pruning():
    ev = get_evaluator("train", compiler=SPACE.compiler(), task="digits", task_options={"limit": 300},
                       train={"epochs": 4, "device": "cpu"}, latency_runs=0)
    result = ev.evaluate(Trial(0, ARCH), on_epoch=lambda epoch, metrics: epoch < 1)
    assert result.status is Status.PRUNED
    assert len(result.history) == 1 and result.metrics["epochs"] == 1.0
    assert "pruned" in result.error


# -- the real thing: LeNet-5 learns digits ---------------------------------------------------------------
def test_lenet5_bn_reaches_95_percent_on_digits(digits):
    ev = get_evaluator("train", compiler=ReferenceCompiler(), task="digits", data_seed=0,
                       train={"epochs": 6, "batch_size": 32, "lr": 0.05, "device": "cpu"}, latency_runs=2)
    result = ev.evaluate(Trial(0, references.get("lenet5_bn"), seed=0))
    assert result.status is Status.COMPLETE, result.error
    assert result.score >= 95.0, [h["val_acc"] for h in result.history]
    assert result.metrics["test_acc"] >= 90.0
    assert result.metrics["train_seconds"] < 30.0
    # the first epochs are far worse: the network did learn
    assert result.history[0]["val_acc"] < result.score
