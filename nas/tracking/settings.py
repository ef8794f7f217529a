"""The ``tracking:`` settings checked and resolved against an experiment directory, and the trackers they open.

::

    tracking:
      optuna: true                  # or an Optuna storage URL; default sqlite:///<experiment>/optuna.db
      tensorboard: true             # or a directory; default <experiment>/tensorboard
      mlflow: true                  # or {tracking_uri: ..., experiment_name: ..., artifact_location: ...};
                                    # default $MLFLOW_TRACKING_URI if set, else sqlite:///<experiment>/mlruns/mlflow.db

Where MLflow's artifacts go: ``artifact_location`` when given; otherwise, for a store this process writes itself
(a database such as ``sqlite:///``, or a ``file:`` store), ``<experiment>/mlruns/artifacts``, never MLflow's own
default (``./mlruns`` under whatever directory the search was started from); for a tracking server
(``http(s)://``, ``databricks``) the server's default artifact root. An MLflow experiment of that name that
already exists keeps the artifact location it was created with (MLflow fixes it at creation).

Relative paths (and relative ``sqlite:///`` URLs) resolve against the experiment directory, except a relative
``sqlite:///`` URL in ``MLFLOW_TRACKING_URI``, which means what it means to MLflow (the working directory). Every
mistake is a
:class:`ConfigError` naming the field, found before the first trial: a wrong type, an unknown key, a study that
would go inside ``trials.db``, a tool that is not installed (naming the extra that installs it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from nas.tracking.base import Scalar, Tracker, Trackers
from nas.trials.protocols import Space

__all__ = ["TrackingSettings", "resolve_tracking", "open_trackers", "mlflow_server", "OPTUNA_DB", "TENSORBOARD_DIR",
           "MLRUNS_DIR", "MLFLOW_ENV", "EXTRA"]

OPTUNA_DB, TENSORBOARD_DIR, MLRUNS_DIR = "optuna.db", "tensorboard", "mlruns"
#: the optional extra that installs every tracking tool
EXTRA = "tracking"
_MLFLOW_KEYS = ("tracking_uri", "experiment_name", "artifact_location")
#: the environment variable MLflow reads its tracking URI from; used when ``tracking_uri`` is not given
MLFLOW_ENV = "MLFLOW_TRACKING_URI"
#: URI schemes of MLflow tracking servers, which choose where artifacts go themselves
_SERVER_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")
_STORE = "trials.db"  # the experiment's own store, which no tracker may write into


@dataclass(frozen=True, kw_only=True)
class TrackingSettings:
    """Resolved tracking settings: None where a tool is off."""

    optuna: str | None = None
    tensorboard: Path | None = None
    mlflow_uri: str | None = None
    mlflow_experiment: str | None = None
    mlflow_artifacts: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.optuna, self.tensorboard, self.mlflow_uri))


def _need(package: str, field: str, value: Any) -> None:
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"{field} = {value!r} needs the {package} package, which is not installed; install it "
                          f"with `pip install 'nasgraph[{EXTRA}]'`, or turn {field} off")


def _sqlite_url(url: str, directory: Path) -> str:
    """A ``sqlite:///`` URL with a relative path made absolute under ``directory``; other URLs as they are."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path = url[len(prefix):]
    if not path or path.startswith(":memory:") or Path(path).is_absolute():
        return url
    return prefix + str(directory / path)


def _optuna(value: bool | str, directory: Path) -> str | None:
    field = "tracking.optuna"
    if value is False:
        return None
    if value is True:
        return f"sqlite:///{directory / OPTUNA_DB}"
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(f"{field} = {value!r}: give true or an Optuna storage URL such as "
                          f"'sqlite:///{OPTUNA_DB}' (relative to the experiment) or 'postgresql://host/db'")
    url = _sqlite_url(value, directory)
    if url.startswith("sqlite:///") and Path(url[len("sqlite:///"):].split("?")[0]).name == _STORE:
        raise ConfigError(f"{field} = {value!r}: the Optuna study must not go inside the experiment's trial store "
                          f"{_STORE}; use its own file, e.g. 'sqlite:///{OPTUNA_DB}'")
    if url.startswith("sqlite:///:memory:") or url == "sqlite://":
        raise ConfigError(f"{field} = {value!r}: an in-memory database is lost when the search ends; give a file, "
                          f"e.g. 'sqlite:///{OPTUNA_DB}'")
    return url


def _tensorboard(value: bool | str, directory: Path) -> Path | None:
    field = "tracking.tensorboard"
    if value is False:
        return None
    if value is not True and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{field} = {value!r}: give true (events in {TENSORBOARD_DIR}/ of the experiment) or a "
                          "directory")
    _need("tensorboard", field, value)
    path = directory / TENSORBOARD_DIR if value is True else directory / Path(str(value)).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{field} = {value!r}: {str(path)!r} is a file; give a directory")
    return path


def mlflow_server(uri: str) -> bool:
    """Whether the MLflow tracking URI ``uri`` names a tracking server (``http(s)://``, ``databricks``, Unity
    Catalog), which keeps artifacts where it is configured to, rather than a store this process writes."""
    scheme = uri.split("://", 1)[0] if "://" in uri else uri
    return scheme.lower() in _SERVER_SCHEMES


def _mlflow(value: bool | Mapping[str, Any], directory: Path, name: str) -> tuple[str, str, str | None] | None:
    field = "tracking.mlflow"
    if value is False:
        return None
    options: Mapping[str, Any] = {} if value is True else value
    if not isinstance(options, Mapping):
        raise ConfigError(f"{field} = {value!r}: give true or a mapping with {', '.join(_MLFLOW_KEYS)}")
    for key, option in options.items():
        if key not in _MLFLOW_KEYS:
            raise ConfigError(f"{field}.{key}: unknown key{did_you_mean(key, _MLFLOW_KEYS)}; allowed: "
                              f"{', '.join(_MLFLOW_KEYS)}")
        if not isinstance(option, str) or not option:
            raise ConfigError(f"{field}.{key} = {option!r}: expected a non-empty string")
    _need("mlflow", field, value)
    default_root = directory / MLRUNS_DIR
    uri = options.get("tracking_uri")
    artifacts = options.get("artifact_location")
    from_env = uri is None and bool(os.environ.get(MLFLOW_ENV, "").strip())
    if from_env:
        field, uri = MLFLOW_ENV, os.environ[MLFLOW_ENV].strip()
    else:
        field += ".tracking_uri"
    if uri is None:
        uri = f"sqlite:///{default_root / 'mlflow.db'}"
    elif mlflow_server(uri):
        pass
    elif uri.startswith("file:") or "://" not in uri:
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("1", "true"):
            where, default = (("relative to the working directory", f"unset {MLFLOW_ENV}") if from_env else
                              ("relative to the experiment", "leave tracking_uri out"))
            raise ConfigError(f"{field} = {uri!r}: MLflow 3 refuses file-system stores; give a "
                              f"database ('sqlite:///mlflow.db', {where}) or a server "
                              f"('http://host:5000'), or {default} for the default")
        uri = uri if "://" in uri else ((Path.cwd() if from_env else directory) / uri).as_uri()
    else:
        uri = _sqlite_url(uri, Path.cwd() if from_env else directory)
    if artifacts is not None and "://" not in artifacts:
        artifacts = (directory / artifacts).as_uri()
    if artifacts is None and not mlflow_server(uri):  # not MLflow's default, ./mlruns under the working directory
        artifacts = (default_root / "artifacts").as_uri()
    return uri, options.get("experiment_name", name), artifacts


def resolve_tracking(*, optuna: bool | str, tensorboard: bool | str, mlflow: bool | Mapping[str, Any],
                     directory: Path, name: str) -> TrackingSettings:
    """Check the ``tracking:`` values and resolve them for an experiment named ``name`` in ``directory``.
    Creates nothing. Raises :class:`ConfigError` naming the field, the value and the fix."""
    directory = Path(directory).absolute()
    ml = _mlflow(mlflow, directory, name)
    return TrackingSettings(optuna=_optuna(optuna, directory), tensorboard=_tensorboard(tensorboard, directory),
                            mlflow_uri=ml[0] if ml else None, mlflow_experiment=ml[1] if ml else None,
                            mlflow_artifacts=ml[2] if ml else None)


def open_trackers(settings: TrackingSettings, *, name: str, space: Space, objectives: Sequence[tuple[str, str]],
                  params: Mapping[str, Scalar], warn: Callable[[str], None] | None = None) -> Trackers:
    """The trackers ``settings`` turn on, opened (their files and databases created), behind one
    :class:`Trackers`. ``objectives`` are ``(metric, direction)`` pairs, ``params`` the search's settings."""
    trackers: list[Tracker] = []
    field = "tracking"
    try:
        if settings.optuna is not None:
            from nas.tracking.optuna_mirror import OptunaMirror  # lazy: optuna's storage, SQLAlchemy 0.3 s

            field = f"tracking.optuna ({settings.optuna})"
            trackers.append(OptunaMirror(storage=settings.optuna, study_name=name, space=space,
                                         objectives=objectives, attrs={"nas_space": space.name, **params}))
        if settings.tensorboard is not None:
            from nas.tracking.tensorboard import TensorBoardTracker  # lazy: tensorboard, 0.7 s after torch

            field = f"tracking.tensorboard ({settings.tensorboard})"
            trackers.append(TensorBoardTracker(settings.tensorboard))
        if settings.mlflow_uri is not None:
            from nas.tracking.mlflow import MlflowTracker  # lazy: mlflow, 5.7 s and 1,300 modules after torch

            field = f"tracking.mlflow ({settings.mlflow_uri})"
            if settings.mlflow_uri.startswith("sqlite:///"):
                Path(settings.mlflow_uri[len("sqlite:///"):].split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
            mlflow = MlflowTracker(tracking_uri=settings.mlflow_uri, experiment=settings.mlflow_experiment or name,
                                   artifact_location=settings.mlflow_artifacts, params=params)
            trackers.append(mlflow)
            wanted = settings.mlflow_artifacts
            if wanted is not None and warn is not None and mlflow.artifact_location.rstrip("/") != wanted.rstrip("/"):
                warn(f"tracking.mlflow: the MLflow experiment {settings.mlflow_experiment or name!r} already exists"
                     f" with its artifacts at {mlflow.artifact_location}; MLflow keeps that location, "
                     f"so the artifacts go there, not to {wanted}")
    except Exception as err:  # a server that is down, a read-only folder, a study of other directions
        for tracker in trackers:
            tracker.close()
        first = str(err).splitlines()[0][:300] if str(err) else ""
        raise ConfigError(f"{field} cannot be opened ({type(err).__name__}: {first}); fix it, or turn it off in "
                          "the config's tracking section") from err
    except BaseException:
        for tracker in trackers:
            tracker.close()
        raise
    return Trackers(trackers, warn)
