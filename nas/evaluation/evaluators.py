"""Evaluators: ``evaluate(trial) -> Result``, one interface for trained, tabular and zero-cost evaluations.

* ``train``  -- compiles the trial's architecture (with the compiler it is handed), trains it on a task
  (:mod:`nas.evaluation.training`), scores it on the validation split with its metric (accuracy by default, see
  :mod:`nas.evaluation.metrics`); the test split is measured and reported, never used as the score.
* ``nb201``  -- NAS-Bench-201 table lookup (shipped in the package), microseconds per query.
* ``proxy``  -- a zero-cost proxy of the untrained network (:mod:`nas.evaluation.proxies`).

An evaluator never raises for a bad candidate: divergence, out-of-memory and exceptions come back as
``FAILED`` results with a one-line reason (and the traceback). An evaluator never knows which strategy asked, nor
the search space: those that compile models are handed a :class:`ModelCompiler` (a space's ``compiler()``), and
trials reach them already checked for membership (by the strategy that proposed them).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import nn

from nas.core.errors import ConfigError, InvalidArchitectureError, did_you_mean
from nas.core.registry import Registry, register_named, subclass_check
from nas.evaluation.benchmarks import HW_METRICS, load_nb201, load_nb201_hw
from nas.evaluation.device import DeviceDataCache, peak_memory_mb
from nas.evaluation.inheritance import InheritSettings, serialize_weights, start_from_parent
from nas.evaluation.measure import count_flops, count_params, cpu_latency_ms
from nas.evaluation.metrics import Metric, check_metric, metric_for, metric_keys
from nas.evaluation.proxies import PROXIES
from nas.evaluation.scoring import score_split
from nas.evaluation.tasks import is_task, list_tasks, load_task, task_problem
from nas.evaluation.training import Diverged, TrainConfig, resolve_device, seeded, train
from nas.graph.architecture import Architecture
from nas.graph.nb201 import nb201_string
from nas.transfer import FreezePlan, TransferSpec, apply_mode, copy_matching, read_weights
from nas.trials.protocols import Pruner
from nas.trials.trial import Result, Status, Trial

if TYPE_CHECKING:  # annotations only; imported where used
    from nas.evaluation.tasks import Task
    from nas.evaluation.training import TrainConfig

__all__ = ["Evaluator", "EpochPruning", "ModelCompiler", "TrainingEvaluator", "TrainEvaluator", "NB201Evaluator",
           "ProxyEvaluator", "get_evaluator", "list_evaluators", "register_evaluator", "EVALUATORS", "HPARAMS_KEY",
           "check_task_name", "failures_as_results"]

#: the array fields of a Task
_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
#: training inputs that calibrate the batch norms a network morphism sets to the identity (``inherit.morph``)
_CALIBRATION = 256
#: Macro key under which an architecture carries the training hyperparameters chosen for it.
HPARAMS_KEY = "hparams"
EpochCallback = Callable[[int, dict[str, float]], "bool | None"]


class ModelCompiler(Protocol):
    """Compiles a candidate: ``compiler(arch, input_shape, num_classes)`` -> a fresh, randomly initialised module
    (``input_shape`` without the batch dimension). ``name`` names the space the candidates come from and
    ``input_kind`` the data its models take (``"image"``, ``"sequence"`` or ``"tabular"``; a task of another kind
    is refused). For a regression task ``num_classes`` is the number of targets (the model's output size).
    It must pickle: evaluators holding it are shipped to Ray workers.
    :class:`search_spaces.base.SpaceCompiler` (``space.compiler()``) is the one the runtime hands out."""

    @property
    def name(self) -> str: ...

    @property
    def input_kind(self) -> str: ...

    def __call__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module: ...


@runtime_checkable
class TrainingEvaluator(Protocol):
    """An evaluator that trains the candidates on a task: the task (loaded on first use), the training config
    of an architecture and the compiler of the candidates, which is what training a stored trial again (export,
    the report's Grad-CAM) needs. :class:`TrainEvaluator` is one."""

    @property
    def task(self) -> Task: ...

    @property
    def compiler(self) -> ModelCompiler: ...

    def config_for(self, arch: Architecture) -> TrainConfig: ...


class Evaluator(ABC):
    """Turns a :class:`Trial` into a :class:`Result`."""

    name: ClassVar[str]
    #: the names of the metrics this evaluator's results carry (``score`` aside), which objectives and constraints
    #: may name; None: not declared, and not checked. Override :meth:`metric_names` when options decide them.
    metrics: ClassVar[frozenset[str] | None] = None

    def metric_names(self) -> frozenset[str] | None:
        """The metrics a result of this evaluator (as configured) may carry besides ``score``; None: undeclared.
        The preflight refuses an objective or constraint on any other metric before the first trial."""
        return self.metrics

    @abstractmethod
    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        """Evaluate ``trial``; ``on_epoch(epoch, metrics)`` returning False stops (prunes) a training run."""


def _failure(err: BaseException) -> Result:
    if isinstance(err, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in str(err).lower():
        reason = f"out of memory: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    else:
        first = str(err).splitlines()[0] if str(err) else ""
        reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return Result.failed(reason[:500], traceback="".join(traceback.format_exception(err)))


def failures_as_results(attempt: Callable[[], Result]) -> Result:
    """``attempt()``, with what it raises turned into a ``FAILED`` result: :class:`Diverged` with its message, any
    other exception with its type, first line and traceback (out of memory said as such). Afterwards the
    attempt's objects (model, optimiser, gradients: locals of ``attempt``, gone once it returns) are collected and
    the CUDA cache is emptied, so workers sharing a GPU get the memory back. The one tail of every evaluator that
    trains: a bad candidate is data, not a crash."""
    try:
        return attempt()
    except Diverged as err:
        return Result.failed(str(err))
    except Exception as err:  # a bad candidate is data, not a crash
        return _failure(err)
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def check_task_name(task: Any, task_options: Mapping[str, Any] | None = None) -> str:
    """The problem (``classification`` or ``regression``) of ``task``, a known task name or
    ``package.module:function``; :class:`ConfigError` naming ``evaluator.task`` (with a close match) otherwise.
    Shared by the evaluators that load a task."""
    if not isinstance(task, str) or not is_task(task):
        raise ConfigError(f"evaluator.task = {task!r} is unknown; known: {', '.join(list_tasks())}"
                          + did_you_mean(str(task), list_tasks())
                          + ", or your own function as 'package.module:function'")
    return task_problem(task, task_options)


class EpochPruning:
    """What an evaluator that trains epoch by epoch shares to be early-stopped (a
    :class:`~nas.trials.protocols.PrunableEvaluator`): the ``pruner`` the experiment sets when the config asks for
    early stopping (None: none; a :class:`~nas.evaluation.pruning.RemotePruner` actor on Ray workers), and
    :meth:`_callback`, which tells it each epoch's ``score`` (the row's validation score oriented to be maximised,
    the value the trial's final score is) and stops the trial when it or ``on_epoch`` says so."""

    #: optional early-stopping pruner with ``report(trial_id, epoch, score) -> bool``, told each epoch's score
    #: (see nas.evaluation.pruning); set per instance by the experiment
    pruner: Pruner | None = None

    def _callback(self, trial: Trial, on_epoch: EpochCallback | None) -> EpochCallback | None:
        """``on_epoch`` and the pruner together: training stops when either says so. Each epoch's row must carry
        ``score``."""
        if self.pruner is None:
            return on_epoch
        pruner = self.pruner

        def callback(epoch: int, metrics: dict[str, float]) -> bool:
            go_on = on_epoch is None or on_epoch(epoch, metrics) is not False
            return go_on and pruner.report(trial.id, epoch, metrics["score"])

        return callback


#: the training-free scores the ``train`` evaluator's ``zero_cost`` option offers
ZERO_COST_SCORES = ("params",)


class TrainEvaluator(EpochPruning, Evaluator):
    """Train-and-validate on a task.

    Args:
        compiler: compiles the trials' architectures (:class:`ModelCompiler`); its ``input_kind`` must match the
            task's data kind.
        task: task name (:func:`nas.evaluation.tasks.list_tasks`) or ``package.module:function``; ``task_options``
            go to :func:`nas.evaluation.tasks.load_task`.
        metric: the validation metric that scores a trial (:mod:`nas.evaluation.metrics`; default accuracy, or
            rmse for a regression task). A metric to minimise is negated into the score (``score = -rmse``);
            results carry ``val_<metric>`` and ``test_<metric>`` as measured.
        train: the :class:`~nas.evaluation.training.TrainConfig` (or its dict); an architecture's ``hparams`` macro
            entry (joint search) overrides its fields.
        data_seed: seed of the data split (the experiment's seed), fixed across trials.
        latency_runs: batch-1 CPU forward passes timed for the latency metric (0 skips it).
        init_from: trained weights every candidate starts from where names and shapes allow (an export folder, a
            model folder or a weights file, see :func:`nas.transfer.read_weights`); read once, on the driver for
            Ray workers (:meth:`for_workers`). Each result's ``init_copied`` / ``init_reinit`` metrics count the
            tensors copied and left freshly initialised, ``info["init_from"]`` says so in words.
        init: what of the copied weights is frozen (:class:`~nas.transfer.TransferSpec`; default ``full``: all
            learn).
        inherit: weight inheritance (``evaluator.inherit``, :class:`~nas.evaluation.inheritance.InheritSettings` or
            its dict; None: off). A trial whose ``inherit`` carries its parent's weights starts from them for every
            unchanged op and trains ``inherit.epochs`` epochs (at ``inherit.lr_scale`` times the learning rate, with
            ``inherit.schedule`` if given); every completed result carries its trained weights
            (``Result.weights``) for the runtime's weight store, and the metrics ``tensors_copied``,
            ``tensors_fresh`` (and ``inherited_from``, the parent's id, for a child; with ``inherit.measure_start``
            also ``start_val_acc`` and ``start_score``: the child's validation accuracy and score right after
            inheritance, before any training, for a child that inherited, at the cost of one extra validation
            pass), with ``info["inheritance"]``
            saying what happened (a corrupt or lost parent: trained from scratch, full epochs).
        zero_cost: a training-free score handed to strategies that screen candidates with one (``gp_bo``: warm
            start, a feature of its GP and a prior in its acquisition; see :func:`nas.runtime.config.attach_zero_cost`),
            or None (the default: none). ``"params"``: the log of the parameter count of the compiled network, what
            the ``nb201`` evaluator gives (there a table look-up), here a compilation on the driver (the task is
            loaded there for its input shape) and no query. Larger networks are better after NAS-Bench-201's 200
            epochs; under a short budget they can be worse (``mnist``, one epoch per trial: the score cost ``gp_bo``
            20 points of best validation accuracy after 16 trials, RESULTS.md section ``train_zero_cost``), so it
            is opt-in.

    On a worker the evaluator lives across trials: it keeps the task loaded and, for a task small enough to stay on
    the device (``train.resident_data_mb``), its tensors on the device (:class:`~nas.evaluation.device.
    DeviceDataCache`), so the data crosses to a GPU once per worker. After each trial the model, optimiser and
    gradients are released (``gc.collect()``, ``torch.cuda.empty_cache()``), so workers sharing a GPU
    (``execution.gpus_per_trial`` < 1) get the memory back; on CUDA, a trial's ``peak_gpu_memory_mb`` metric is
    ``torch.cuda.max_memory_allocated`` during that trial (the peak is reset at its start; it includes the task's
    resident tensors).
    """

    name = "train"
    metrics = frozenset({"val_acc", "val_loss", "test_acc", "test_loss", "params", "flops", "train_seconds", "epochs",
                         "best_epoch", "latency_ms", "peak_gpu_memory_mb", "init_copied", "init_reinit",
                         "init_frozen"})

    def __init__(self, *, compiler: ModelCompiler, task: str, task_options: Mapping[str, Any] | None = None,
                 train: Any = None, data_seed: int = 0, latency_runs: int = 10, metric: str | None = None,
                 init_from: str | None = None, init: TransferSpec | None = None, inherit: Any = None,
                 zero_cost: str | None = None) -> None:
        if zero_cost is not None and zero_cost not in ZERO_COST_SCORES:
            raise ConfigError(f"evaluator.options.zero_cost = {zero_cost!r}: must be one of "
                              f"{', '.join(ZERO_COST_SCORES)} (a training-free score for strategies that screen "
                              "candidates, e.g. gp_bo), or null for none")
        self.zero_cost_score = zero_cost
        self.problem = check_task_name(task, task_options)
        self.metric: Metric = check_metric(metric_for(self.problem, metric), self.problem, task)
        self.compiler = compiler
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.train_config = train if isinstance(train, TrainConfig) else TrainConfig.from_dict(dict(train or {}))
        self.data_seed = data_seed
        self.latency_runs = latency_runs
        self.inherit: InheritSettings | None = (
            inherit if isinstance(inherit, InheritSettings) or inherit is None else InheritSettings.from_dict(inherit))
        self._task: Task | None = None
        self._data = DeviceDataCache()
        self.pruner = None  # set by the experiment for early stopping (EpochPruning)
        self.init_from = init_from
        self.init = init if init is not None else TransferSpec(where="evaluator.init_")
        self._init_state: dict[str, torch.Tensor] | None = None

    @property
    def zero_cost(self) -> Callable[[Architecture], float] | None:
        """The training-free scorer of the ``zero_cost`` option (None without it): ``arch -> score``, deterministic,
        for :func:`nas.runtime.config.attach_zero_cost`."""
        return None if self.zero_cost_score is None else self._log_params

    def _log_params(self, arch: Architecture) -> float:
        task = self.task
        # compiled on the CPU (on the meta device it took longer); the process's torch RNG is left as it was
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model = self.compiler(arch, task.input_shape, task.num_classes)
        return math.log(max(1, count_params(model)))

    def init_weights(self) -> dict[str, torch.Tensor] | None:
        """The ``init_from`` weights (None without), read once; :class:`ConfigError` when they cannot be read."""
        if self.init_from is not None and self._init_state is None:
            self._init_state = read_weights(self.init_from, "evaluator.init_from")[0]
        return self._init_state

    def _transfer(self, model: nn.Module) -> tuple[FreezePlan, dict[str, float], dict[str, str]]:
        """Copy the ``init_from`` weights that fit into ``model`` and freeze what ``init`` freezes: the plan, the
        metrics and the note of the result (an empty plan and nothing else without ``init_from``)."""
        state = self.init_weights()
        if state is None:
            return FreezePlan(), {}, {}
        copied = copy_matching(model, state)
        plan = apply_mode(model, self.init, copied)
        metrics = {"init_copied": float(len(copied.copied) + len(copied.adapted)),
                   "init_reinit": float(len(copied.reinit)), "init_frozen": float(len(plan.frozen))}
        return plan, metrics, {"init_from": f"{copied.summary()} from {self.init_from}; mode "
                                            f"{self.init.describe()}, {len(plan.frozen)} parameters frozen"}

    def __getstate__(self) -> dict[str, Any]:  # ship to workers without the loaded arrays, unless for_workers()
        state = dict(self.__dict__)
        if not state.pop("_ship_task", False):
            state["_task"] = None
        state["_data"] = DeviceDataCache()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        task = state.get("_task")
        if task is not None:  # arrays read from Ray's object store are read-only views: train on a private copy
            state["_task"] = dataclasses.replace(task, **{name: np.array(getattr(task, name)) for name in _SPLITS})
        self.__dict__.update(state)

    def for_workers(self) -> TrainEvaluator:
        """A copy of this evaluator that carries its task's data, loaded here (on the driver), for an executor
        to ship to its workers once (Ray's object store): a worker then reads no file of the task, which may
        exist on the driver's machine only (a user's ``.npz``). This evaluator itself when the task cannot be
        loaded or does not fit the space (every trial then fails with the reason, as before)."""
        try:
            _ = self.task
            self.init_weights()
        except Exception:
            return self
        shipped = object.__new__(type(self))
        shipped.__dict__.update(self.__dict__, _ship_task=True)
        return shipped

    def metric_names(self) -> frozenset[str]:
        """:attr:`metrics` with ``val_<metric>`` and ``test_<metric>`` of the chosen metric, without accuracies for
        regression, without ``latency_ms`` when latency is not measured (``latency_runs = 0``) and without
        ``peak_gpu_memory_mb`` when training is set to the CPU."""
        names = self.metrics | set(metric_keys(self.metric))
        if self.inherit is not None:
            names |= {"tensors_copied", "tensors_fresh", "inherited_from"}
            if self.inherit.measure_start:
                names |= {"start_score", "start_val_acc"}
        if self.problem == "regression":
            names -= {"val_acc", "test_acc", "start_val_acc"}
        if not self.latency_runs:
            names -= {"latency_ms"}
        if self.init_from is None:
            names -= {"init_copied", "init_reinit", "init_frozen"}
        return names - {"peak_gpu_memory_mb"} if self.train_config.device == "cpu" else names

    @property
    def task(self) -> Task:
        if self._task is None:
            task = load_task(self.task_name, seed=self.data_seed, **self.task_options)
            if self.compiler.input_kind != task.kind:
                raise ConfigError(
                    f"space {self.compiler.name!r} builds {self.compiler.input_kind} models but task "
                    f"{self.task_name!r} holds {task.kind} data; pick a matching space or task"
                )
            self._task = task  # kept only once it fits, so every trial of a mismatch fails with this reason
        return self._task

    def config_for(self, arch: Architecture) -> TrainConfig:
        """The training config of ``arch``: the evaluator's, overridden by the architecture's hparams."""
        hparams = arch.macro.get(HPARAMS_KEY)
        return self.train_config.replace(**hparams) if hparams else self.train_config

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        def attempt() -> Result:
            task = self.task
            cfg = self.config_for(trial.arch)
            device = resolve_device(cfg.device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            data = self._data.get(task, device, cfg.resident_data_mb)
            with seeded(trial.seed, device):
                model = self.compiler(trial.arch, task.input_shape, task.num_classes)
                plan, init_metrics, init_note = self._transfer(model)
                params, flops = count_params(model), count_flops(model, task.input_shape)
                start = (start_from_parent(model, trial.inherit, zero_new_ops=self.inherit.zero_new_ops,
                                           morph=self.inherit.morph,
                                           sample=data.x_train[:_CALIBRATION].to("cpu") if self.inherit.morph
                                           else None)
                         if self.inherit is not None else None)
                at_start = None
                if self.inherit is not None and start is not None and start.inherited:
                    cfg = self.inherit.child_config(cfg)
                    if self.inherit.measure_start:  # one extra validation pass, so off by default
                        # the child before training ("epoch 0"): where inheritance put it, beside its parent's score
                        at_start = score_split(model.to(device), data.x_val, data.y_val, task, self.metric,
                                               cfg.eval_batch_size, cfg.loss, device=device, precision=cfg.precision)
                report = train(model, task, cfg, seed=trial.seed, on_epoch=self._callback(trial, on_epoch), data=data,
                               metric=self.metric, lr_groups=plan.lr_groups, keep_eval=plan.eval_modules)
            test = score_split(model, data.x_test, data.y_test, task, self.metric, cfg.eval_batch_size, cfg.loss,
                               device=device, precision=cfg.precision,
                               channels_last=cfg.memory_format == "channels_last")
            metrics = {"val_loss": report.val_loss, "test_loss": test.loss, "params": float(params),
                       "flops": float(flops), "train_seconds": report.seconds, "epochs": float(report.epochs_run),
                       "best_epoch": float(report.best_epoch), **init_metrics}
            if not task.regression:
                metrics.update(val_acc=report.val_acc, test_acc=test.acc)
            val_key, test_key = metric_keys(self.metric)
            metrics[val_key], metrics[test_key] = report.val_value, test.value
            score = self.metric.score(report.val_value)
            peak = peak_memory_mb(device)
            if peak is not None:
                metrics["peak_gpu_memory_mb"] = peak
            if self.latency_runs:
                metrics["latency_ms"] = cpu_latency_ms(model, task.input_shape, runs=self.latency_runs)
            status = Status.PRUNED if report.stopped == "pruned" else Status.COMPLETE
            info = {"signal": f"validation {self.metric.describe()} on {self.task_name}",
                    "metric": self.metric.name, "direction": self.metric.direction, "device": str(device),
                    **init_note}
            weights = None
            if start is not None:
                metrics.update(tensors_copied=float(start.copied), tensors_fresh=float(start.fresh))
                if start.parent is not None:
                    metrics["inherited_from"] = float(start.parent)
                if at_start is not None:
                    metrics["start_score"] = self.metric.score(at_start.value)
                    if not task.regression:
                        metrics["start_val_acc"] = at_start.acc
                plural = "" if report.epochs_run == 1 else "s"
                info["inheritance"] = f"{start.note}; trained {report.epochs_run} epoch{plural}"
                weights = serialize_weights(model) if status is Status.COMPLETE else None
            return Result(status, score=score, metrics=metrics, history=report.history, info=info,
                          error="pruned by the scheduler" if status is Status.PRUNED else None, weights=weights)

        return failures_as_results(attempt)


_NB201_SIGNALS = {
    # dataset: {signal name: (record field, description)}
    "cifar10": {"val200": ("cifar10_val200", "200-epoch validation accuracy"),
                "val12": ("cifar10_val12", "12-epoch validation accuracy")},
    "cifar100": {"val12": ("cifar100_val12", "12-epoch validation accuracy")},
    "imagenet16-120": {"val12": ("imagenet16_val12", "12-epoch validation accuracy")},
}
_NB201_TEST = {"cifar10": "cifar10_test200", "cifar100": "cifar100_test200", "imagenet16-120": "imagenet16_test200"}


class NB201Evaluator(Evaluator):
    """NAS-Bench-201 lookup. The score is the benchmark's validation accuracy (200-epoch for CIFAR-10,
    12-epoch for CIFAR-100 and ImageNet16-120, where only that exists: ``info["signal"]`` says which);
    ``test_acc`` is the 200-epoch test accuracy, reported only.

    Device costs from HW-NAS-Bench for the dataset's network are metrics too (:data:`HW_METRICS`:
    ``pixel3_latency``, ``jetson_tx2_energy``, ``raspi4_latency``, ``edgetpu_latency``, ... in ms and mJ), so
    objectives (``min:pixel3_latency``) and constraints (``pixel3_latency <= 5``) can name them. They are the
    measured (or estimated) costs of *this* cell, which differ between cells computing the same function (a dead
    branch still runs on the device), so a search minimising one is de-duplicated by exact architecture, not by
    canonical hash (:class:`strategies.Deduplicate`)."""

    name = "nb201"
    #: ``flops`` is in the table for some cells only, and so is ``edgetpu_latency``
    metrics = frozenset({"val_acc", "test_acc", "nb201_index", "params", "flops", *HW_METRICS})

    def __init__(self, *, dataset: str = "cifar10", signal: str | None = None) -> None:
        if dataset not in _NB201_SIGNALS:
            raise ConfigError(f"nb201 evaluator: dataset {dataset!r} is not one of {', '.join(_NB201_SIGNALS)}")
        signals = _NB201_SIGNALS[dataset]
        signal = signal or next(iter(signals))
        if signal not in signals:
            raise ConfigError(f"nb201 evaluator: signal {signal!r} is not available for {dataset}; "
                              f"choose from {', '.join(signals)}")
        self.dataset = dataset
        self.signal = signal
        self._field, self._description = signals[signal]
        self._index: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index"] = None
        return state

    def lookup(self, arch: Architecture) -> Any:
        """The benchmark record of an ``nb201`` architecture."""
        if self._index is None:
            self._index = {r.arch_str: r for r in load_nb201()}
        if arch.space != "nb201":
            raise InvalidArchitectureError(f"the nb201 evaluator needs an 'nb201' architecture, got {arch.space!r}")
        return self._index[nb201_string({(s, d): op for s, d, op in arch.cell("cell").edges})]

    def zero_cost(self, arch: Architecture) -> float:
        """A zero-cost score of ``arch`` for strategies that screen candidates before querying them: the log of
        the parameter count of its compiled network (the table's ``params``, equal to what
        ``get_space("nb201").build_model(arch, (3, 32, 32), 10)`` counts), a training-free proxy with Spearman
        about 0.77 against CIFAR-10 test accuracy. Costs a look-up, not a query."""
        return math.log(self.lookup(arch).params)

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        try:
            record = self.lookup(trial.arch)
        except Exception as err:
            return _failure(err)
        score = getattr(record, self._field)
        metrics = {"val_acc": score, "test_acc": getattr(record, _NB201_TEST[self.dataset]),
                   "nb201_index": float(record.index)}
        metrics["params"] = float(record.params)
        if record.flops_M is not None:
            metrics["flops"] = record.flops_M * 1e6
        metrics.update(load_nb201_hw(self.dataset)[record.index])
        return Result(Status.COMPLETE, score=score, metrics=metrics,
                      info={"signal": f"NAS-Bench-201 {self.dataset} {self._description}",
                            "test": f"NAS-Bench-201 {self.dataset} 200-epoch test accuracy"})


class ProxyEvaluator(Evaluator):
    """A zero-cost proxy (``synflow``, data-free, or ``naswot``, on one training minibatch) as the score.

    Give ``task`` (needed by ``naswot``), or ``input_shape`` and ``num_classes`` for data-free proxies; ``compiler``
    compiles the trials' architectures (:class:`ModelCompiler`)."""

    name = "proxy"

    def __init__(self, *, compiler: ModelCompiler, proxy: str = "synflow", task: str | None = None,
                 task_options: Mapping[str, Any] | None = None, input_shape: Any = None, num_classes: int = 10,
                 batch_size: int = 64, data_seed: int = 0) -> None:
        if proxy not in PROXIES:
            raise ConfigError(f"proxy evaluator: proxy {proxy!r} is not one of {', '.join(PROXIES)}")
        if task is None and (proxy != "synflow" or input_shape is None):
            raise ConfigError(f"proxy evaluator: proxy {proxy!r} needs a task"
                              + ("" if proxy != "synflow" else " or an input_shape"))
        self.compiler = compiler
        self.proxy = proxy
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.data_seed = data_seed
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._classes = num_classes

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not state.pop("_ship_batch", False):
            state["_batch"] = None
        return state

    def for_workers(self) -> ProxyEvaluator:
        """A copy carrying its minibatch, drawn here (on the driver) from the task, for an executor to ship to its
        workers once (see :meth:`TrainEvaluator.for_workers`); this evaluator itself when the task cannot load."""
        try:
            self._data()
        except Exception:
            return self
        shipped = object.__new__(type(self))
        shipped.__dict__.update(self.__dict__, _ship_batch=True)
        return shipped

    def metric_names(self) -> frozenset[str]:
        """The proxy's own value (named after it) and ``params``."""
        return frozenset({self.proxy, "params"})

    def _data(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.task_name is None:
            assert self.input_shape is not None
            return torch.zeros(1, *self.input_shape), torch.zeros(1, dtype=torch.long), self.num_classes
        if self._batch is None:
            task = load_task(self.task_name, seed=self.data_seed, **self.task_options)
            idx = torch.randperm(len(task.y_train), generator=torch.Generator().manual_seed(self.data_seed))
            idx = idx[: self.batch_size]
            self._batch = torch.as_tensor(task.x_train)[idx], torch.as_tensor(task.y_train)[idx]
            self._classes = task.num_classes
        return self._batch[0], self._batch[1], self._classes

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        try:
            x, y, classes = self._data()
            with seeded(trial.seed):
                model = self.compiler(trial.arch, tuple(x.shape[1:]), classes)
                score = PROXIES[self.proxy](model, x, y)
            if not math.isfinite(score):
                return Result.failed(f"{self.proxy} score is {score}")
            return Result(Status.COMPLETE, score=score,
                          metrics={self.proxy: score, "params": float(count_params(model))},
                          info={"signal": f"zero-cost proxy {self.proxy} at initialisation"})
        except Exception as err:
            return _failure(err)


#: every evaluator by name: the built-ins, those registered with :func:`register_evaluator`, installed plugins
#: (entry-point group ``nasgraph.evaluators``)
EVALUATORS: Registry[type[Evaluator]] = Registry(
    "evaluator", group="nasgraph.evaluators", check=subclass_check(Evaluator, "nas.evaluation.evaluators.Evaluator"))
E = TypeVar("E", bound=type[Evaluator])


def register_evaluator(cls: E) -> E:
    """Register an :class:`Evaluator` subclass under its class attribute ``name``; usable as a class
    decorator (it returns the class unchanged). ``get_evaluator(name, **options)`` builds it with the
    evaluator options of the config."""
    return register_named(EVALUATORS, cls, "register_evaluator")


for _cls in (TrainEvaluator, NB201Evaluator, ProxyEvaluator):
    register_evaluator(_cls)


def list_evaluators() -> list[str]:
    return EVALUATORS.names()


def get_evaluator(name: str, **options: Any) -> Evaluator:
    """Build the evaluator ``name`` with keyword options (``compiler=`` for those that compile models)."""
    cls = EVALUATORS.get(name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"evaluator {name!r}: {err}") from None
