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

from nas.core.errors import ConfigError
from nas.runtime.config import ExperimentConfig, load_config, parse_config
from nas.runtime.events import Event

if TYPE_CHECKING:  # imported in search(), see there
    from nas.runtime.experiment import Experiment

__all__ = ["search", "as_config", "QUICKSTART", "quickstart_yaml", "load_quickstart"]

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
