"""The trainer: trains one model on a :class:`~nas.evaluation.tasks.Task` under a typed :class:`TrainConfig`.

Batches are drawn by index from tensors already on the device (no DataLoader workers), so the loop costs
about what a hand-written PyTorch loop costs. Every random draw (shuffling, augmentation) comes from a
``torch.Generator`` seeded by the caller; model initialisation and dropout use torch's RNG, which
:func:`seeded` forks so that nothing global is disturbed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from nas.core.checks import check_choice, check_int, check_number, is_number
from nas.core.errors import ConfigError, did_you_mean
from nas.evaluation.augment import IMAGE_AUGMENTATIONS, SEQUENCE_AUGMENTATIONS, make_augmenter
from nas.evaluation.device import (
    MEMORY_FORMATS,
    PRECISIONS,
    TaskTensors,
    apply_memory_format,
    autocast,
    check_precision,
    grad_scaler,
    place_task,
    same_device,
    to_device,
)
from nas.evaluation.metrics import Metric, get_metric
from nas.evaluation.scoring import CLASS_WEIGHTS, LOSSES, make_loss, predict, score_split
from nas.evaluation.tasks import Task

__all__ = ["TrainConfig", "TrainReport", "Diverged", "train", "evaluate_split", "resolve_device", "seeded",
           "OPTIMIZERS", "SCHEDULES"]

OPTIMIZERS = ("sgd", "adam", "adamw", "adagrad", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "polynomial", "cosine", "cyclic")


@dataclass(frozen=True)
class TrainConfig:
    """How to train a candidate. Every field is validated on construction (:class:`ConfigError` names the
    field, the bad value and what is allowed).

    Schedules (per step, as a function of the epoch fraction ``e``): ``constant``; ``step`` (lr times
    ``gamma`` every ``step_size`` epochs); ``exponential`` (``gamma ** e``); ``polynomial`` (from lr to
    ``min_lr`` with exponent ``power``); ``cosine`` (to ``min_lr``); ``cyclic`` (triangular between
    ``min_lr`` and lr, period ``cycle_epochs``). ``warmup_epochs`` ramps linearly up first.

    Device use (:mod:`nas.evaluation.device`): ``precision`` ``fp32``, ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA
    only, with a gradient scaler); ``memory_format`` ``contiguous`` or ``channels_last`` (NHWC model and image
    batches; not the task option of that name, which is about the file's array order); a task of at most
    ``resident_data_mb`` MiB is kept on the device, a larger one is streamed batch by batch (pinned on CUDA).

    ``loss``: ``auto`` (cross-entropy for classification, mse for regression), ``cross_entropy``, ``mse`` or
    ``huber``. ``class_weight: balanced`` weighs the cross-entropy of each class by the inverse of its frequency
    in the train split (imbalanced data); null (default) weighs samples equally.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    l1: float = 0.0
    schedule: str = "cosine"
    step_size: int = 10
    gamma: float = 0.1
    power: float = 1.0
    min_lr: float = 0.0
    cycle_epochs: int = 4
    warmup_epochs: int = 0
    dropout: float = 0.0
    drop_path: float = 0.0
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()
    patience: int | None = None
    restore_best: bool = True
    device: str = "auto"
    threads: int | None = None
    eval_batch_size: int = 512
    precision: str = "fp32"
    memory_format: str = "contiguous"
    resident_data_mb: float = 512.0
    loss: str = "auto"
    class_weight: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.augment, (list, tuple)):  # a bare string would become a tuple of letters
            raise ConfigError(f"train.augment = {self.augment!r}: give a list of augmentation names")
        object.__setattr__(self, "augment", tuple(self.augment))
        known = [*IMAGE_AUGMENTATIONS, *SEQUENCE_AUGMENTATIONS]
        for name in self.augment:
            if name not in known:
                raise ConfigError(f"train.augment: {name!r} is not an augmentation; choose from {', '.join(known)}"
                                  + did_you_mean(name, known))
        check_int("train.epochs", self.epochs, minimum=1)
        check_int("train.batch_size", self.batch_size, minimum=1)
        check_int("train.step_size", self.step_size, minimum=1)
        check_int("train.cycle_epochs", self.cycle_epochs, minimum=1)
        check_int("train.warmup_epochs", self.warmup_epochs, minimum=0)
        check_int("train.eval_batch_size", self.eval_batch_size, minimum=1)
        check_choice("train.optimizer", self.optimizer, OPTIMIZERS)
        check_choice("train.schedule", self.schedule, SCHEDULES)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.memory_format", self.memory_format, MEMORY_FORMATS)
        check_number("train.resident_data_mb", self.resident_data_mb, low=0, finite=True)
        check_choice("train.loss", self.loss, LOSSES)
        if self.class_weight is not None:
            check_choice("train.class_weight", self.class_weight, CLASS_WEIGHTS)
        for name in ("lr", "momentum", "weight_decay", "l1", "gamma", "power", "min_lr", "label_smoothing",
                     "dropout", "drop_path"):
            check_number(f"train.{name}", getattr(self, name), low=0, finite=True)
        if self.lr <= 0:
            raise ConfigError(f"train.lr = {self.lr!r}: must be > 0")
        for name in ("dropout", "drop_path", "label_smoothing"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"train.{name} = {getattr(self, name)!r}: must be below 1")
        if self.grad_clip is not None and (not is_number(self.grad_clip) or self.grad_clip <= 0):
            raise ConfigError(f"train.grad_clip = {self.grad_clip!r}: must be > 0, or null to disable clipping")
        if self.patience is not None:
            check_int("train.patience", self.patience, minimum=1)
        if self.threads is not None:
            check_int("train.threads", self.threads, minimum=1)
        for name in ("nesterov", "restore_best"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"train.{name} = {getattr(self, name)!r}: must be true or false")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError("train.nesterov = true needs optimizer 'sgd' with momentum > 0")
        device = resolve_device(self.device, check_only=True)
        if self.device != "auto":
            check_precision(self.precision, device)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from plain data; unknown keys raise with the closest field name."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise ConfigError(f"train: unknown field {key!r}" + did_you_mean(key, names)
                                  + f"; fields: {', '.join(names)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["augment"] = list(self.augment)
        return out

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def lr_factor(self, epoch: float) -> float:
        """Multiplier of ``lr`` at (fractional) ``epoch``."""
        if self.warmup_epochs and epoch < self.warmup_epochs:
            return (epoch + 1e-3) / self.warmup_epochs
        e = epoch - self.warmup_epochs
        span = max(self.epochs - self.warmup_epochs, 1e-9)
        floor = self.min_lr / self.lr
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "step":
            return self.gamma ** math.floor(e / self.step_size)
        if self.schedule == "exponential":
            return self.gamma ** e
        if self.schedule == "polynomial":
            return floor + (1 - floor) * max(0.0, 1 - e / span) ** self.power
        if self.schedule == "cosine":
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(e / span, 1.0)))
        phase = (e / self.cycle_epochs) % 1.0  # cyclic, triangular
        return floor + (1 - floor) * (1 - abs(2 * phase - 1))


def resolve_device(spec: str, check_only: bool = False) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda`` and ``cuda:N`` as given."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ConfigError(f"train.device = {spec!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.device = {spec!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device.type == "cuda" and not check_only and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {spec!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return device


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run a block with torch's RNG seeded to ``seed``, restoring the outer RNG state afterwards."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class Diverged(RuntimeError):  # noqa: N818 (public name)
    """The loss became NaN or infinite."""


@dataclass
class TrainReport:
    """What a training run produced. ``stopped`` is ``None``, ``"early_stopping"`` or ``"pruned"``."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    val_acc: float = float("nan")
    val_loss: float = float("nan")
    #: the validation metric's value at the best epoch (``val_acc`` for accuracy), and the metric's name
    val_value: float = float("nan")
    metric: str = "accuracy"
    epochs_run: int = 0
    seconds: float = 0.0
    stopped: str | None = None


def _make_optimizer(params: Any, cfg: TrainConfig) -> torch.optim.Optimizer:
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)


def _param_groups(params: list[nn.Parameter], lr: float,
                  lr_groups: Sequence[tuple[Sequence[nn.Parameter], float]]) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: ``params`` at ``lr``, those of ``lr_groups`` at their scale of it (the
    group at the full rate first, so that the logged ``lr`` is the head's)."""
    scale = {id(p): s for group, s in lr_groups for p in group}
    groups: dict[float, list[nn.Parameter]] = {}
    for p in params:
        groups.setdefault(scale.get(id(p), 1.0), []).append(p)
    return [{"params": groups[s], "lr": lr * s} for s in sorted(groups, key=lambda s: (s != 1.0, -s))]


def add_dropout(model: nn.Module, p: float) -> None:
    """Insert dropout before the model's ``classifier`` (every compiled network has one)."""
    head = getattr(model, "classifier", None)
    if p > 0 and isinstance(head, nn.Module):
        if isinstance(head, nn.Sequential) and isinstance(head[0], nn.Dropout):
            head[0].p = p  # trained before: set the rate, do not stack a second dropout
        else:
            model.classifier = nn.Sequential(nn.Dropout(p), head)


@runtime_checkable
class _DropPathHolder(Protocol):
    """A module with a drop-path probability (the cells of a compiled network)."""

    drop_prob: float


def _set_drop_path(model: nn.Module, prob: float) -> None:
    for module in model.modules():
        if isinstance(module, _DropPathHolder):
            module.drop_prob = prob


@torch.no_grad()
def evaluate_split(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512, *,
                   device: torch.device | None = None, precision: str = "fp32", channels_last: bool = False
                   ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of ``model`` on ``(x, y)``, in eval mode, under the autocast of
    ``precision``. ``x`` and ``y`` are on ``device`` (default: ``x``'s) or in host memory, then moved batch by
    batch; ``channels_last`` lays image batches out NHWC."""
    out = predict(model, x, batch_size, device=device, precision=precision, channels_last=channels_last)
    y = y.to(out.device)
    return nn.functional.cross_entropy(out, y).item(), 100.0 * (out.argmax(1) == y).sum().item() / len(y)


def train(model: nn.Module, task: Task, cfg: TrainConfig, *, seed: int,
          on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
          data: TaskTensors | None = None, metric: Metric | None = None,
          lr_groups: Sequence[tuple[Sequence[nn.Parameter], float]] = (),
          keep_eval: Sequence[nn.Module] = ()) -> TrainReport:
    """Train ``model`` on ``task``'s train split, validating after every epoch.

    ``metric`` (default: accuracy, or rmse for a regression task) is the validation score that picks the best
    epoch. ``on_epoch(epoch, metrics)`` sees ``train_loss``, ``train_acc`` and ``val_acc`` (classification),
    ``val_loss``, ``val_<metric>``, ``score`` (the metric oriented to be maximised) and ``lr``; when it returns
    ``False`` training stops and the report says ``pruned``. The best epoch has the highest score (ties: the lower
    validation loss); with ``patience`` set, training stops after that many epochs without a better one. With
    ``restore_best`` the weights of the best validation epoch are restored at the end. Raises :class:`Diverged` on
    a NaN or infinite loss. The test split is not touched.
    ``data`` is the task's tensors already placed for the device (an evaluator's
    :class:`~nas.evaluation.device.DeviceDataCache` hands them out, so a worker moves a small task to its GPU once);
    without it they are placed here (:func:`~nas.evaluation.device.place_task`). Raises :class:`ConfigError` for
    ``precision: fp16`` on a device that is not CUDA.
    ``lr_groups`` are ``(parameters, scale)`` pairs whose learning rate is ``scale`` times ``lr`` (a fine-tuned body
    learning slower than its head); parameters with ``requires_grad`` off are not trained. ``keep_eval`` modules
    stay in eval mode throughout (frozen layers: their batch-norm statistics are not updated).
    """
    metric = metric or get_metric("rmse" if task.regression else "accuracy")
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(seed)
    if data is None or not same_device(data.device, device):
        data = place_task(task, device, cfg.resident_data_mb)
    x_tr, y_tr, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    channels_last = cfg.memory_format == "channels_last"
    add_dropout(model, cfg.dropout)
    apply_memory_format(model.to(device), cfg.memory_format)
    scaler = grad_scaler(device, cfg.precision)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _make_optimizer(_param_groups(params, cfg.lr, lr_groups), cfg)
    steps_per_epoch = max(1, math.ceil(len(y_tr) / cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cfg.lr_factor(step / steps_per_epoch))
    loss_fn = make_loss(task, loss=cfg.loss, class_weight=cfg.class_weight, label_smoothing=cfg.label_smoothing,
                        device=device)
    augment = make_augmenter(cfg.augment, task.kind) if cfg.augment else None
    report = TrainReport()
    best_state: dict[str, torch.Tensor] | None = None
    best_key = (-math.inf, -math.inf)
    for epoch in range(cfg.epochs):
        model.train()
        for module in keep_eval:
            module.eval()
        _set_drop_path(model, cfg.drop_path * epoch / cfg.epochs)
        lr = optimizer.param_groups[0]["lr"]
        perm = torch.randperm(len(y_tr), generator=gen).to(data.index_device())
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for i in range(0, len(y_tr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb, yb = data.batch(x_tr, y_tr, idx)
            if augment is not None:
                xb = augment(xb, gen)
            if channels_last:
                xb = to_device(xb, device, channels_last=True)
            with autocast(device, cfg.precision):
                out = model(xb)
                loss = loss_fn(out, yb)
            if cfg.l1:
                loss = loss + cfg.l1 * sum(p.abs().sum() for p in params)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
            else:  # fp16: scaled loss, gradients unscaled before clipping, steps with inf/NaN gradients skipped
                scaler.scale(loss).backward()
                if cfg.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            scheduler.step()
            loss_sum += loss.detach().float() * len(yb)
            if not task.regression:
                correct += (out.detach().argmax(1) == yb).sum()
        train_loss = loss_sum.item() / len(y_tr)
        if not math.isfinite(train_loss):
            raise Diverged(f"diverged at epoch {epoch + 1}: training loss is {train_loss}")
        val = score_split(model, x_val, y_val, task, metric, cfg.eval_batch_size, cfg.loss, device=device,
                          precision=cfg.precision, channels_last=channels_last)
        val_loss, val_acc = val.loss, val.acc
        if not math.isfinite(val_loss):
            raise Diverged(f"diverged at epoch {epoch + 1}: validation loss is {val_loss}")
        metrics = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
        if not task.regression:
            metrics.update(train_acc=100.0 * correct.item() / len(y_tr), val_acc=val_acc)
        score = metric.score(val.value) if math.isfinite(val.value) else -math.inf
        if metric.name != "accuracy":
            metrics[f"val_{metric.name}"] = val.value
        metrics["score"] = score
        report.history.append(metrics)
        report.epochs_run = epoch + 1
        key = (score, -val_loss)
        if key > best_key:
            best_key = key
            report.best_epoch, report.val_acc, report.val_loss = epoch + 1, val_acc, val_loss
            report.val_value, report.metric = val.value, metric.name
            if cfg.restore_best and epoch + 1 < cfg.epochs:
                best_state = copy.deepcopy(model.state_dict())
            elif cfg.restore_best:
                best_state = None  # the final weights are the best ones
        if on_epoch is not None and on_epoch(epoch + 1, metrics) is False:
            report.stopped = "pruned"
            break
        if cfg.patience is not None and epoch + 1 - report.best_epoch >= cfg.patience:
            report.stopped = "early_stopping"
            break
    if cfg.restore_best and best_state is not None and report.best_epoch != report.epochs_run:
        model.load_state_dict(best_state)
    elif not cfg.restore_best:
        last = report.history[-1]
        report.val_acc, report.val_loss, report.best_epoch = (last.get("val_acc", math.nan), last["val_loss"],
                                                              report.epochs_run)
        report.val_value = last.get(f"val_{metric.name}", report.val_acc)
    report.seconds = time.perf_counter() - start
    return report
