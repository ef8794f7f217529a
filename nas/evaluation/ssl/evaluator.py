"""``SslEvaluator``: search without labels. Each candidate is compiled with the pretext's head, trained
self-supervised on the task's train split and scored on its validation split.

The score is the pretext's validation metric: rotation accuracy (``rotation``), minus the NT-Xent loss
(``contrastive``) or minus the masked MSE (``masked``), measured on views and masks drawn from the data seed, so all
candidates face the same validation problem. With ``probe: {labels: 0.1}`` (and labeled data) the score is instead
the k-NN (default) or linear-probe accuracy of the trained backbone's features on that fraction of the labels (see
:mod:`nas.evaluation.ssl.probe`): the pretext's own loss compares candidates only on the pretext, a probe on a few
labels measures what a downstream user gets, at the price of needing those labels.

A result's ``info`` says which score it is (``signal``) and, as the train and gan evaluators do, ``metric`` (the
pretext's validation metric, or ``probe_acc``) with its ``direction`` (``min`` for a loss, whose negation is the
score), which ``nas status``, the report and the export read.

Training runs epoch by epoch: each epoch's history row carries ``score`` (that epoch's value of the trial's score,
the probe's accuracy included, measured after every epoch when a probe is set), so early stopping (ASHA, Hyperband,
and with it BOHB) works as with the train evaluator (:class:`~nas.evaluation.evaluators.EpochPruning`): a stopped
candidate comes back ``PRUNED`` with its scores so far.

What a trial keeps is its scores; its weights are the backbone (every tensor of the compiled network, whose head
is the pretext's) and are produced again by ``nas export`` or ``nas pretrain`` (same seed, same run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nas.core.errors import ConfigError
from nas.evaluation.evaluators import (
    HPARAMS_KEY,
    EpochCallback,
    EpochPruning,
    Evaluator,
    ModelCompiler,
    failures_as_results,
    register_evaluator,
)
from nas.evaluation.measure import count_flops, count_params
from nas.evaluation.ssl.base import Pretext
from nas.evaluation.ssl.heads import embed
from nas.evaluation.ssl.probe import ProbeSettings, knn_accuracy, labeled_subset, linear_accuracy
from nas.evaluation.ssl.trainer import SslReport, build_pretext, pretext_class, train_pretext
from nas.evaluation.tasks import Task, load_task
from nas.evaluation.training import TrainConfig, resolve_device, seeded
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Status, Trial

__all__ = ["SslEvaluator", "EXPORTED"]

#: what an export of an ssl trial holds, said in the manifest and the docs
EXPORTED = ("the backbone trained self-supervised, with the pretext's head as its classifier (rotation: 4 outputs; "
            "contrastive: the first projection layer; masked: the reconstruction); `nas finetune --mode features` "
            "replaces that head with one for a labeled task and trains it on the frozen backbone (a linear probe)")


class SslEvaluator(EpochPruning, Evaluator):
    """Self-supervised evaluation.

    Args:
        compiler: compiles the candidates (:class:`~nas.evaluation.evaluators.ModelCompiler`).
        task: a task name; its data may lack labels (an ``.npz`` without ``y``, a task function returning ``x``).
        pretext: ``rotation`` (images), ``contrastive`` or ``masked`` (images and sequences).
        probe: ``{labels, method, k}`` (:class:`~nas.evaluation.ssl.probe.ProbeSettings`) to score by a probe
            on a fraction of the labels; None (default): score by the pretext.
        train: the :class:`~nas.evaluation.training.TrainConfig` (or its dict): epochs, batch size, optimiser,
            schedule, gradient clipping and device of the self-supervised training; ``augment``, ``dropout``,
            ``loss`` and the other supervised settings do not apply.
        data_seed: the experiment's seed: splits, labeled subset, validation views and masks.
        pretext_options: the pretext's own options (``temperature``, ``dim``, ``augment``, ``momentum``, ``queue``
            for contrastive; ``mask_ratio``, ``patch`` for masked).
    """

    name = "ssl"

    def __init__(self, *, compiler: ModelCompiler, task: str, task_options: Mapping[str, Any] | None = None,
                 pretext: str = "contrastive", probe: Mapping[str, Any] | None = None, train: Any = None,
                 data_seed: int = 0, **pretext_options: Any) -> None:
        self.pretext_cls: type[Pretext] = pretext_class(pretext)
        self.pretext = pretext
        self.pretext_options = dict(pretext_options)
        self.probe = ProbeSettings.from_dict(probe) if probe is not None else None
        self.compiler = compiler
        self.task_name = task
        self.task_options = dict(task_options or {})
        self.train_config = train if isinstance(train, TrainConfig) else TrainConfig.from_dict(dict(train or {}))
        self.data_seed = data_seed
        self.pruner = None  # set by the experiment for early stopping (EpochPruning)
        self._task: Task | None = None

    def __getstate__(self) -> dict[str, Any]:  # workers load the task themselves
        return {**self.__dict__, "_task": None}

    def metric_names(self) -> frozenset[str]:
        names = {"params", "flops", "train_seconds", "epochs", self.pretext_cls.metric}
        names |= {"contrastive_acc"} if self.pretext == "contrastive" else set()
        names |= {"rotation_loss"} if self.pretext == "rotation" else set()
        return frozenset(names | ({"probe_acc"} if self.probe is not None else set()))

    def check_task(self, task: Task) -> None:
        """Refuse a task this configuration cannot use (:class:`ConfigError` naming the field and the fix): data of
        a kind the pretext does not take, bad pretext options, a probe without labels or on regression targets."""
        if self.compiler.input_kind != task.kind:
            raise ConfigError(f"space {self.compiler.name!r} builds {self.compiler.input_kind} models but task "
                              f"{self.task_name!r} holds {task.kind} data; pick a matching space or task")
        self.pretext_cls.check(task.input_shape, task.kind, self.pretext_options)
        if self.probe is not None and not task.labeled:
            raise ConfigError(f"evaluator.options.probe = {{labels: {self.probe.labels}}} needs labels, but task "
                              f"{self.task_name!r} holds unlabeled data; give labeled data (y) or remove the probe "
                              "to score by the pretext")
        if self.probe is not None and task.regression:
            raise ConfigError(f"evaluator.options.probe: task {self.task_name!r} is regression; the probe scores "
                              "class labels: remove the probe or use a classification task")

    @property
    def task(self) -> Task:
        """The task (labels optional), loaded and checked once per process."""
        if self._task is None:
            task = load_task(self.task_name, seed=self.data_seed, labels="optional", **self.task_options)
            self.check_task(task)
            self._task = task
        return self._task

    def config_for(self, arch: Architecture) -> TrainConfig:
        """The training config of ``arch``: the evaluator's, overridden by the architecture's hparams."""
        hparams = arch.macro.get(HPARAMS_KEY)
        return self.train_config.replace(**hparams) if hparams else self.train_config

    def pretrain(self, arch: Architecture, seed: int, on_epoch: EpochCallback | None = None
                 ) -> tuple[Pretext, SslReport]:
        """Compile ``arch`` with the pretext's head and train it self-supervised with ``seed``: the pretext (its
        ``backbone`` is the trained network) and the run's report, whose per-epoch ``score`` (and final score) is
        the probe's accuracy when :attr:`probe` is set, the pretext's otherwise. Raises on failure
        (:class:`Diverged`, ...)."""
        task = self.task
        cfg = self.config_for(arch)
        with seeded(seed, resolve_device(cfg.device)):
            out = self.pretext_cls.out_dim(task.input_shape, self.pretext_options)
            model = self.compiler(arch, task.input_shape, out)
            pretext = build_pretext(self.pretext, model, task.input_shape, task.kind, self.pretext_options)
            report = train_pretext(pretext, torch.as_tensor(task.x_train), torch.as_tensor(task.x_val), cfg,
                                   seed=seed, data_seed=self.data_seed, on_epoch=on_epoch,
                                   probe=self.probe_accuracy if self.probe is not None else None)
        return pretext, report

    def probe_accuracy(self, pretext: Pretext) -> float:
        """The probe's accuracy (%) on the backbone's features (requires :attr:`probe` and labels)."""
        assert self.probe is not None
        task = self.task
        cfg = self.train_config
        device = resolve_device(cfg.device)
        train_idx = labeled_subset(task.y_train, self.probe.labels, self.data_seed + 1)
        val_idx = labeled_subset(task.y_val, self.probe.labels, self.data_seed + 2)
        feats = {split: embed(pretext.backbone, torch.as_tensor(x[idx]), cfg.eval_batch_size, device)
                 for split, x, idx in (("train", task.x_train, train_idx), ("val", task.x_val, val_idx))}
        y_train, y_val = torch.as_tensor(task.y_train[train_idx]), torch.as_tensor(task.y_val[val_idx])
        if self.probe.method == "knn":
            return knn_accuracy(feats["train"], y_train, feats["val"], y_val, task.num_classes, self.probe.k)
        return linear_accuracy(feats["train"], y_train, feats["val"], y_val, task.num_classes)

    def evaluate(self, trial: Trial, on_epoch: EpochCallback | None = None) -> Result:
        def attempt() -> Result:
            task = self.task
            pretext, report = self.pretrain(trial.arch, trial.seed, self._callback(trial, on_epoch))
            model = pretext.backbone
            metrics: dict[str, float] = {"params": float(count_params(model)),
                                         "flops": float(count_flops(model.cpu(), task.input_shape)),
                                         "train_seconds": report.seconds, "epochs": float(report.epochs_run),
                                         **report.metrics}
            score = report.score
            signal = f"validation {self.pretext_cls.metric} of pretext {self.pretext} on {self.task_name}"
            metric, direction = self.pretext_cls.metric, "max" if self.pretext_cls.maximize else "min"
            if self.probe is not None:  # measured after every epoch (the pruner ranks by it), the last one here
                signal = f"{self.probe.describe()} of {self.task_name}, after pretext {self.pretext}"
                metric, direction = "probe_acc", "max"
            status = Status.PRUNED if report.stopped == "pruned" else Status.COMPLETE
            info = {"signal": signal, "pretext": self.pretext, "exported": EXPORTED,
                    "metric": metric, "direction": direction,
                    "labels": "used by the probe only" if self.probe is not None else "not used"}
            return Result(status, score=float(score), metrics=metrics, history=report.history, info=info,
                          error="pruned by the scheduler" if status is Status.PRUNED else None)

        return failures_as_results(attempt)


register_evaluator(SslEvaluator)
