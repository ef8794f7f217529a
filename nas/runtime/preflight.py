"""The preflight: what a search can see to be wrong before its first trial, refused before anything is written.

:func:`preflight` runs, in this order, and stops at the first problem with a :class:`~nas.core.errors.ConfigError`
naming the config field, the bad value and the fix (``nas`` exits 2):

1. every objective and constraint names a metric the evaluator produces (``score``, or one of the evaluator's
   declared :meth:`~nas.evaluation.evaluators.Evaluator.metric_names`; evaluators that declare none are not
   checked);
2. the task loads once with its options (``evaluator.task_options``), its data pass the checks of
   :func:`~nas.evaluation.tasks.load_task` (shapes, dtype, finite values, labels, samples per class and split,
   channels-last images) and its kind (image or sequence) is the one the space builds models for; data without
   labels pass only for the ``ssl`` evaluator, and an evaluator with a ``check_task(task)`` method (``ssl``: the
   pretext fits the data, a probe has labels) checks the loaded task;
3. one candidate of the space (``space.sample`` with the experiment's seed) compiles for the task's input and runs
   a forward and a backward pass on one batch of training data, on the CPU (a generator space's candidate maps one
   batch of latent vectors, with the batch's labels when conditional, to images of the task's shape);
4. the training's device settings fit where trials run (:func:`check_device_use`): ``train.precision: fp16`` needs
   CUDA on the workers (``execution.gpus_per_trial`` > 0 on Ray; a visible GPU for the local executor), and
   ``train.memory_format: channels_last`` needs image data, and ``peak_gpu_memory_mb`` in an objective or a
   constraint needs GPUs.
5. so does every baseline (``baselines``; a reference model of the wrong input kind is refused by name).
   With ``evaluator.init_from``, the weights load (``torch.load(weights_only=True)``) and are copied into that
   candidate where names and shapes allow (:func:`check_init_from`); how many tensors fit is in the report's notes.
6. the resources: the experiment then calls :func:`start_executor`, which starts the executor the config asks for.
   For Ray that connects to the cluster (or starts the embedded one) once and checks the request against its live
   nodes: a trial no node can hold (``gpus_per_trial: 3`` without a GPU, ``cpus_per_trial`` above every node's) is
   a :class:`ConfigError` naming what the cluster has, and the Ray it started is shut down again. The experiment
   runs its trials on that executor, so Ray is not started twice.

:meth:`Experiment.create <nas.runtime.experiment.Experiment.create>` calls it before it creates the experiment's
directory, and :meth:`Experiment.open <nas.runtime.experiment.Experiment.open>` before it changes anything (the
data, the options or the cluster may have changed since the experiment was created); it is usable alone
(``preflight(load_config(path))``). It writes nothing, and leaves torch's global random state as it found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.cluster.shipping import check_py_modules, user_modules
from nas.core.errors import ConfigError, NASError, did_you_mean
from nas.evaluation.evaluators import TrainEvaluator
from nas.evaluation.tasks import TASKS, Task, check_task_options, load_task
from nas.graph import references
from nas.graph.architecture import BUILDER_KEY
from nas.graph.builder import user_error_line
from nas.graph.compiler import build_model
from nas.runtime.config import Components, ExecutionConfig, ExperimentConfig, build
from nas.runtime.events import Event
from nas.runtime.executors import LocalExecutor, RayExecutor
from nas.transfer import apply_mode, copy_matching
from nas.trials.objectives import parse_constraints, parse_objectives
from nas.trials.protocols import Evaluator, Executor
from search_spaces.base import SearchSpace
from search_spaces.gan import GanSpace

__all__ = ["preflight", "PreflightReport", "check_metrics", "check_task", "check_candidate", "check_device_use",
           "check_baselines", "check_init_from", "start_executor",
           "BATCH"]

#: samples of the batch the candidate runs forward and backward on
BATCH = 8


@dataclass(frozen=True)
class PreflightReport:
    """What the preflight checked: the task (None without one), the input and the outputs the candidate was built
    for (``num_classes``: classes, or targets when ``problem`` is ``"regression"``), the candidate's hash, the
    metrics the evaluator declares (None: undeclared) and the time it took."""

    task: str | None = None
    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    problem: str = "classification"
    candidate: str | None = None
    metrics: frozenset[str] | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        parts = [f"task {self.task} {self.input_shape}, "
                 f"{_outputs(self.num_classes, self.problem == 'regression')}" if self.task else "no task"]
        if self.candidate:
            parts.append(f"candidate {self.candidate[:12]} ran forward and backward")
        return "preflight: " + "; ".join(parts) + f" ({self.seconds:.1f} s)"


def preflight(cfg: ExperimentConfig, components: Components | None = None) -> PreflightReport:
    """Check ``cfg`` (with its built ``components``; built here when not given) as described in the module
    docstring. Raises :class:`ConfigError`; returns what it checked."""
    start = time.perf_counter()
    parts = components if components is not None else build(cfg)
    metrics = check_metrics(cfg, parts.evaluator)
    task = check_task(cfg, parts.space)
    shape: tuple[int, ...] | None = None
    classes: int | None = None
    evaluator_check = getattr(parts.evaluator, "check_task", None)
    if task is not None and callable(evaluator_check):  # the evaluator's own demands on the data (ssl: pretext, probe)
        evaluator_check(task)
    if task is not None:
        shape, classes = task.input_shape, task.num_classes
        x, y = task.x_train[:BATCH], task.y_train[:BATCH]
        if not task.labeled:  # unlabeled (ssl): the candidate is checked as a 2-output network
            classes, y = 2, np.zeros(len(x), dtype=np.int64)
    elif cfg.evaluator.options.get("input_shape") is not None:  # a data-free proxy: its own input
        shape = tuple(int(s) for s in cfg.evaluator.options["input_shape"])
        classes = int(cfg.evaluator.options.get("num_classes", 10))
        rng = np.random.default_rng(cfg.seed)
        x = rng.standard_normal((2, *shape)).astype(np.float32)
        y = rng.integers(classes, size=2)
    candidate = None
    notes: tuple[str, ...] = ()
    if shape is not None and classes is not None:
        candidate = check_candidate(cfg, parts.space, x, y, classes, what=_input_name(cfg, shape))
        check_baselines(cfg, x, y, classes, what=_input_name(cfg, shape), kind=None if task is None else task.kind,
                        space=parts.space)
        note = check_init_from(cfg, parts.space, parts.evaluator, shape, classes)
        notes = (note,) if note else ()
    check_device_use(cfg, parts.evaluator, task)
    return PreflightReport(task=cfg.evaluator.task, input_shape=shape, num_classes=classes,
                           problem="classification" if task is None else task.problem, candidate=candidate,
                           metrics=metrics, seconds=time.perf_counter() - start, notes=notes)


def _outputs(n: int | None, regression: bool) -> str:
    """``10 classes``, or ``1 target`` / ``3 targets`` for regression."""
    if regression:
        return f"{n} target" + ("" if n == 1 else "s")
    return f"{n} classes"


def check_metrics(cfg: ExperimentConfig, evaluator: Evaluator) -> frozenset[str] | None:
    """Every objective and constraint names ``score`` or a metric ``evaluator`` declares; returns the declared
    metrics (None when the evaluator declares none: then nothing is checked)."""
    declared = getattr(evaluator, "metric_names", None)
    produced: frozenset[str] | None = declared() if callable(declared) else None
    if produced is None:
        return None
    known = ["score", *sorted(produced)]

    def refuse(where: str, metric: str) -> ConfigError:
        return ConfigError(f"{where}: the {evaluator.name!r} evaluator produces no metric {metric!r}"
                           + did_you_mean(metric, known) + f"; it produces {', '.join(known)}: name one of them"
                           + (" (latency_ms is measured when evaluator.options.latency_runs > 0)"
                              if metric == "latency_ms" else ""))

    for i, (spec, objective) in enumerate(zip(cfg.objectives, parse_objectives(cfg.objectives))):
        if objective.metric != "score" and objective.metric not in produced:
            raise refuse(f"objectives[{i}] = {spec!r}", objective.metric)
    for constraint in parse_constraints(cfg.constraints):
        if constraint.metric != "score" and constraint.metric not in produced:
            raise refuse(f"constraints.{constraint.metric}", constraint.metric)
    return produced


def check_task(cfg: ExperimentConfig, space: SearchSpace) -> Task | None:
    """The config's task (None without one), loaded once with its options and checked against the space."""
    ev = cfg.evaluator
    if ev.task is None:
        return None
    options: dict[str, Any] = dict(ev.task_options)
    check_task_options(options, "evaluator.task_options", ev.task)
    where = f"evaluator.task = {ev.task!r}" + (f" (task_options {options})" if options else "")
    labels = "optional" if ev.name == "ssl" else "required"  # self-supervised: data without y is fine
    try:
        task = load_task(ev.task, seed=cfg.seed, labels=labels, **options)
    except NASError as err:  # an error that names the task already is not prefixed twice
        raise ConfigError(str(err) if str(err).startswith("evaluator.task = ") else f"{where}: {err}") from None
    except Exception as err:  # a plugin's loader failing: the task cannot run any trial
        raise ConfigError(f"{where}: loading the data failed with {type(err).__name__}: {_first_line(err)}; "
                          "fix the task's loader or its options") from None
    if task.kind != space.input_kind:
        raise ConfigError(f"{where} holds {task.kind} data {task.input_shape} but space {space.name!r} builds "
                          f"{space.input_kind} models; pick a matching space or task (`nas spaces`, `nas tasks`)")
    return task


def check_candidate(cfg: ExperimentConfig, space: SearchSpace, x: np.ndarray, y: np.ndarray, num_classes: int,
                    what: str = "the input") -> str:
    """Compile one candidate of ``space`` (``space.sample`` with ``cfg.seed``) for ``x``'s sample shape and
    ``num_classes``, and run it forward and backward on ``(x, y)`` on the CPU; returns its canonical hash."""
    shape = tuple(x.shape[1:])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        arch = space.sample(np.random.default_rng(cfg.seed))
        step = "compile"
        try:
            model: nn.Module = space.compiler()(arch, shape, num_classes)
            model.train()
            step = "run forward and backward"
            if space.model_kind == "generator":
                _generator_forward_backward(model, x, y)
            else:
                _forward_backward(model, x, y, num_classes)
        except Exception as err:
            # a define-by-run model: show the line of the user's builder or module that raised
            cause = (user_error_line(err) if BUILDER_KEY in arch.macro
                     else f"{type(err).__name__}: {_first_line(err)}")
            raise ConfigError(
                f"space.name = {cfg.space.name!r}" + (f" (options {dict(cfg.space.options)})" if cfg.space.options
                                                      else "")
                + f": a sampled candidate (seed {cfg.seed}) cannot {step} for {what} {shape} with "
                f"{_outputs(num_classes, y.dtype.kind == 'f')}: {cause}; choose a space or space options that accept "
                "this input, or reshape the data") from None
    return arch.canonical_hash()


def check_init_from(cfg: ExperimentConfig, space: SearchSpace, evaluator: Evaluator, shape: tuple[int, ...],
                    num_classes: int) -> str | None:
    """With ``evaluator.init_from``: read the weights (a :class:`ConfigError` naming the field when they cannot be
    read with ``torch.load(weights_only=True)``), copy them into the preflight's candidate and freeze what
    ``evaluator.init_mode`` freezes (``init_freeze`` beyond the candidate's cells is refused). Returns a note of how
    many tensors fit, None without ``init_from``."""
    if cfg.evaluator.init_from is None or not isinstance(evaluator, TrainEvaluator):
        return None
    state = evaluator.init_weights()
    assert state is not None  # init_from is set
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = space.compiler()(space.sample(np.random.default_rng(cfg.seed)), shape, num_classes)
    copied = copy_matching(model, state)
    apply_mode(model, evaluator.init, copied)
    return f"init_from {cfg.evaluator.init_from}: {copied.summary()} into the sampled candidate"


def check_device_use(cfg: ExperimentConfig, evaluator: Evaluator, task: Task | None,
                     cuda_here: bool | None = None) -> None:
    """The evaluator's training settings (when it trains) against where trials run and the task's data:
    ``fp16`` with ``device: auto`` needs GPUs given to the trials (``execution.gpus_per_trial`` > 0 on Ray, CUDA
    visible here for the local executor; ``device: cpu`` with fp16 is refused by the training config itself);
    ``memory_format: channels_last`` needs image data; an objective or constraint on ``peak_gpu_memory_mb`` needs
    GPUs as fp16 does. ``cuda_here`` overrides ``torch.cuda.is_available()``."""
    train_cfg = getattr(evaluator, "train_config", None)
    if train_cfg is None:
        return
    ex = cfg.execution
    cuda_here = torch.cuda.is_available() if cuda_here is None else cuda_here
    if train_cfg.precision == "fp16" and train_cfg.device == "auto":
        if ex.executor == "ray" and ex.gpus_per_trial <= 0:
            raise ConfigError("evaluator.train.precision = 'fp16' needs a GPU per trial but execution.gpus_per_trial "
                              "= 0; give each trial a GPU (e.g. gpus_per_trial: 0.5 shares one between two), or use "
                              "precision 'bf16' (mixed precision on the CPU too) or 'fp32'")
        if ex.executor == "local" and not cuda_here:
            raise ConfigError("evaluator.train.precision = 'fp16' needs CUDA but the local executor runs trials here, "
                              "where no CUDA device is visible; use precision 'bf16' (mixed precision on the CPU) "
                              "or 'fp32', or run on a GPU machine")
    gpus = ex.gpus_per_trial > 0 if ex.executor == "ray" else cuda_here
    named = [*(o.metric for o in parse_objectives(cfg.objectives)),
             *(c.metric for c in parse_constraints(cfg.constraints))]
    if "peak_gpu_memory_mb" in named and not gpus:
        raise ConfigError("an objective or constraint names peak_gpu_memory_mb, which trials on CUDA report, but "
                          + ("execution.gpus_per_trial = 0" if ex.executor == "ray" else
                             "the local executor runs trials here, where no CUDA device is visible")
                          + "; give the trials GPUs or constrain params, flops or latency_ms instead")
    if train_cfg.memory_format == "channels_last" and task is not None and task.kind != "image":
        raise ConfigError(f"evaluator.train.memory_format = 'channels_last' lays out image tensors (NHWC) but task "
                          f"{cfg.evaluator.task!r} holds {task.kind} data; remove the option (or use 'contiguous')")


def _forward_backward(model: nn.Module, x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    """One training-mode forward and backward pass of ``model`` on ``(x, y)``: cross-entropy on labels, mse on a
    regression task's float targets ``(N, targets)``; raises ValueError for a wrong output shape or a non-finite
    loss."""
    model.train()
    out = model(torch.as_tensor(x, dtype=torch.float32))
    regression = y.dtype.kind == "f"  # a regression task's standardised targets (N, targets)
    if tuple(out.shape) != (len(x), num_classes):
        raise ValueError(f"its output has shape {tuple(out.shape)}, not (batch, "
                         f"{'targets' if regression else 'classes'}) = {(len(x), num_classes)}")
    if regression:
        loss = nn.functional.mse_loss(out, torch.as_tensor(y, dtype=torch.float32).reshape(out.shape))
    else:
        loss = nn.functional.cross_entropy(out, torch.as_tensor(y, dtype=torch.long))
    loss.backward()
    if not torch.isfinite(loss):
        raise ValueError(f"its loss on one batch is {loss.item()}")


def _generator_forward_backward(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    """One training-mode pass of a generator (``latent_dim`` attribute): latent vectors (and the labels ``y`` when
    it is conditional) -> images of ``x``'s sample shape, then a backward pass; ValueError otherwise."""
    z = torch.randn(len(x), int(getattr(model, "latent_dim")))  # noqa: B009
    args = [z] + ([torch.as_tensor(y, dtype=torch.long)] if getattr(model, "conditional", False) else [])
    out = model(*args)
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"it generates images of shape {tuple(out.shape)[1:]}, not the task's {tuple(x.shape)[1:]}")
    out.float().mean().backward()
    if not torch.isfinite(out).all():
        raise ValueError("it generates non-finite pixels")


def check_baselines(cfg: ExperimentConfig, x: np.ndarray, y: np.ndarray, num_classes: int, what: str = "the input",
                    kind: str | None = None, space: SearchSpace | None = None) -> None:
    """Every baseline of ``cfg`` is a reference of the data's ``kind`` (when known) that compiles for ``x``'s
    sample shape and ``num_classes`` and runs forward and backward on ``(x, y)`` on the CPU. A generator search's
    baselines are references of its ``space`` (:class:`~search_spaces.gan.GanSpace`), compiled by it and run
    forward and backward as its candidates are."""
    shape = tuple(x.shape[1:])
    for i, name in enumerate(cfg.baselines):
        where = f"baselines[{i}] = {name!r}"
        if isinstance(space, GanSpace):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed)
                step = "compile"
                try:
                    generator = space.compiler()(space.reference(name), shape, num_classes)
                    step = "run forward and backward"
                    _generator_forward_backward(generator.train(), x, y)
                except Exception as err:
                    raise ConfigError(f"{where}: the reference generator cannot {step} for {what} {shape}: "
                                      f"{type(err).__name__}: {_first_line(err)}; remove it from `baselines` or "
                                      "change the space's options") from None
            continue
        if kind is not None and references.input_kind(name) != kind:
            fitting = [n for n in references.list_references() if references.input_kind(n) == kind]
            raise ConfigError(f"{where} is a {references.input_kind(name)} model but {what} {shape} is {kind} data; "
                              f"use a {kind} reference: {', '.join(fitting)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            step = "compile"
            try:
                model = build_model(references.get(name), shape, num_classes)
                step = "run forward and backward"
                _forward_backward(model, x, y, num_classes)
            except Exception as err:
                raise ConfigError(f"{where}: the reference cannot {step} for {what} {shape} with "
                                  f"{_outputs(num_classes, y.dtype.kind == 'f')}: {type(err).__name__}: "
                                  f"{_first_line(err)}; remove it from `baselines` "
                                  "or pick another (`nas references`)") from None


def start_executor(execution: ExecutionConfig, notify: Callable[[Event], None] | None = None,
                   parts: Iterable[object] = ()) -> Executor:
    """The executor ``execution`` asks for, started (step 6 of the module docstring); ``notify`` gets the Ray
    executor's notices (workers limited to what fits, waiting for placement, a node lost; kept until it is set).
    A Ray executor ships ``execution.py_modules`` and the user's modules that define ``parts`` (the experiment's
    space, strategy and evaluator; see :func:`shipped_modules`) to a cluster. Raises :class:`ConfigError` when no
    node of the cluster can hold a trial; the caller shuts the executor down."""
    ex = execution
    if ex.executor == "local":
        return LocalExecutor()
    return RayExecutor(workers=ex.workers, cpus_per_trial=ex.cpus_per_trial, gpus_per_trial=ex.gpus_per_trial,
                       address=ex.address, max_retries=ex.max_retries, threads_per_trial=ex.threads_per_trial,
                       placement_timeout=ex.placement_timeout, notify=notify, ship_code=ex.ship_code,
                       py_modules=shipped_modules(execution, parts), runtime_env=ex.runtime_env)


def shipped_modules(execution: ExecutionConfig, parts: Iterable[object]) -> list[Any]:
    """What a Ray executor ships to a cluster besides our packages: ``execution.py_modules`` and the user's modules
    (not installed packages) that define the classes of ``parts`` (the experiment's space, strategy and evaluator)
    and the evaluator's task loader (:func:`nas.cluster.shipping.user_modules`)."""
    objects: list[Any] = []
    for part in parts:
        objects.append(type(part))
        task = getattr(part, "task_name", None)
        if isinstance(task, str) and task in TASKS:
            objects.append(TASKS.get(task).load)
    return [*check_py_modules(execution.py_modules), *user_modules(objects)]


def _input_name(cfg: ExperimentConfig, shape: tuple[int, ...]) -> str:
    if cfg.evaluator.task is not None:
        return f"the input of task {cfg.evaluator.task!r}"
    return "evaluator.options.input_shape ="


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else "(no message)"
