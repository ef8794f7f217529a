"""One-shot (gradient) search: train a space's supernet, checkpointed every epoch, and derive a member.

:class:`~nas.oneshot.spec.SupernetSearch` (:mod:`nas.oneshot.spec`, no torch) describes a search: the space, the
task, the seed and the :class:`~nas.oneshot.config.OneShotConfig` settings; a one-shot strategy builds it.
:func:`run_supernet_search` is its runner, the training code, which only the runtime calls (in-process, or as one
Ray task). The search splits the task's *training* split in two halves, one for the weights and one for the
architecture parameters (the validation split stays untouched for ranking the derived candidates after they are
retrained), and alternates an architecture step (:mod:`nas.oneshot.architect`) with a
weight step, DARTS-style. Algorithms:

* ``darts`` -- softmax mixing, first or second order (Liu et al., 2019);
* ``gdas`` -- one Gumbel-sampled op per edge and step, temperature annealed from ``tau_max`` to ``tau_min``
  (Dong & Yang, 2019);
* ``beta_darts`` -- DARTS plus the beta-decay regulariser ``mean_rows logsumexp(alpha)`` on the
  architecture step, its weight growing linearly from 0 to ``beta_weight`` (Ye et al., 2022).

Every epoch the search derives the current member and records the *collapse signals*: the share of
parameter-free ops (none, skip, pooling) in the derived cells and the normalised entropy of the op weights.
When the share reaches ``collapse_threshold`` (after ``collapse_warmup`` epochs, default a quarter of
the search: early on every supernet favours parameter-free ops) the guard warns, and with
``collapse_action: stop`` ends the search and derives from the last healthy epoch, or with ``regularize``
switches on (or doubles) the beta-decay regulariser. A killed search continues from its last checkpoint
(``checkpoint.pt`` in the search's files: its directory, or the driver's or the configured storage reached from a
worker on any node, see :class:`~nas.trials.protocols.JobFiles`) with identical results: data order and Gumbel
samples derive from the seed and epoch, and optimiser, scheduler and generator states are saved.
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
from nas.evaluation.device import autocast
from nas.evaluation.tasks import load_task
from nas.evaluation.training import resolve_device
from nas.oneshot.architect import Architect
from nas.oneshot.config import place, proxy_space
from nas.oneshot.outcome import SearchOutcome
from nas.oneshot.spec import SupernetSearch
from nas.oneshot.supernet import alpha_entropy, build_supernet, largest_weight, parameter_free_share
from nas.trials.protocols import JobFiles, JobProgress

__all__ = ["run_supernet_search", "with_data"]


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, 7, epoch]).generate_state(1)[0])


def run_supernet_search(search: SupernetSearch, on_epoch: JobProgress | None = None) -> SearchOutcome:
    """Run ``search`` (or continue it from its last checkpoint) and return its :class:`SearchOutcome`, also
    written to ``result.json`` in its files; ``on_epoch`` receives each epoch's record after its checkpoint is
    written. A :class:`nas.trials.protocols.JobRunner`. Raises :class:`ConfigError` for a task whose data the
    space cannot take, or a checkpoint of other settings."""
    cfg = search.config
    if search.threads:
        torch.set_num_threads(search.threads)
    device = resolve_device(cfg.device)
    files = search.storage()
    proxy = proxy_space(search.space, search.config.space_options)
    task = search.data if search.data is not None else load_task(search.task, seed=search.seed,
                                                                 **search.task_options)
    if proxy.input_kind != task.kind:
        raise ConfigError(f"space {proxy.name!r} builds {proxy.input_kind} models but task {search.task!r} holds "
                          f"{task.kind} data; pick a matching space or task")
    order = np.random.default_rng(search.seed).permutation(len(task.y_train))
    cut = max(1, min(len(order) - 1, round(cfg.train_portion * len(order))))
    data = [(torch.as_tensor(task.x_train[idx], dtype=torch.float32, device=device),
             torch.as_tensor(task.y_train[idx], dtype=torch.long, device=device))
            for idx in (order[:cut], order[cut:])]
    net = build_supernet(proxy, task.input_shape, task.num_classes, seed=search.seed,
                         partial_channels=cfg.partial_channels,
                         edge_normalization=cfg.edge_normalization).to(device)
    weights, alphas = net.weight_parameters(), net.arch_parameters()
    w_opt = torch.optim.SGD(weights, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, cfg.epochs, eta_min=cfg.lr_min)

    def beta_decay() -> torch.Tensor:
        return torch.stack([torch.logsumexp(a, dim=-1).mean() for a in alphas]).mean()

    bs = cfg.batch_size
    steps_per_epoch = max(1, min(math.ceil(len(data[0][1]) / bs), math.ceil(len(data[1][1]) / bs)))
    arch_lr = cfg.arch_lr_for(steps_per_epoch)
    architect = Architect(net, weights, alphas, lr=arch_lr, weight_decay=cfg.arch_weight_decay,
                          order=cfg.order, regulariser=beta_decay, weight_optimizer=w_opt,
                          amp=lambda: autocast(device, cfg.precision))
    state: dict[str, Any] = {"epoch": 0, "history": [], "warnings": [], "healthy": None, "boost": 0.0,
                             "cpu": 0.0, "wall": 0.0, "stopped": None}
    saved = files.read(search.CHECKPOINT)
    if saved is not None:
        state = _load(search, files, saved, net, w_opt, architect, sched)
    cells = proxy.searched_cells
    while state["epoch"] < cfg.epochs and state["stopped"] is None:
        epoch = state["epoch"]
        t0, c0 = time.perf_counter(), time.process_time()
        before = net.alpha_arrays()
        net.mode = "gumbel" if cfg.algorithm == "gdas" else "softmax"
        net.tau = cfg.tau_max - (cfg.tau_max - cfg.tau_min) * epoch / max(1, cfg.epochs - 1)
        reg = (cfg.beta_weight * epoch / max(1, cfg.epochs - 1) if cfg.algorithm == "beta_darts" else 0.0)
        reg += state["boost"]
        xi = sched.get_last_lr()[0]
        stats = _epoch(search, net, architect, w_opt, data, epoch, xi, reg)
        sched.step()
        if not math.isfinite(stats["train_loss"]) or not math.isfinite(stats["search_val_loss"]):
            state["stopped"] = f"diverged in epoch {epoch} (loss {stats['train_loss']})"
            net.load_arrays(before)
            break
        current = net.alpha_arrays()
        derived = proxy.derive(current)
        share = parameter_free_share(derived, cells)
        record: dict[str, Any] = {"epoch": epoch, **stats, "param_free_share": share,
                                  "entropy": alpha_entropy(current), "max_weight": largest_weight(current),
                                  "tau": net.tau if net.mode == "gumbel" else None, "reg_weight": reg, "lr": xi,
                                  "arch_lr": arch_lr, "derived_hash": derived.canonical_hash()}
        warmup = cfg.epochs // 4 if cfg.collapse_warmup is None else cfg.collapse_warmup
        if epoch >= warmup and share >= cfg.collapse_threshold:
            warning = (f"epoch {epoch}: {share:.0%} of the derived cell's edges are parameter-free "
                       f"(threshold {cfg.collapse_threshold:.0%}): the search may be collapsing")
            state["warnings"].append(warning)
            record["warning"] = warning
            if cfg.collapse_action == "stop":
                state["stopped"] = f"collapse guard: {warning}"
            elif cfg.collapse_action == "regularize":
                state["boost"] = max(2.0 * state["boost"], cfg.beta_weight, 1.0)
        else:
            state["healthy"] = {k: v.tolist() for k, v in current.items()}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        state["cpu"] += time.process_time() - c0
        state["wall"] += time.perf_counter() - t0
        _save(search, files, net, w_opt, architect, sched, state)
        if on_epoch is not None:
            on_epoch(record)
    return _finish(search, proxy, net, state)


def _epoch(search: SupernetSearch, net: Any, architect: Any, w_opt: Any,
           data: list[tuple[torch.Tensor, torch.Tensor]], epoch: int, xi: float | torch.Tensor,
           reg: float) -> dict[str, float]:
    cfg = search.config
    (xw, yw), (xa, ya) = data
    gen = torch.Generator().manual_seed(_epoch_seed(search.seed, epoch))
    pw = torch.randperm(len(yw), generator=gen).to(yw.device)
    pa = torch.randperm(len(ya), generator=gen).to(ya.device)
    bs = cfg.batch_size
    steps = max(1, min(math.ceil(len(yw) / bs), math.ceil(len(ya) / bs)))
    sums = {"train_loss": 0.0, "train_acc": 0.0, "search_val_loss": 0.0, "search_val_acc": 0.0}
    seen_w = seen_a = 0
    net.train()
    for step in range(steps):
        iw, ia = pw[step * bs:(step + 1) * bs], pa[step * bs:(step + 1) * bs]
        if len(ia) == 0:
            ia = pa[:bs]
        train, val = (xw[iw], yw[iw]), (xa[ia], ya[ia])
        loss_a, logits_a = architect.step(train, val, xi=xi, weight_decay=cfg.weight_decay, reg_weight=reg)
        w_opt.zero_grad(set_to_none=True)
        with autocast(xw.device, cfg.precision):
            logits = net(train[0])
            loss = F.cross_entropy(logits, train[1])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), cfg.grad_clip)
        w_opt.step()
        n, m = len(iw), len(ia)
        sums["train_loss"] += loss.item() * n
        sums["train_acc"] += float((logits.argmax(1) == train[1]).sum())
        sums["search_val_loss"] += loss_a * m
        sums["search_val_acc"] += float((logits_a.argmax(1) == val[1]).sum())
        seen_w, seen_a = seen_w + n, seen_a + m
        if not math.isfinite(loss.item()) or not math.isfinite(loss_a):
            break
    return {"train_loss": sums["train_loss"] / seen_w, "train_acc": 100.0 * sums["train_acc"] / seen_w,
            "search_val_loss": sums["search_val_loss"] / seen_a,
            "search_val_acc": 100.0 * sums["search_val_acc"] / seen_a}


def with_data(search: SupernetSearch) -> SupernetSearch:
    """``search`` carrying its task's data, loaded here (on the driver): the job then reads no file of the
    task where it runs, and the data go to that worker once, with the job."""
    if search.data is not None:
        return search
    return dataclasses.replace(search, data=load_task(search.task, seed=search.seed, **search.task_options))


def _load(search: SupernetSearch, files: JobFiles, data: bytes, net: Any, w_opt: Any, architect: Any,
          sched: Any) -> dict[str, Any]:
    """Restore every state saved by :func:`_save` (``data``, the checkpoint's bytes); returns the loop state.
    Refuses a checkpoint of other settings or one that cannot be read, saying how to start afresh."""
    ckpt = files.where(search.CHECKPOINT)
    try:
        saved = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:
        raise ConfigError(f"{ckpt} cannot be read ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                          "delete it to start the supernet search afresh") from None
    if {"precision": "fp32", **saved["config"]} != search.config.to_dict() or saved["seed"] != search.seed:
        raise ConfigError(f"{ckpt} was written by a search with other settings; delete it to "
                          "start the supernet search afresh")
    net.load_state_dict(saved["supernet"])
    w_opt.load_state_dict(saved["w_opt"])
    architect.optimizer.load_state_dict(saved["a_opt"])
    sched.load_state_dict(saved["sched"])
    net.generator.set_state(saved["generator"])
    return saved["state"]


def _save(search: SupernetSearch, files: JobFiles, net: Any, w_opt: Any, architect: Any, sched: Any,
          state: dict[str, Any]) -> None:
    saved = {"config": search.config.to_dict(), "seed": search.seed, "supernet": net.state_dict(),
             "w_opt": w_opt.state_dict(), "a_opt": architect.optimizer.state_dict(),
             "sched": sched.state_dict(), "generator": net.generator.get_state(), "state": state}
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    files.write(search.CHECKPOINT, buffer.getvalue())
    files.write(search.HISTORY, json.dumps(state["history"], indent=1).encode())


def _finish(search: SupernetSearch, proxy: Any, net: Any, state: dict[str, Any]) -> SearchOutcome:
    current = {k: v.tolist() for k, v in net.alpha_arrays().items()}
    collapsed = state["stopped"] is not None and state["stopped"].startswith("collapse")
    chosen = state["healthy"] if collapsed and state["healthy"] is not None else current
    derived = place(search.space, proxy, proxy.derive({k: np.asarray(v) for k, v in chosen.items()}))
    outcome = SearchOutcome(algorithm=search.config.algorithm, arch=derived, alphas=chosen,
                            slots={name: list(slot.ops) for name, slot in net.slots.items()},
                            collapse_threshold=search.config.collapse_threshold, final_alphas=current,
                            history=state["history"], epochs_run=state["epoch"], stopped=state["stopped"],
                            warnings=state["warnings"], cpu_seconds=round(state["cpu"], 2),
                            wall_seconds=round(state["wall"], 2))
    search.storage().write(search.RESULT, json.dumps(outcome.to_dict(), indent=1).encode())
    return outcome
