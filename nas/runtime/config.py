"""Experiment configuration: YAML validated into typed, frozen objects before anything starts.

Every problem raises :class:`~nas.core.errors.ConfigError` naming the field path (``strategy.options.population``),
the bad value and the fix (a close match for misspelt names). The config is turned into keyword arguments for
the space, strategy and evaluator here, in one place; nothing downstream sees the config tree.

Options are checked by the code that uses them: validation builds the space, the evaluator and the strategy
once. Building has no side effects (no file, database or Optuna study is created until a component is used), and
the components validation built are kept with the config (:func:`build` hands them out once, unused), so a
config that is loaded and then run builds each component exactly once.

A config file::

    name: quickstart
    seed: 0
    space: {name: nb201, options: {C: 8, N: 1}}
    strategy: {name: evolution, options: {population: 8, sample_size: 3}}
    evaluator: {name: train, task: digits, train: {epochs: 4}}
                                          # also init_from: PATH (an export folder or weights file every candidate
                                          # starts from where names and shapes allow), init_mode (full, features,
                                          # partial), init_freeze, init_body_lr_scale (see nas.transfer)
    searchable: {lr: [0.1, 0.05]}        # optional: training fields searched with the architecture
    objectives: [max:score]               # optional; e.g. [max:score, min:params]
    constraints: {params: {max: 200000}}  # optional; or a list of bounds: ["pixel3_latency <= 5"]
    early_stopping: {grace_epochs: 1, reduction_factor: 3}   # optional: ASHA over per-epoch validation (train
                                          # and ssl evaluators);
                                          # {name: hyperband, ...} for Hyperband (with strategy bohb: BOHB)
    budget: {max_trials: 16, max_seconds: 600}
    baselines: [lenet5, resnet18]         # optional: reference models trained beside the search (`nas references`)
    tracking: {optuna: true, tensorboard: true, mlflow: true}
                                          # optional: the search mirrored into an Optuna study (optuna.db, for
                                          # optuna-dashboard), TensorBoard events, MLflow runs (see nas.tracking)
    execution: {executor: ray, workers: 2, cpus_per_trial: 1, gpus_per_trial: 0, address: null}
                                          # also max_retries, threads_per_trial, placement_timeout (s, default 600);
                                          # on a cluster: ship_code (auto|always|never), py_modules, runtime_env,
                                          # storage (see nas.cluster)
    output: runs/quickstart
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nas.cluster.files import check_storage
from nas.cluster.shipping import SHIP_CODE, check_py_modules, check_runtime_env
from nas.core.checks import is_int, is_number
from nas.core.errors import ConfigError, NASError, did_you_mean
from nas.core.references import is_reference, module_file
from nas.evaluation.pruning import make_pruner
from nas.evaluation.tasks import task_kind, task_problem
from nas.graph import references
from nas.graph.nb201 import NB201_OPS
from nas.tracking.settings import TrackingSettings, resolve_tracking
from nas.trials.objectives import parse_constraints, parse_objectives
from nas.trials.protocols import JobContext, Space

# the `# lazy:` imports below keep this module (so the experiment, the view, `nas demo --print-config`) torch-free
if TYPE_CHECKING:  # torch and the strategies are imported only when a config is built
    from nas.evaluation.evaluators import Evaluator
    from search_spaces.base import SearchSpace
    from strategies.base import Strategy

__all__ = ["ExperimentConfig", "SpaceConfig", "StrategyConfig", "EvaluatorConfig", "BudgetConfig",
           "ExecutionConfig", "TrackingConfig", "Components", "load_config", "read_config", "parse_config", "build",
           "build_space",
           "build_strategy", "strategy_options", "resolve_storage", "build_evaluator", "build_job_context",
           "tracking_settings"]

#: the evaluators that train epoch by epoch with an early-stopping pruner (EpochPruning), so allow early_stopping
#: (and strategy bohb, which needs the Hyperband pruner)
EPOCH_EVALUATORS = ("train", "ssl")


@dataclass(frozen=True)
class SpaceConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyConfig:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    dedup: bool = True


@dataclass(frozen=True)
class EvaluatorConfig:
    name: str = "train"
    task: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    #: the validation score of the train evaluator (nas.evaluation.metrics); None: accuracy, or rmse for regression
    metric: str | None = None
    #: trained weights every candidate starts from where names and shapes allow (an export folder, a model folder
    #: or a weights file; train evaluator), and what of them is frozen: init_mode full|features|partial,
    #: init_freeze (cells frozen after the stem, partial), init_body_lr_scale (full); see nas.transfer
    init_from: str | None = None
    init_mode: str = "full"
    init_freeze: int | None = None
    init_body_lr_scale: float = 1.0
    #: weight inheritance (train evaluator): {epochs, keep, max_mb, lr_scale, schedule, zero_new_ops, morph,
    #: measure_start}, see nas.evaluation.inheritance; None: off
    inherit: dict[str, Any] | None = None


@dataclass(frozen=True)
class BudgetConfig:
    max_trials: int = 20
    max_seconds: float | None = None


@dataclass(frozen=True)
class ExecutionConfig:
    executor: str = "ray"
    workers: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    max_retries: int = 1
    threads_per_trial: int | None = None
    #: seconds trials may wait for Ray to place a worker with none running before the search stops (resumable)
    placement_timeout: float = 600.0
    #: ship this package and the user's modules to the workers (a Ray runtime env): auto (when joining an existing
    #: cluster), always, never (see nas.cluster.shipping)
    ship_code: str = "auto"
    #: more modules to ship: importable module names or local paths
    py_modules: list[str] = field(default_factory=list)
    #: a Ray runtime environment (pip, env_vars, ...) merged with the one that ships the code
    runtime_env: dict[str, Any] = field(default_factory=dict)
    #: where a job's files that must survive go (a pyarrow.fs URI or an absolute path all nodes mount); None: the
    #: experiment directory on the driver's machine, reached through Ray
    storage: str | None = None


@dataclass(frozen=True)
class TrackingConfig:
    """Where the search is mirrored (:mod:`nas.tracking`): each tool off (false), on with its default place in the
    experiment directory (true), or at a place given (an Optuna storage URL, a directory, MLflow settings)."""

    optuna: bool | str = False
    tensorboard: bool | str = False
    mlflow: bool | dict[str, Any] = False


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    space: SpaceConfig
    strategy: StrategyConfig
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    seed: int = 0
    searchable: dict[str, list[Any]] = field(default_factory=dict)
    objectives: list[str] = field(default_factory=lambda: ["max:score"])
    constraints: dict[str, dict[str, float]] | list[str] = field(default_factory=dict)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    early_stopping: dict[str, Any] | None = None
    output: str | None = None
    #: reference models (:mod:`nas.graph.references`) trained beside the search, see :mod:`nas.trials.baselines`
    baselines: list[str] = field(default_factory=list)
    #: the tools the search is mirrored into, see :mod:`nas.tracking`
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __getstate__(self) -> dict[str, Any]:  # copies and pickles carry the settings, not the built components
        return {k: v for k, v in self.__dict__.items() if k != _FRESH}

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with top-level or dotted (``budget.max_trials``) fields changed, validated again."""
        data = self.to_dict()
        for key, value in changes.items():
            node = data
            *parents, last = key.split(".")
            for p in parents:
                node = node[p]
            node[last] = value
        return parse_config(data)


# -- generic typed parsing ------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return "null" if tp is type(None) else getattr(tp, "__name__", str(tp))


# (type, accepts(value), convert(value), what the message says is expected); bool is not a number here
_SCALARS: tuple[tuple[type, Any, Any, str], ...] = (
    (dict, lambda v: isinstance(v, dict), dict, "a mapping"),
    (list, lambda v: isinstance(v, list), list, "a list"),
    (bool, lambda v: isinstance(v, bool), bool, "true or false"),
    (int, is_int, int, "an integer"),
    (float, is_number, float, "a number"),
    (str, lambda v: isinstance(v, str), str, "a string"),
)


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path} = {value!r}: expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    for kind, accepts, convert, expected in _SCALARS:
        if origin is kind or tp is kind:
            if not accepts(value):
                raise ConfigError(f"{path} = {value!r}: expected {expected}")
            return convert(value)
    return value


def _build(cls: Any, data: Any, path: str) -> Any:
    if isinstance(data, str) and cls in (SpaceConfig, StrategyConfig):
        data = {"name": data}  # shorthand: `strategy: evolution`
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key" + did_you_mean(key, fields)
                              + f"; allowed: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing (required)")
    return cls(**kwargs)


# -- semantic checks --------------------------------------------------------------------------------------
def _positive(value: float | None, path: str, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"{path} = {value!r}: must be {'>= 0' if allow_zero else '> 0'}")


def _check(cfg: ExperimentConfig) -> Components:
    """Every check of ``cfg``, option checks included (by building the components once); returns what it built."""
    if not cfg.name or "/" in cfg.name:
        raise ConfigError(f"name = {cfg.name!r}: give a non-empty name without '/'")
    _positive(cfg.seed, "seed", allow_zero=True)
    # a budget of 0 trials is a run of the baselines alone (`nas train`)
    _positive(cfg.budget.max_trials, "budget.max_trials", allow_zero=bool(cfg.baselines))
    _check_baselines(cfg)
    _positive(cfg.budget.max_seconds, "budget.max_seconds")
    ex = cfg.execution
    if ex.executor not in ("ray", "local"):
        raise ConfigError(f"execution.executor = {ex.executor!r}: use 'ray' or 'local'"
                          + did_you_mean(ex.executor, ["ray", "local"]))
    _positive(ex.workers, "execution.workers")
    _positive(ex.cpus_per_trial, "execution.cpus_per_trial")
    _positive(ex.gpus_per_trial, "execution.gpus_per_trial", allow_zero=True)
    _positive(ex.max_retries, "execution.max_retries", allow_zero=True)
    _positive(ex.threads_per_trial, "execution.threads_per_trial")
    _positive(ex.placement_timeout, "execution.placement_timeout")
    if ex.placement_timeout != ex.placement_timeout:
        raise ConfigError(f"execution.placement_timeout = {ex.placement_timeout}: give seconds, e.g. 600")
    if ex.executor == "local" and ex.workers != 1:
        raise ConfigError(f"execution.workers = {ex.workers}: the local executor runs one trial at a time; "
                          "set workers: 1 or use executor: ray")
    if ex.gpus_per_trial > 1 and ex.gpus_per_trial != int(ex.gpus_per_trial):
        raise ConfigError(f"execution.gpus_per_trial = {ex.gpus_per_trial}: fractions must be below 1")
    if ex.ship_code not in SHIP_CODE:
        raise ConfigError(f"execution.ship_code = {ex.ship_code!r}: use one of {', '.join(SHIP_CODE)}"
                          + did_you_mean(ex.ship_code, SHIP_CODE))
    check_py_modules(ex.py_modules)
    check_runtime_env(ex.runtime_env)
    if ex.storage is not None:
        check_storage(ex.storage)
    tracking_settings(cfg, Path(cfg.output or Path("runs") / cfg.name))
    # Build the pieces once, so that every option is checked by the code that uses it.
    try:
        parse_objectives(cfg.objectives)
        parse_constraints(cfg.constraints)
    except ConfigError as err:
        raise ConfigError(f"objectives/constraints: {err}") from None
    from strategies import strategy_class  # lazy: torch, measured 1.4 s / 880 modules

    try:
        one_shot = getattr(strategy_class(cfg.strategy.name), "one_shot", False)
    except NASError as err:
        raise _prefixed("strategy", err) from None
    if one_shot and cfg.evaluator.task is not None and task_problem(cfg.evaluator.task,
                                                                    cfg.evaluator.task_options) == "regression":
        raise ConfigError(f"strategy.name = {cfg.strategy.name!r}: one-shot supernets train on class labels; task "
                          f"{cfg.evaluator.task!r} is regression: choose a multi-trial strategy (random, evolution, "
                          "rl, optuna, gp_bo)")
    if one_shot and cfg.searchable:
        raise ConfigError(f"searchable: the one-shot strategy {cfg.strategy.name!r} searches the architecture only; "
                          "remove `searchable` or choose another strategy")
    built = _construct(cfg)
    space, strategy = built.space, built.strategy
    _check_generator_baselines(cfg, space, built.evaluator)
    _check_task_kind(space, cfg.strategy.options.get("task"), "strategy.options.task")
    # a strategy that needs a job done first (a one-shot supernet search) checks what the job needs as it describes
    # it (the job is not run, so its directory does not matter)
    strategy.job(build_job_context(cfg, Path(cfg.output or Path("runs") / cfg.name)))
    if cfg.early_stopping is not None:
        if cfg.evaluator.name not in EPOCH_EVALUATORS:
            raise ConfigError(f"early_stopping: only the {' and '.join(EPOCH_EVALUATORS)} evaluators train epoch by "
                              f"epoch, not evaluator.name = {cfg.evaluator.name!r}; remove early_stopping or use "
                              f"one of them")
        make_pruner(**pruner_options(cfg))
    if cfg.strategy.name == "bohb" and (cfg.early_stopping or {}).get("name") != "hyperband":
        raise ConfigError("strategy bohb is the model half of BOHB: its other half is the Hyperband pruner; add "
                          "`early_stopping: {name: hyperband}` (got early_stopping = "
                          f"{cfg.early_stopping!r})")
    return built


def pruner_options(cfg: ExperimentConfig) -> dict[str, Any]:
    """The options of the config's pruner (:func:`nas.evaluation.pruning.make_pruner`): ``early_stopping`` with,
    for Hyperband, ``max_epochs`` defaulting to ``evaluator.train.epochs`` and ``seed`` to the experiment seed."""
    options = dict(cfg.early_stopping or {})
    if options.get("name") == "hyperband":
        from nas.evaluation.training import TrainConfig  # lazy: torch, measured 1.4 s / 880 modules

        epochs = cfg.evaluator.train.get("epochs", TrainConfig.epochs)
        options.setdefault("max_epochs", epochs if is_int(epochs) and epochs >= 1 else TrainConfig.epochs)
        options.setdefault("seed", cfg.seed)
    return options


def _check_baselines(cfg: ExperimentConfig) -> None:
    """Every baseline names a reference once, and the evaluator trains models on a task of its input kind (the
    gan evaluator's baselines are the generator space's references, checked by :func:`_check_generator_baselines`
    once the space is built)."""
    if cfg.baselines and cfg.evaluator.name not in ("train", "gan"):
        raise ConfigError(f"baselines = {cfg.baselines}: baselines are trained, so they need the train evaluator "
                          f"(or the gan evaluator, for generator references), not evaluator.name = "
                          f"{cfg.evaluator.name!r}; remove `baselines` or use the train evaluator")
    for i, name in enumerate(cfg.baselines):
        if isinstance(name, str) and name in cfg.baselines[:i]:
            raise ConfigError(f"baselines[{i}] = {name!r}: listed twice; name each baseline once")
    if cfg.evaluator.name == "gan":
        return
    known = references.list_references()
    for i, name in enumerate(cfg.baselines):
        where = f"baselines[{i}] = {name!r}"
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: no such reference model" + did_you_mean(name, known)
                              + f"; known: {', '.join(known)} (`nas references`)")
    kind = task_kind(cfg.evaluator.task) if cfg.evaluator.task else None
    for i, name in enumerate(cfg.baselines):
        if kind is not None and references.input_kind(name) != kind:
            fitting = [n for n in known if references.input_kind(n) == kind]
            raise ConfigError(f"baselines[{i}] = {name!r} is a {references.input_kind(name)} model but "
                              f"evaluator.task = {cfg.evaluator.task!r} holds {kind} data; use a {kind} "
                              f"reference: {', '.join(fitting)}")


def _check_generator_baselines(cfg: ExperimentConfig, space: SearchSpace, evaluator: Evaluator) -> None:
    """With the gan evaluator, every baseline is a hand-designed generator the space offers (``space.reference``:
    the ``gan`` space's ``dcgan`` and ``wgan-gp``), can express with its op choices, and whose published training
    settings (``space.reference_training``, e.g. WGAN-GP's loss) go with the evaluator's other options."""
    if cfg.evaluator.name != "gan" or not cfg.baselines:
        return
    from nas.evaluation.gan import GanEvaluator  # lazy: torch, measured 1.4 s / 880 modules (loaded by now)
    from search_spaces.gan import GAN_REFERENCES, GanSpace  # lazy: torch, as above

    known = list(GAN_REFERENCES)
    for i, name in enumerate(cfg.baselines):
        where = f"baselines[{i}] = {name!r}"
        if not isinstance(space, GanSpace) or not isinstance(evaluator, GanEvaluator):
            raise ConfigError(f"{where}: space.name = {cfg.space.name!r} offers no reference generators; remove "
                              f"`baselines` or use the gan space (references: {', '.join(known)})")
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: the gan evaluator's baselines are the generator space's references"
                              + did_you_mean(str(name), known) + f"; known: {', '.join(known)} (classifier "
                              "references such as resnet18 need the train evaluator)")
        try:
            space.reference(name)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}; widen the space's op choices or remove it from `baselines`") from None
        settings = space.reference_training(name)
        try:
            evaluator.with_training(**settings)
        except ConfigError as err:
            raise ConfigError(f"{where} trains with {settings}: {err}; remove it from `baselines` or change "
                              "evaluator.options") from None


def _check_task_kind(space: Space, task: str | None, field: str) -> None:
    """A space of image models with a sequence task (or the reverse) fails at config time, not per trial."""
    kind = task_kind(task) if task else None
    if kind is not None and kind != space.input_kind:
        raise ConfigError(f"{field} = {task!r} holds {kind} data but space {space.name!r} builds "
                          f"{space.input_kind} models; pick a matching space or task (`nas tasks`, `nas spaces`)")


def _prefixed(prefix: str, err: NASError) -> ConfigError:
    """The error of a component built from config section ``prefix``, naming the dotted field where it can:
    ``<space> option C = 0: ...`` becomes ``space.options.C = 0 (space nb201): ...``."""
    text = str(err)
    if text.startswith(f"{prefix}."):  # already names the field
        return ConfigError(text)
    m = re.match(r"^(?:strategy )?'?([\w-]+)'? option (\w+) = (.*?): (.*)$", text, re.S)
    if m and prefix in ("space", "strategy"):
        return ConfigError(f"{prefix}.options.{m.group(2)} = {m.group(3)} ({prefix} {m.group(1)}): {m.group(4)}")
    return ConfigError(f"{prefix}: {text}")


# -- building ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Components:
    """The built parts of an experiment: the strategy and the evaluator share the one space."""

    space: SearchSpace
    strategy: Strategy
    evaluator: Evaluator


#: attribute of a validated config holding the components its validation built, until :func:`build` takes them
_FRESH = "_fresh_components"


def _construct(cfg: ExperimentConfig) -> Components:
    """Build space, evaluator and strategy once each, in that order (so errors come in that order)."""
    space = build_space(cfg)
    _check_task_kind(space, cfg.evaluator.task, "evaluator.task")
    evaluator = build_evaluator(cfg, space)
    strategy = build_strategy(cfg, space)
    return Components(space=space, strategy=strategy, evaluator=evaluator)


def _validated(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check ``cfg`` and keep the components the check built with it (a private attribute, not a field)."""
    object.__setattr__(cfg, _FRESH, _check(cfg))
    return cfg


def build(cfg: ExperimentConfig, directory: Path | None = None) -> Components:
    """The space, strategy and evaluator of ``cfg``, ready to run. The first call for a config made by
    :func:`parse_config` / :func:`load_config` returns the components its validation built (nothing has used
    them); later calls, and configs made otherwise, build and check them anew. ``directory`` is the experiment's:
    relative paths in the strategy's options (a ``sqlite:///study.db`` storage) resolve against it, see
    :func:`strategy_options`, and so does a relative ``evaluator.options.cache_dir`` left by a config made without
    a file (a config file's own folder resolved it when it was read), never the working directory: Ray workers run
    elsewhere. Raises :class:`ConfigError`."""
    fresh = cfg.__dict__.pop(_FRESH, None)
    components = fresh if fresh is not None else _check(cfg)
    if directory is not None:
        options = strategy_options(cfg, directory)
        if options != cfg.strategy.options:
            strategy = build_strategy(cfg, components.space, options=options)
            components = dataclasses.replace(components, strategy=strategy)
        ev_options = _resolved_cache_dir(dict(cfg.evaluator.options), Path(directory))
        if ev_options != cfg.evaluator.options:
            ev_cfg = dataclasses.replace(cfg, evaluator=dataclasses.replace(cfg.evaluator, options=ev_options))
            components = dataclasses.replace(components, evaluator=build_evaluator(ev_cfg, components.space))
    attach_zero_cost(components.strategy, components.evaluator)
    return components


def attach_zero_cost(strategy: Any, evaluator: Any) -> bool:
    """Hand the evaluator's ``zero_cost(arch)`` (a training-free score, e.g. the ``nb201`` evaluator's) to a
    strategy that screens candidates with one (``use_zero_cost``, found through a de-duplication wrapper), so
    the strategy never evaluates anything itself; True if attached. Zero-cost scores are not queries."""
    inner = getattr(strategy, "inner", strategy)
    scorer = getattr(evaluator, "zero_cost", None)
    if scorer is None or not hasattr(inner, "use_zero_cost"):
        return False
    inner.use_zero_cost(scorer)
    return True


def resolve_storage(url: str, directory: Path) -> str:
    """A SQLite URL with a relative path (``sqlite:///study.db``) made absolute under ``directory``; absolute
    ones (``sqlite:////abs/study.db``), in-memory ones and other databases' URLs are returned as they are."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path = url[len(prefix):]
    if not path or path.startswith("/") or path.startswith(":memory:") or Path(path).is_absolute():
        return url
    return prefix + str(Path(directory).resolve() / path)


def strategy_options(cfg: ExperimentConfig, directory: Path) -> dict[str, Any]:
    """The strategy's options for an experiment in ``directory``: a relative ``storage`` URL (Optuna's) resolved
    against the experiment directory, not the working directory, so that the study lives with the experiment
    wherever the search is started or resumed from. ``config.yaml`` keeps the URL as written."""
    options = dict(cfg.strategy.options)
    storage = options.get("storage")
    if isinstance(storage, str):
        options["storage"] = resolve_storage(storage, directory)
    return options


def build_space(cfg: ExperimentConfig) -> SearchSpace:
    """The search space (joint with the searchable training fields, if any)."""
    from search_spaces import get_space  # lazy: torch, measured 1.4 s / 880 modules
    from search_spaces.hparams import with_hyperparameters  # lazy: torch, measured 1.4 s / 880 modules

    try:
        space = get_space(cfg.space.name, **cfg.space.options)
    except NASError as err:
        raise _prefixed("space", err) from None
    if cfg.searchable:
        from nas.evaluation.training import TrainConfig  # lazy: torch, measured 1.4 s / 880 modules

        try:
            space = with_hyperparameters(space, cfg.searchable, check=TrainConfig().replace)
        except NASError as err:
            raise _prefixed("searchable", err) from None
    return space


def build_strategy(cfg: ExperimentConfig, space: SearchSpace, options: dict[str, Any] | None = None) -> Strategy:
    """The strategy of ``cfg`` over ``space``, with ``options`` in place of ``cfg.strategy.options`` if given."""
    from strategies import get_strategy  # lazy: torch, measured 1.4 s / 880 modules

    given = cfg.strategy.options if options is None else options
    for key, where in (("seed", "seed"), ("space", "space"), ("dedup", "strategy.dedup"),
                       ("objectives", "objectives"), ("constraints", "constraints")):
        if key in given:
            raise ConfigError(f"strategy.options.{key}: not a strategy option; set `{where}` in the config instead "
                              "(the strategy takes it from there)")
    try:
        return get_strategy(cfg.strategy.name, space=space, seed=cfg.seed, dedup=cfg.strategy.dedup,
                            objectives=cfg.objectives, constraints=cfg.constraints, **given)
    except NASError as err:
        raise _prefixed("strategy", err) from None


def build_evaluator(cfg: ExperimentConfig, space: SearchSpace) -> Evaluator:
    """The evaluator of ``cfg``; those that compile models get ``space.compiler()``, never the space."""
    from nas.evaluation.evaluators import get_evaluator  # lazy: torch, measured 1.4 s / 880 modules
    from nas.evaluation.gan import GanEvaluator  # noqa: F401  # lazy: torch, as above; registers gan
    from nas.evaluation.ssl import SslEvaluator  # lazy: torch, as above; registers ssl
    from nas.weightsharing.evaluator import OPTIONS as WS_OPTIONS  # lazy: torch, as above; registers weight_sharing

    ev = cfg.evaluator
    options: dict[str, Any] = dict(ev.options)
    if space.model_kind == "generator" and ev.name in ("train", "proxy", "weight_sharing", "nb201"):
        raise ConfigError(f"evaluator.name = {ev.name!r} trains or scores classifiers, but space.name = "
                          f"{cfg.space.name!r} compiles generators (latent vector -> image); evaluate them with "
                          "evaluator.name = 'gan' (FID)")
    if ev.name == "gan" and space.model_kind != "generator":
        raise ConfigError(f"evaluator.name = 'gan' trains generators, but space.name = {cfg.space.name!r} compiles "
                          f"{space.model_kind}s; use a generator space (space.name = 'gan') or the train evaluator")
    if ev.name == "train":
        if ev.task is None:
            raise ConfigError("evaluator.task: missing; the train evaluator needs a task (see `nas tasks`)")
        train = _with_threads(ev.train, cfg.execution.threads_per_trial)
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, train=train,
                       data_seed=cfg.seed, metric=ev.metric)
        if ev.init_from is not None:
            options.update(init_from=ev.init_from, init=_transfer_spec(ev))
        if ev.inherit is not None:
            options["inherit"] = ev.inherit
    elif ev.name == "weight_sharing":
        for key in ev.options:
            if key not in WS_OPTIONS:
                raise ConfigError(f"evaluator.options.{key} is not an option of the weight_sharing evaluator"
                                  + did_you_mean(str(key), WS_OPTIONS) + f"; options: {', '.join(WS_OPTIONS)}")
        if ev.task is None:
            raise ConfigError("evaluator.task: missing; the weight_sharing evaluator trains a supernet on a task (see "
                              "`nas tasks`)")
        train = _with_threads(ev.train, cfg.execution.threads_per_trial)
        options.update(space=space, compiler=space.compiler(), task=ev.task, task_options=ev.task_options,
                       train=train, data_seed=cfg.seed, metric=ev.metric)
    elif ev.name == "gan":
        if ev.task is None:
            raise ConfigError("evaluator.task: missing; the gan evaluator trains generators on an image task "
                              "(e.g. mnist, digits; see `nas tasks`)")
        if ev.train:
            raise ConfigError(f"evaluator.train = {dict(ev.train)}: the gan evaluator takes its training settings "
                              "in evaluator.options (loss, steps, batch_size, lr, ...); move them there")
        conditional = bool(space.options().get("conditional", False))
        if "conditional" in ev.options and ev.options["conditional"] != conditional:
            raise ConfigError(f"evaluator.options.conditional = {ev.options['conditional']!r} but "
                              f"space.options.conditional = {conditional}: a class-conditional generator needs a "
                              "class-conditional discriminator and the reverse; set both to the same value")
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, data_seed=cfg.seed,
                       conditional=conditional)
        options = _with_threads(options, cfg.execution.threads_per_trial)
    elif ev.name == "proxy":
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, data_seed=cfg.seed)
    elif ev.name == SslEvaluator.name:
        if ev.task is None:
            raise ConfigError("evaluator.task: missing; the ssl evaluator trains on a task's inputs (its labels are "
                              "optional; see `nas tasks`)")
        train = _with_threads(ev.train, cfg.execution.threads_per_trial)
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, train=train,
                       data_seed=cfg.seed)
    elif ev.task is not None or ev.train:
        raise ConfigError(f"evaluator: the {ev.name!r} evaluator takes no task or train settings")
    if ev.init_from is None and (ev.init_mode, ev.init_freeze, ev.init_body_lr_scale) != ("full", None, 1.0):
        raise ConfigError("evaluator.init_mode/init_freeze/init_body_lr_scale: set without evaluator.init_from, the "
                          "weights they apply to; add init_from: PATH (an export folder or weights file) or remove "
                          "them")
    if ev.init_from is not None and ev.name != "train":
        raise ConfigError(f"evaluator.init_from = {ev.init_from!r}: only the train evaluator trains candidates "
                          f"from weights, not {ev.name!r}; remove init_from or use the train evaluator")
    if ev.inherit is not None and ev.name != "train":
        raise ConfigError(f"evaluator.inherit: the {ev.name!r} evaluator trains nothing, so there are no weights to "
                          "inherit; remove evaluator.inherit or use the train evaluator")
    if ev.metric is not None and ev.name not in ("train", "weight_sharing"):
        raise ConfigError(f"evaluator.metric = {ev.metric!r}: the {ev.name!r} evaluator has its own score; a metric "
                          "applies to the train evaluator only")
    if ev.name == "nb201" and cfg.space.name != "nb201":
        raise ConfigError(f"evaluator.name = 'nb201' looks cells up in NAS-Bench-201 and needs space nb201, "
                          f"not space.name = {cfg.space.name!r}; use the train or proxy evaluator")
    if ev.name == "nb201" and set(space.options()["ops"]) - set(NB201_OPS):
        extra = sorted(set(space.options()["ops"]) - set(NB201_OPS))
        raise ConfigError(f"space.options.ops = {space.options()['ops']}: NAS-Bench-201 holds results for "
                          f"{', '.join(NB201_OPS)} only, not {', '.join(extra)}; use the train or proxy evaluator "
                          "to search other ops")
    try:
        return get_evaluator(ev.name, **options)
    except NASError as err:
        raise _prefixed("evaluator", err) from None


def _with_threads(settings: Mapping[str, Any], threads_per_trial: int | None) -> dict[str, Any]:
    """A copy of an evaluator's training ``settings`` with ``threads`` set to ``execution.threads_per_trial`` when
    that is set and the settings do not name their own."""
    out = dict(settings)
    if threads_per_trial and "threads" not in out:
        out["threads"] = threads_per_trial
    return out


def _transfer_spec(ev: EvaluatorConfig) -> Any:
    """The :class:`~nas.transfer.TransferSpec` of ``evaluator.init_*`` (checked; ConfigError naming the field)."""
    from nas.transfer import TransferSpec  # lazy: torch, measured 1.4 s / 880 modules

    return TransferSpec(mode=ev.init_mode, freeze=ev.init_freeze, body_lr_scale=ev.init_body_lr_scale,
                        where="evaluator.init_")


def build_job_context(cfg: ExperimentConfig, directory: Path) -> JobContext:
    """What a strategy's job gets from the config: the evaluator's task as the default task, the seed, torch
    threads per worker; ``directory`` is where the job keeps its files."""
    return JobContext(task=cfg.evaluator.task, task_options=dict(cfg.evaluator.task_options), seed=cfg.seed,
                      directory=directory, threads=cfg.execution.threads_per_trial)


def tracking_settings(cfg: ExperimentConfig, directory: Path) -> TrackingSettings:
    """``cfg.tracking`` checked and resolved for an experiment in ``directory`` (:func:`resolve_tracking`)."""
    t = cfg.tracking
    return resolve_tracking(optuna=t.optuna, tensorboard=t.tensorboard, mlflow=t.mlflow, directory=directory,
                            name=cfg.name)


def parse_config(data: Any) -> ExperimentConfig:
    """Validate plain data (as loaded from YAML) into an :class:`ExperimentConfig`."""
    return _validated(_build(ExperimentConfig, data, ""))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen[key] = line
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping ("
                    + (f"twice on line {line}" if first == line else f"lines {first} and {line}")
                    + "); keep one of them", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping a YAML config file holds (safe loading; a key given twice in one mapping is refused);
    ConfigError naming the file otherwise."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"config file {str(file)!r} is a directory; give the path of a YAML file in it")
    if not file.is_file():
        raise ConfigError(f"config file {str(file)!r} does not exist")
    try:
        data = yaml.load(file.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {file.name} is not valid YAML: {err}") from None
    except (UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"config file {str(file)!r} cannot be read as text ({err}); give a YAML file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file.name} must hold a mapping of settings, got {type(data).__name__}")
    return data


def _with_config_folder(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One rule for user code beside a config: a reference whose module is a file (or package) in the config's
    folder gets that folder as its import folder, unless one is given: ``evaluator.task_options.module_dir`` for a
    task function (``evaluator.task: "module:function"``), ``space.options.path`` for a ``python`` space's builder.
    Both are imported by :func:`nas.core.references.import_reference`, on the driver and on every worker. Files
    named in a config follow the same rule: a relative ``evaluator.init_from`` is a path from the config's folder
    (made absolute here, so the experiment's copy of the config and every worker read the same file), not from the
    working directory; so is a relative ``evaluator.options.cache_dir`` (the gan evaluator's feature network
    cache; a config made without a file resolves it against the experiment directory, see :func:`build`)."""
    where = str(folder.resolve())
    ev = data.get("evaluator")
    if isinstance(ev, dict) and is_reference(ev.get("task")) and module_file(ev["task"], folder):
        options = ev.get("task_options") or {}
        if isinstance(options, dict) and "module_dir" not in options:
            data = {**data, "evaluator": {**ev, "task_options": {**options, "module_dir": where}}}
    space = data.get("space")
    if isinstance(space, dict) and space.get("name") == "python" and isinstance(space.get("options"), dict):
        builder = space["options"].get("builder")
        if "path" not in space["options"] and is_reference(builder) and module_file(builder, folder):
            data = {**data, "space": {**space, "options": {**space["options"], "path": where}}}
    ev = data.get("evaluator")
    if isinstance(ev, dict):
        init_from = ev.get("init_from")
        if isinstance(init_from, str) and init_from and not os.path.isabs(os.path.expanduser(init_from)):
            data = {**data, "evaluator": {**ev, "init_from": os.path.join(where, init_from)}}
    ev = data.get("evaluator")
    if isinstance(ev, dict) and isinstance(ev.get("options"), dict):
        resolved = _resolved_cache_dir(ev["options"], Path(where))
        if resolved is not ev["options"]:
            data = {**data, "evaluator": {**ev, "options": resolved}}
    return data


def _resolved_cache_dir(options: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``options`` with a relative ``cache_dir`` (a string) made absolute under ``folder``; ``options`` itself
    when there is nothing to resolve."""
    cache_dir = options.get("cache_dir")
    if not isinstance(cache_dir, str) or not cache_dir or os.path.isabs(os.path.expanduser(cache_dir)):
        return options
    return {**options, "cache_dir": os.path.normpath(folder.resolve() / cache_dir)}


def load_config(path: str | os.PathLike[str], **overrides: Any) -> ExperimentConfig:
    """Read and validate a YAML config (``yaml.safe_load``); ``overrides`` are dotted fields. User code beside the
    config (a task function, a ``python`` space's builder) imports from the config's folder (see
    :func:`_with_config_folder`)."""
    data = _with_config_folder(_read_yaml(path), Path(path).parent)
    cfg = _build(ExperimentConfig, data, "")  # typed; checked once, with the overrides applied
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**overrides) if overrides else _validated(cfg)


def read_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """The typed settings of an experiment's own ``config.yaml`` (checked in full when the experiment was created),
    for reading the experiment: types and keys are checked, but no component is built (no torch, no strategy).
    :func:`build` checks the rest when the components are needed."""
    return _build(ExperimentConfig, _read_yaml(path), "")
