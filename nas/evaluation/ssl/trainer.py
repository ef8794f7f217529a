"""The self-supervised training loop: a :class:`~nas.evaluation.ssl.base.Pretext` trained on unlabeled inputs with
the optimiser, schedule, batch size, epochs and gradient clipping of a
:class:`~nas.evaluation.training.TrainConfig`, validated after every epoch on the fixed validation generator."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.core.errors import ConfigError
from nas.evaluation.ssl.base import Pretext
from nas.evaluation.ssl.contrastive import Contrastive
from nas.evaluation.ssl.heads import validation_generator
from nas.evaluation.ssl.masked import Masked
from nas.evaluation.ssl.rotation import Rotation
from nas.evaluation.training import Diverged, TrainConfig, _make_optimizer, resolve_device

__all__ = ["PRETEXTS", "SslReport", "build_pretext", "pretext_class", "train_pretext"]

#: every pretext by name
PRETEXTS: dict[str, type[Pretext]] = {cls.name: cls for cls in (Rotation, Contrastive, Masked)}


def pretext_class(name: Any, field: str = "evaluator.options.pretext") -> type[Pretext]:
    """The pretext class ``name``; :class:`ConfigError` naming ``field`` for an unknown one."""
    if name not in PRETEXTS:
        raise ConfigError(f"{field} = {name!r}: choose one of {', '.join(PRETEXTS)}")
    return PRETEXTS[name]


def build_pretext(name: str, backbone: nn.Module, input_shape: Sequence[int], kind: str,
                  options: Mapping[str, Any]) -> Pretext:
    """Pretext ``name`` around ``backbone`` (compiled with ``pretext_class(name).out_dim(...)`` outputs)."""
    cls = pretext_class(name)
    if cls is Contrastive:
        return Contrastive(backbone, kind=kind, **options)
    if cls is Masked:
        return Masked(backbone, kind=kind, input_shape=input_shape, **options)
    return cls(backbone)


@dataclass
class SslReport:
    """What a self-supervised run produced: per-epoch history, the last validation metrics, and why it stopped
    (None, or ``"pruned"``)."""

    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    score: float = float("nan")
    epochs_run: int = 0
    seconds: float = 0.0
    stopped: str | None = None


def train_pretext(pretext: Pretext, x_train: torch.Tensor, x_val: torch.Tensor, cfg: TrainConfig, *, seed: int,
                  data_seed: int, on_epoch: Callable[[int, dict[str, float]], bool | None] | None = None,
                  probe: Callable[[Pretext], float] | None = None) -> SslReport:
    """Train ``pretext`` on ``x_train`` for ``cfg.epochs``, scoring ``x_val`` after each epoch.

    Training draws (shuffling, views, rotations, masks) come from a generator seeded by ``seed`` (the trial's);
    validation draws from :func:`~nas.evaluation.ssl.heads.validation_generator` of ``data_seed``, re-seeded every
    epoch, so each candidate's score is measured on the same views and masks. The score is the last epoch's.
    Each epoch's history row carries ``score``: the pretext's validation metric oriented to be maximised or, with
    ``probe`` (the backbone's probe accuracy, measured after every epoch), that accuracy (also as ``probe_acc``);
    ``on_epoch(epoch, row)`` sees that row (an early-stopping pruner ranks by its score) and returning False stops
    (prunes) the run. Raises :class:`Diverged` on a NaN or infinite loss."""
    start = time.perf_counter()
    if cfg.precision != "fp32":
        raise ConfigError(f"train.precision = {cfg.precision!r}: the ssl evaluator trains in fp32; remove it")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    pretext.to(device)
    x_train, x_val = x_train.to(device), x_val.to(device)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in pretext.parameters() if p.requires_grad]
    optimizer = _make_optimizer(params, cfg)
    steps = max(1, math.ceil(len(x_train) / cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cfg.lr_factor(step / steps))
    report = SslReport()
    for epoch in range(cfg.epochs):
        pretext.train()
        perm = torch.randperm(len(x_train), generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, len(x_train), cfg.batch_size):
            xb = x_train[perm[i:i + cfg.batch_size]]
            if len(xb) < 2:  # a batch of one: no negatives, and batch norm cannot train on it
                continue
            loss = pretext.loss(xb, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            pretext.after_step()
            total += loss.detach() * len(xb)
        train_loss = float(total) / len(x_train)
        if not math.isfinite(train_loss):
            raise Diverged(f"diverged at epoch {epoch + 1}: pretext training loss is {train_loss}")
        metrics = pretext.validate(x_val, validation_generator(data_seed), cfg.eval_batch_size
                                   if pretext.name != "contrastive" else cfg.batch_size)
        score = pretext.score(metrics)
        if not math.isfinite(score):
            raise Diverged(f"diverged at epoch {epoch + 1}: validation {pretext.metric} is {metrics[pretext.metric]}")
        if probe is not None:
            metrics["probe_acc"] = score = probe(pretext)
        row = {"epoch": float(epoch + 1), "train_loss": train_loss, **metrics, "score": score}
        report.history.append(row)
        report.metrics, report.score, report.epochs_run = metrics, score, epoch + 1
        if on_epoch is not None and on_epoch(epoch + 1, row) is False:
            report.stopped = "pruned"
            break
    pretext.eval()
    report.seconds = time.perf_counter() - start
    return report
