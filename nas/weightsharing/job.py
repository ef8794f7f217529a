"""The single-path supernet training (SPOS, Guo et al. 2020): the runner of :class:`~.spec.SposTraining` jobs.

The supernet is the space's continuous relaxation (:func:`nas.oneshot.supernet.build_supernet`, as the one-shot
strategies build it), but no architecture parameters are learnt: every step draws one op per edge (and per macro
choice) at random (uniformly, or with the zero ops down-weighted by ``none_weight``) and trains only that path's
weights on a batch of the task's training split. The paths and the data order derive from the seed and the epoch;
the weights, the optimiser, the learning-rate schedule and the loop state are checkpointed after every epoch
(``checkpoint.pt`` in the job's files), so a killed training continues from its last epoch with identical results,
and a finished one is read back (no training) when the experiment is resumed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.core.errors import ConfigError
from nas.evaluation.tasks import load_task
from nas.evaluation.training import resolve_device
from nas.oneshot.supernet import MixedOp, Supernet, build_supernet
from nas.trials.protocols import JobProgress
from nas.weightsharing.spec import SharedWeights, SposTraining

__all__ = ["run_spos_training", "with_data", "set_path", "sample_path", "zero_ops", "mixed_sites"]


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, 11, epoch]).generate_state(1)[0])


def mixed_sites(net: Supernet) -> dict[str, list[Any]]:
    """The module path (inside ``net.network``) of every mixed op -> ``[slot, row]``."""
    return {name: [m.slot, m.row] for name, m in net.network.named_modules() if isinstance(m, MixedOp)}


def zero_ops(net: Supernet) -> dict[str, list[bool]]:
    """Slot -> which of its candidates output zeros (NB201's ``none``), read from the slot's mixed ops."""
    flags: dict[str, list[bool]] = {}
    for m in net.network.modules():
        if isinstance(m, MixedOp):
            flags.setdefault(m.slot, list(m.zero))
    return flags


def sample_path(net: Supernet, gen: torch.Generator, none_weight: float = 1.0,
                zero: dict[str, list[bool]] | None = None) -> dict[str, list[int]]:
    """One op index per row of every slot, drawn from ``gen``: uniformly when ``none_weight`` is 1, else each zero
    op (``zero``, as :func:`zero_ops` reads it) with weight ``none_weight`` against 1 for every other op (a slot
    whose ops are all zero ops stays uniform)."""
    if none_weight == 1.0:
        return {name: torch.randint(len(slot.ops), (slot.rows,), generator=gen).tolist()
                for name, slot in net.slots.items()}
    flags = zero if zero is not None else zero_ops(net)
    path = {}
    for name, slot in net.slots.items():
        weights = torch.tensor([none_weight if z else 1.0 for z in flags.get(name, [False] * len(slot.ops))])
        if float(weights.sum()) <= 0.0:
            weights = torch.ones(len(slot.ops))
        path[name] = torch.multinomial(weights, slot.rows, replacement=True, generator=gen).tolist()
    return path


def set_path(net: Supernet, path: dict[str, list[int]], device: torch.device) -> None:
    """Make the next ``net.network(x)`` run the single path ``path`` (slot -> op index per row) with weight 1."""
    net.holder.edges = {}
    net.holder.index = {name: list(rows) for name, rows in path.items()}
    net.holder.weights = {name: F.one_hot(torch.tensor(rows), len(net.slots[name].ops)).float().to(device)
                          for name, rows in path.items()}


def run_spos_training(spec: SposTraining, on_epoch: JobProgress | None = None) -> SharedWeights:
    """Train (or continue training) the supernet ``spec`` describes and return its :class:`SharedWeights`;
    ``on_epoch`` receives each epoch's record after its checkpoint is written. A
    :class:`nas.trials.protocols.JobRunner`. :class:`ConfigError` for a task the space cannot take or a checkpoint
    of other settings."""
    cfg = spec.config
    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = resolve_device(cfg.device)
    files = spec.storage()
    task = spec.data if spec.data is not None else load_task(spec.task, seed=spec.seed, **spec.task_options)
    if spec.space.input_kind != task.kind:
        raise ConfigError(f"space {spec.space.name!r} builds {spec.space.input_kind} models but task {spec.task!r} "
                          f"holds {task.kind} data; pick a matching space or task")
    if task.regression:
        raise ConfigError(f"evaluator.task = {spec.task!r} is a regression task; the weight_sharing evaluator trains "
                          "its supernet on class labels: use a classification task or the train evaluator")
    x = torch.as_tensor(task.x_train, dtype=torch.float32, device=device)
    y = torch.as_tensor(task.y_train, dtype=torch.long, device=device)
    net = build_supernet(spec.space, task.input_shape, task.num_classes, seed=spec.seed).to(device)
    weights = net.weight_parameters()
    opt = torch.optim.SGD(weights, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, eta_min=0.0)
    state: dict[str, Any] = {"epoch": 0, "history": [], "cpu": 0.0, "wall": 0.0}
    saved = files.read(spec.CHECKPOINT)
    if saved is not None:
        state = _load(spec, saved, net, opt, sched)
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        t0, c0 = time.perf_counter(), time.process_time()
        record = {"epoch": epoch, **_epoch(spec, net, opt, x, y, epoch, device), "lr": sched.get_last_lr()[0]}
        sched.step()
        if not math.isfinite(record["train_loss"]):
            raise ConfigError(f"the supernet training diverged in epoch {epoch} (loss {record['train_loss']}); "
                              "lower evaluator.options.supernet_lr")
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["cpu"] += time.process_time() - c0
        state["wall"] += time.perf_counter() - t0
        _save(spec, net, opt, sched, state)
        if on_epoch is not None:
            on_epoch(record)
    macro = {name: slot.macro for name, slot in net.slots.items() if slot.macro is not None}
    return SharedWeights(weights={k: v.detach().cpu().clone() for k, v in net.network.state_dict().items()},
                         sites=mixed_sites(net), slots={k: list(s.ops) for k, s in net.slots.items()}, macro=macro,
                         edges={k: list(s.edges) for k, s in net.slots.items() if s.macro is None},
                         history=state["history"], epochs_run=state["epoch"], cpu_seconds=round(state["cpu"], 2),
                         wall_seconds=round(state["wall"], 2))


def _epoch(spec: SposTraining, net: Supernet, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
           epoch: int, device: torch.device) -> dict[str, float]:
    cfg = spec.config
    gen = torch.Generator().manual_seed(_epoch_seed(spec.seed, epoch))
    order = torch.randperm(len(y), generator=gen).to(device)
    bs = cfg.batch_size
    loss_sum = correct = seen = 0.0
    zero = zero_ops(net)
    net.train()
    for step in range(max(1, math.ceil(len(y) / bs))):
        idx = order[step * bs:(step + 1) * bs]
        set_path(net, sample_path(net, gen, cfg.none_weight, zero), device)
        opt.zero_grad(set_to_none=True)
        logits = net.network(x[idx])
        loss = F.cross_entropy(logits, y[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), cfg.grad_clip)
        opt.step()
        loss_sum += loss.item() * len(idx)
        correct += float((logits.argmax(1) == y[idx]).sum())
        seen += len(idx)
        if not math.isfinite(loss.item()):
            break
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen}


def with_data(spec: SposTraining) -> SposTraining:
    """``spec`` carrying its task's data, loaded here (on the driver), so the job reads no file where it runs."""
    if spec.data is not None:
        return spec
    return dataclasses.replace(spec, data=load_task(spec.task, seed=spec.seed, **spec.task_options))


def _load(spec: SposTraining, data: bytes, net: Supernet, opt: Any, sched: Any) -> dict[str, Any]:
    where = spec.storage().where(spec.CHECKPOINT)
    try:
        saved = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:
        raise ConfigError(f"{where} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                          "delete it to train the supernet afresh") from None
    if saved.get("config") != spec.config.to_dict() or saved.get("seed") != spec.seed:
        raise ConfigError(f"{where} was written by a supernet training with other settings; delete it to train "
                          "the supernet afresh")
    net.load_state_dict(saved["supernet"])
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    return dict(saved["state"])


def _save(spec: SposTraining, net: Supernet, opt: Any, sched: Any, state: dict[str, Any]) -> None:
    saved = {"config": spec.config.to_dict(), "seed": spec.seed, "supernet": net.state_dict(),
             "opt": opt.state_dict(), "sched": sched.state_dict(), "state": state}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    files = spec.storage()
    files.write(spec.CHECKPOINT, buffer.getvalue())
    files.write(spec.HISTORY, json.dumps(state["history"], indent=1).encode())
