"""The Python entry point: :func:`search` runs a search from a config and returns its :class:`Experiment`; the
quickstart config ships inside the package (``nas demo`` runs it, ``nas demo --print-config`` prints it).

    import nas

    exp = nas.search("my.yaml", directory="runs/mine")   # or a dict, or an ExperimentConfig
    best = exp.ranked()[0]                                # a StoredTrial: .id, .arch, .score, .metrics
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from nas.core.errors import ConfigError, did_you_mean
from nas.graph import references
from nas.runtime.config import ExperimentConfig, load_config, parse_config
from nas.runtime.events import Event

if TYPE_CHECKING:  # imported in search(), see there
    from nas.runtime.experiment import Experiment

__all__ = ["search", "train_reference", "train_config", "as_config", "QUICKSTART", "quickstart_yaml",
           "load_quickstart", "TRAIN_SPACES"]

#: the space named in the config of ``nas train`` (it runs no trial; its preflight candidate is checked), by the
#: reference's input kind
TRAIN_SPACES = {"image": "nb201", "sequence": "transformer"}

#: the file name of the quickstart config, package data of ``nas.runtime``
QUICKSTART = "quickstart.yaml"


def quickstart_yaml() -> str:
    """The packaged quickstart config as written (YAML with its comments); the one source ``nas demo`` runs."""
    return resources.files(__package__).joinpath(QUICKSTART).read_text(encoding="utf-8")


def load_quickstart(**overrides: Any) -> ExperimentConfig:
    """The packaged quickstart config, validated; ``overrides`` are dotted fields as for
    :func:`~nas.runtime.config.load_config` (``None`` values are ignored)."""
    with resources.as_file(resources.files(__package__).joinpath(QUICKSTART)) as path:
        return load_config(path, **overrides)


def as_config(config: str | os.PathLike[str] | Mapping[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """``config`` as a validated :class:`ExperimentConfig`: a YAML file's path, the plain data such a file holds,
    or an :class:`ExperimentConfig` (returned as is). Raises :class:`~nas.core.errors.ConfigError` otherwise."""
    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    raise ConfigError(f"config = {config!r} ({type(config).__name__}): give the path of a YAML config, a dict of "
                      "its settings or an ExperimentConfig")


def search(config: str | os.PathLike[str] | Mapping[str, Any] | ExperimentConfig, *,
           directory: str | os.PathLike[str] | None = None, overwrite: bool = False,
           progress: Callable[[Event], None] | None = None) -> Experiment:
    """Run a new search and return its experiment, finished, with its store and writer lock open (``exp.ranked()``,
    ``exp.summary()``, ``exp.directory``; ``exp.close()`` when done with it).

    ``config`` is a path, a dict or an :class:`ExperimentConfig` (see :func:`as_config`); ``directory`` defaults to
    the config's ``output`` or ``runs/<name>``; an existing experiment there is replaced only with
    ``overwrite=True``. ``progress`` receives typed progress events
    (:mod:`nas.runtime.events`; ``str(event)`` is the line ``nas search`` prints, so ``progress=print`` shows them).
    The search writes the same files as ``nas search``, so ``nas status``/``resume``/``export``/``report`` work on
    it. Invalid settings raise :class:`~nas.core.errors.ConfigError` before anything is written.
    """
    cfg = as_config(config)
    # lazy: torch and the one-shot runner, measured 1.5 s / 1500 modules; `nas demo --print-config` stays at 0.24 s
    from nas.runtime.experiment import Experiment

    exp = Experiment.create(cfg, None if directory is None else os.fspath(directory), overwrite=overwrite)
    try:
        exp.run(progress=progress)
    except BaseException:
        exp.close()
        raise
    return exp


def train_config(reference: str, task: str, *, epochs: int | None = None, seed: int = 0,
                 task_options: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
                 output: str | os.PathLike[str] | None = None) -> ExperimentConfig:
    """The config of ``nas train``: an experiment of no search trials (``budget.max_trials: 0``) whose one baseline
    is ``reference``, trained by the train evaluator on ``task`` with ``train`` settings (``epochs`` overrides
    theirs), the local executor and ``seed``. ``output`` defaults to ``runs/train-<reference>-<task>``."""
    known = references.list_references()
    if reference not in known:  # checked here too, so the message names the command's argument
        raise ConfigError(f"reference {reference!r}: no such reference model" + did_you_mean(reference, known)
                          + f"; known: {', '.join(known)} (`nas references`)")
    settings = dict(train or {})
    if epochs is not None:
        settings["epochs"] = epochs
    name = f"train-{reference}-{os.path.basename(task).split(':')[0].replace('.', '_')}"
    return parse_config({
        "name": name, "seed": seed,
        "space": {"name": TRAIN_SPACES[references.input_kind(reference)]}, "strategy": {"name": "random"},
        "evaluator": {"name": "train", "task": task, "task_options": dict(task_options or {}), "train": settings},
        "budget": {"max_trials": 0}, "baselines": [reference],
        "execution": {"executor": "local", "workers": 1},
        "output": os.fspath(output) if output is not None else os.path.join("runs", name),
    })


def train_reference(reference: str, task: str, *, epochs: int | None = None, seed: int = 0,
                    task_options: Mapping[str, Any] | None = None, train: Mapping[str, Any] | None = None,
                    directory: str | os.PathLike[str] | None = None, overwrite: bool = False,
                    progress: Callable[[Event], None] | None = None) -> Experiment:
    """Train one reference model (``nas references``) on ``task`` with the trainer a search uses, and return the
    finished experiment (see :func:`train_config`): ``exp.baselines()[0]`` holds its result (``score`` = validation
    accuracy, ``metrics`` with ``test_acc`` and ``params``); ``nas status``/``report`` read the directory and
    ``nas export DIR --baselines`` exports the model. Bad settings raise :class:`ConfigError` before anything is
    written."""
    cfg = train_config(reference, task, epochs=epochs, seed=seed, task_options=task_options, train=train,
                       output=directory)
    return search(cfg, overwrite=overwrite, progress=progress)
