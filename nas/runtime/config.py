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
    searchable: {lr: [0.1, 0.05]}        # optional: training fields searched with the architecture
    objectives: [max:score]               # optional; e.g. [max:score, min:params]
    constraints: {params: {max: 200000}}  # optional
    early_stopping: {grace_epochs: 1, reduction_factor: 3}   # optional: ASHA over per-epoch validation
    budget: {max_trials: 16, max_seconds: 600}
    baselines: [lenet5, resnet18]         # optional: reference models trained beside the search (`nas references`)
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nas.cluster.files import check_storage
from nas.cluster.shipping import SHIP_CODE, check_py_modules, check_runtime_env
from nas.core.checks import is_int, is_number
from nas.core.errors import ConfigError, NASError, did_you_mean
from nas.evaluation.function_tasks import is_function_task
from nas.evaluation.pruning import ASHA
from nas.evaluation.tasks import task_kind, task_problem
from nas.graph import references
from nas.graph.nb201 import NB201_OPS
from nas.trials.objectives import parse_constraints, parse_objectives
from nas.trials.protocols import JobContext, Space

# the `# lazy:` imports below keep this module (so the experiment, the view, `nas demo --print-config`) torch-free
if TYPE_CHECKING:  # torch and the strategies are imported only when a config is built
    from nas.evaluation.evaluators import Evaluator
    from search_spaces.base import SearchSpace
    from strategies.base import Strategy

__all__ = ["ExperimentConfig", "SpaceConfig", "StrategyConfig", "EvaluatorConfig", "BudgetConfig",
           "ExecutionConfig", "Components", "load_config", "read_config", "parse_config", "build", "build_space",
           "build_strategy", "strategy_options", "resolve_storage", "build_evaluator", "build_job_context"]


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
class ExperimentConfig:
    name: str
    space: SpaceConfig
    strategy: StrategyConfig
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    seed: int = 0
    searchable: dict[str, list[Any]] = field(default_factory=dict)
    objectives: list[str] = field(default_factory=lambda: ["max:score"])
    constraints: dict[str, dict[str, float]] = field(default_factory=dict)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    early_stopping: dict[str, int] | None = None
    output: str | None = None
    #: reference models (:mod:`nas.graph.references`) trained beside the search, see :mod:`nas.trials.baselines`
    baselines: list[str] = field(default_factory=list)

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
    _check_task_kind(space, cfg.strategy.options.get("task"), "strategy.options.task")
    # a strategy that needs a job done first (a one-shot supernet search) checks what the job needs as it describes
    # it (the job is not run, so its directory does not matter)
    strategy.job(build_job_context(cfg, Path(cfg.output or Path("runs") / cfg.name)))
    if cfg.early_stopping is not None:
        if cfg.evaluator.name != "train":
            raise ConfigError("early_stopping: only the train evaluator trains epoch by epoch, "
                              f"not {cfg.evaluator.name!r}")
        try:
            ASHA(**cfg.early_stopping)
        except TypeError as err:
            raise ConfigError(f"early_stopping: {err}; options: grace_epochs, reduction_factor") from None
    return built


def _check_baselines(cfg: ExperimentConfig) -> None:
    """Every baseline names a reference once, and the evaluator trains models on a task of its input kind."""
    known = references.list_references()
    for i, name in enumerate(cfg.baselines):
        where = f"baselines[{i}] = {name!r}"
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: no such reference model" + did_you_mean(name, known)
                              + f"; known: {', '.join(known)} (`nas references`)")
        if name in cfg.baselines[:i]:
            raise ConfigError(f"{where}: listed twice; name each baseline once")
    if cfg.baselines and cfg.evaluator.name != "train":
        raise ConfigError(f"baselines = {cfg.baselines}: baselines are trained, so they need the train evaluator, "
                          f"not evaluator.name = {cfg.evaluator.name!r}; remove `baselines` or use the train "
                          "evaluator")
    kind = task_kind(cfg.evaluator.task) if cfg.evaluator.task else None
    for i, name in enumerate(cfg.baselines):
        if kind is not None and references.input_kind(name) != kind:
            fitting = [n for n in known if references.input_kind(n) == kind]
            raise ConfigError(f"baselines[{i}] = {name!r} is a {references.input_kind(name)} model but "
                              f"evaluator.task = {cfg.evaluator.task!r} holds {kind} data; use a {kind} "
                              f"reference: {', '.join(fitting)}")


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
    :func:`strategy_options`. Raises :class:`ConfigError`."""
    fresh = cfg.__dict__.pop(_FRESH, None)
    components = fresh if fresh is not None else _check(cfg)
    if directory is not None:
        options = strategy_options(cfg, directory)
        if options != cfg.strategy.options:
            strategy = build_strategy(cfg, components.space, options=options)
            components = dataclasses.replace(components, strategy=strategy)
    return components


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

    ev = cfg.evaluator
    options: dict[str, Any] = dict(ev.options)
    if space.model_kind == "generator" and ev.name in ("train", "proxy"):
        raise ConfigError(f"evaluator.name = {ev.name!r} trains or scores classifiers, but space.name = "
                          f"{cfg.space.name!r} compiles generators (latent vector -> image); evaluate them with "
                          "nas.evaluation.gan.GanEvaluator (FID)")
    if ev.name == "train":
        if ev.task is None:
            raise ConfigError("evaluator.task: missing; the train evaluator needs a task (see `nas tasks`)")
        train = dict(ev.train)
        if cfg.execution.threads_per_trial and "threads" not in train:
            train["threads"] = cfg.execution.threads_per_trial
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, train=train,
                       data_seed=cfg.seed, metric=ev.metric)
    elif ev.name == "proxy":
        options.update(compiler=space.compiler(), task=ev.task, task_options=ev.task_options, data_seed=cfg.seed)
    elif ev.task is not None or ev.train:
        raise ConfigError(f"evaluator: the {ev.name!r} evaluator takes no task or train settings")
    if ev.metric is not None and ev.name != "train":
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


def build_job_context(cfg: ExperimentConfig, directory: Path) -> JobContext:
    """What a strategy's job gets from the config: the evaluator's task as the default task, the seed, torch
    threads per worker; ``directory`` is where the job keeps its files."""
    return JobContext(task=cfg.evaluator.task, task_options=dict(cfg.evaluator.task_options), seed=cfg.seed,
                      directory=directory, threads=cfg.execution.threads_per_trial)


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


def _with_module_dir(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A task function (``evaluator.task: "module:function"``) whose module is a file in the config's folder gets
    that folder as its ``module_dir`` task option (unless given), so that every worker can import it."""
    ev = data.get("evaluator")
    if not isinstance(ev, dict):
        return data
    task = ev.get("task")
    if not isinstance(task, str) or not is_function_task(task):
        return data
    options = ev.get("task_options") or {}
    if not isinstance(options, dict) or "module_dir" in options:
        return data
    top = task.split(":")[0].split(".")[0]
    if (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file():
        data = {**data, "evaluator": {**ev, "task_options": {**options, "module_dir": str(folder.resolve())}}}
    return data


def load_config(path: str | os.PathLike[str], **overrides: Any) -> ExperimentConfig:
    """Read and validate a YAML config (``yaml.safe_load``); ``overrides`` are dotted fields. A ``python`` space
    without a ``path`` option imports its builder from the config's folder too (``path`` is set to it), as a task
    function does (its ``module_dir``)."""
    data = _with_module_dir(_read_yaml(path), Path(path).parent)
    space = data.get("space")
    if isinstance(space, dict) and space.get("name") == "python" and isinstance(space.get("options"), dict) \
            and "path" not in space["options"]:  # a define-by-run builder may sit next to its config
        space["options"]["path"] = str(Path(path).resolve().parent)
    cfg = _build(ExperimentConfig, data, "")  # typed; checked once, with the overrides applied
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**overrides) if overrides else _validated(cfg)


def read_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """The typed settings of an experiment's own ``config.yaml`` (checked in full when the experiment was created),
    for reading the experiment: types and keys are checked, but no component is built (no torch, no strategy).
    :func:`build` checks the rest when the components are needed."""
    return _build(ExperimentConfig, _read_yaml(path), "")
