"""The ``weight_sharing`` evaluator: score candidates with weights inherited from one trained supernet.

Before its first trial the experiment runs the evaluator's job, the single-path supernet training
(:class:`~nas.weightsharing.spec.SposTraining`, run by :func:`nas.weightsharing.job.run_spos_training`,
checkpointed every epoch) and hands it the :class:`~nas.weightsharing.spec.SharedWeights`. From then on a trial
costs a forward pass over a few training batches and the validation split: its model is compiled as for training,
takes its path's weights from the supernet (:func:`nas.weightsharing.inherit.inherit`), recalibrates its
batch-norm statistics on ``bn_recalibration_batches`` training batches (the same batches for every candidate,
drawn from the experiment seed) and is scored on the validation split; the test split is measured and reported.
So random, evolution, rl, optuna and gp_bo search thousands of candidates at the cost of one supernet training.

When the budget is spent, the experiment retrains the ``retrain_top`` best candidates from scratch with
:meth:`WeightSharingEvaluator.retrainer` (the ``train`` evaluator with the same task, training settings and metric)
and ranks them by that stand-alone score; both scores are kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from nas.core.checks import check_int
from nas.core.errors import ConfigError
from nas.evaluation.device import TaskTensors
from nas.evaluation.evaluators import EpochCallback, ModelCompiler, TrainEvaluator, _failure, register_evaluator
from nas.evaluation.measure import count_flops, count_params
from nas.evaluation.metrics import metric_keys
from nas.evaluation.scoring import score_split
from nas.evaluation.training import resolve_device, seeded
from nas.oneshot.config import SupernetSpace
from nas.trials.protocols import JobContext, JobOutcome
from nas.trials.trial import Result, Status, Trial
from nas.weightsharing.inherit import inherit, path_of, recalibrate_bn
from nas.weightsharing.spec import SharedWeights, SposConfig, SposTraining, training_summary

__all__ = ["WeightSharingEvaluator", "OPTIONS"]

_WHERE = "evaluator.options"
#: the evaluator's own options (``evaluator.options``); the rest comes from ``evaluator.task``/``train``/``metric``
OPTIONS = ("supernet_epochs", "supernet_batch_size", "supernet_lr", "supernet_momentum", "supernet_weight_decay",
           "supernet_grad_clip", "supernet_none_weight", "bn_recalibration_batches", "retrain_top")


class WeightSharingEvaluator(TrainEvaluator):
    """Weight-sharing evaluation (single-path one-shot). Takes what the ``train`` evaluator takes (``task``,
    ``task_options``, ``train``, ``metric``: the retraining of the winners uses them, and the candidates are
    compiled, placed on the device and scored as there), plus ``space`` (a space with a supernet whose members hold
    every supernet edge: ``nb201``, ``transformer``) and the options:

    * ``supernet_epochs``, ``supernet_batch_size``, ``supernet_lr``, ``supernet_momentum``,
      ``supernet_weight_decay``, ``supernet_grad_clip``: the supernet training (:class:`SposConfig`);
    * ``supernet_none_weight`` (default 1, uniform as in SPOS): the sampling weight of a zero op (``none``)
      against 1 for every other op when the supernet training draws a path; in [0, 1];
    * ``bn_recalibration_batches`` (default 20, as SPOS): training batches (of ``supernet_batch_size``) that
      recalibrate the batch-norm statistics of each candidate (a cumulative average, in training mode; the model is
      then scored in evaluation mode); 0 keeps the supernet's;
    * ``retrain_top`` (default 3): how many of the best candidates are retrained from scratch at the end and
      ranked by that; 0 ranks by the inherited-weight score alone.
    """

    name = "weight_sharing"
    metrics = frozenset({"val_acc", "val_loss", "test_acc", "test_loss", "params", "flops", "eval_seconds",
                         "inherited"})

    def __init__(self, *, space: SupernetSpace, compiler: ModelCompiler, task: str,
                 task_options: Mapping[str, Any] | None = None, train: Any = None, data_seed: int = 0,
                 metric: str | None = None, supernet_epochs: int = 20, supernet_batch_size: int = 64,
                 supernet_lr: float = 0.05, supernet_momentum: float = 0.9, supernet_weight_decay: float = 4e-5,
                 supernet_grad_clip: float = 5.0, supernet_none_weight: float = 1.0,
                 bn_recalibration_batches: int = 20, retrain_top: int = 3) -> None:
        super().__init__(compiler=compiler, task=task, task_options=task_options, train=train, data_seed=data_seed,
                         latency_runs=0, metric=metric)
        if self.problem == "regression":
            raise ConfigError(f"evaluator.task = {task!r} is a regression task; the weight_sharing evaluator trains "
                              "its supernet on class labels: use a classification task or the train evaluator")
        self.supernet = SposConfig(epochs=supernet_epochs, batch_size=supernet_batch_size, lr=supernet_lr,
                                   momentum=supernet_momentum, weight_decay=supernet_weight_decay,
                                   grad_clip=supernet_grad_clip, none_weight=supernet_none_weight,
                                   device=self.train_config.device)
        self.supernet.check(_WHERE)
        self.bn_batches = check_int(f"{_WHERE}.bn_recalibration_batches", bn_recalibration_batches, minimum=0)
        self.retrain_top = check_int(f"{_WHERE}.retrain_top", retrain_top, minimum=0)
        _check_space(space)
        self.space = space
        self.metric_name = metric
        self.shared: SharedWeights | None = None

    # -- the supernet training ------------------------------------------------------------------
    def job(self, context: JobContext) -> SposTraining | None:
        """The supernet training, until its outcome has been told (then None)."""
        if self.shared is not None:
            return None
        return SposTraining(space=self.space, task=self.task_name, task_options=dict(self.task_options),
                            seed=context.seed, config=self.supernet, directory=str(context.directory),
                            threads=context.threads or self.train_config.threads, files=context.files)

    def tell_job(self, outcome: JobOutcome) -> None:
        """Receive the trained supernet's :class:`SharedWeights`."""
        if not isinstance(outcome, SharedWeights):
            raise TypeError(f"{self.name}: expected the SharedWeights of the supernet training, got "
                            f"{type(outcome).__name__}")
        self.shared = outcome

    def job_summary(self, context: JobContext) -> dict[str, Any]:
        if self.shared is not None:
            return self.shared.summary()
        job = self.job(context)
        assert job is not None
        return training_summary(len(job.read_history()), job.epochs)

    def retrainer(self) -> TrainEvaluator:
        """The ``train`` evaluator that retrains the winners from scratch: same compiler, task, training settings,
        data seed and metric."""
        return TrainEvaluator(compiler=self.compiler, task=self.task_name, task_options=self.task_options,
                              train=self.train_config, data_seed=self.data_seed, metric=self.metric_name)

    def metric_names(self) -> frozenset[str]:
        names = self.metrics | set(metric_keys(self.metric))
        return names - {"val_acc", "test_acc"} if self.problem == "regression" else names

    # -- evaluation -----------------------------------------------------------------------------
    def _recalibration_batches(self, data: TaskTensors, channels_last: bool) -> list[torch.Tensor]:
        """The first ``bn_batches`` batches of a permutation of the training split drawn from the data seed."""
        n = len(data.y_train)
        bs = min(self.supernet.batch_size, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.data_seed + 17))
        order = order.to(data.index_device())
        count = min(self.bn_batches, max(1, n // bs))
        return [data.batch(data.x_train, data.y_train, order[i * bs:(i + 1) * bs], channels_last=channels_last)[0]
                for i in range(count)] if self.bn_batches else []

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        shared = self.shared
        if shared is None:
            return Result.failed("weight_sharing: the supernet has not been trained; the experiment trains it "
                                 "before the first trial")
        try:
            start = time.perf_counter()
            task = self.task
            cfg = self.config_for(trial.arch)
            device = resolve_device(cfg.device)
            data = self._data.get(task, device, cfg.resident_data_mb)
            path = path_of(trial.arch, shared.slots, shared.edges, shared.macro)
            with seeded(trial.seed, device):
                model = self.compiler(trial.arch, task.input_shape, task.num_classes)
            params, flops = count_params(model), count_flops(model, task.input_shape)
            inherited = inherit(model, shared.weights, shared.sites, path)
            model.to(device)
            channels_last = cfg.memory_format == "channels_last"
            with seeded(self.data_seed, device):  # dropout or drop-path in training mode draw from torch's RNG
                recalibrate_bn(model, self._recalibration_batches(data, channels_last))
            scores = {split: score_split(model, getattr(data, f"x_{split}"), getattr(data, f"y_{split}"), task,
                                         self.metric, cfg.eval_batch_size, cfg.loss, device=device,
                                         precision=cfg.precision, channels_last=channels_last)
                      for split in ("val", "test")}
            val, test = scores["val"], scores["test"]
            if not np.isfinite(val.loss):
                return Result.failed(f"validation loss is {val.loss} with the inherited weights")
            metrics = {"val_loss": val.loss, "test_loss": test.loss, "params": float(params), "flops": float(flops),
                       "inherited": float(inherited), "eval_seconds": time.perf_counter() - start,
                       "val_acc": val.acc, "test_acc": test.acc}
            val_key, test_key = metric_keys(self.metric)
            metrics[val_key], metrics[test_key] = val.value, test.value
            return Result(Status.COMPLETE, score=self.metric.score(val.value), metrics=metrics,
                          info={"signal": f"validation {self.metric.describe()} on {self.task_name} with weights "
                                          "inherited from the single-path supernet",
                                "metric": self.metric.name, "direction": self.metric.direction,
                                "evaluation": "weight_sharing", "device": str(device)})
        except Exception as err:  # a bad candidate is data, not a crash
            return _failure(err)


def _check_space(space: Any) -> None:
    """:class:`ConfigError` unless ``space`` has a supernet whose members hold every edge of its cell slots (a
    member's path is then one op per supernet edge)."""
    name = getattr(space, "name", type(space).__name__)
    try:
        spec = space.supernet_spec()
    except (ConfigError, AttributeError):
        raise ConfigError(f"evaluator.name = 'weight_sharing' needs a space with a supernet (nb201, transformer); "
                          f"space {name!r} has none: use the train evaluator") from None
    member = space.sample(np.random.default_rng(0))
    for slot_name, slot in spec.cell_slots.items():
        held = {(s, d) for s, d, _ in member.cell(slot_name).edges}
        if held != set(slot.edges):
            raise ConfigError(f"evaluator.name = 'weight_sharing': the members of space {name!r} hold {len(held)} of "
                              f"the {slot.rows} edges of its supernet's cell {slot_name!r} (they choose their "
                              "inputs), so a member is not one path through it; use nb201 or transformer, or the "
                              "train evaluator")


register_evaluator(WeightSharingEvaluator)
