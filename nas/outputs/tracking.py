"""The trackers (:mod:`nas.tracking`) of a finished experiment: ``nas export-optuna DIR`` mirrors it into an Optuna
study after the fact (its baselines into the companion study ``<name>-baselines``), as ``tracking: {optuna: ...}``
mirrors it during the search
(:class:`nas.tracking.optuna_mirror.OptunaMirror`), idempotent by trial id, so exporting again adds only the trials
finished since; :func:`log_artifacts` hands files written after the search (the report) to the configured
trackers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.outputs.view import ExperimentView
from nas.runtime.config import build_space, tracking_settings
from nas.tracking.optuna_mirror import OptunaMirror
from nas.tracking.replay import tracked_baselines, tracked_trials
from nas.tracking.settings import open_trackers, resolve_tracking
from nas.trials.objectives import parse_constraints, parse_objectives

__all__ = ["OptunaExport", "export_optuna", "log_artifacts"]


@dataclass(frozen=True)
class OptunaExport:
    """Where the study is (``storage``, ``study_name``), how many trials it holds and how many were added now."""

    storage: str
    study_name: str
    trials: int
    added: int


def export_optuna(directory: str | Path, storage: str | None = None, study_name: str | None = None) -> OptunaExport:
    """Mirror every finished trial of the experiment in ``directory`` into the Optuna study ``study_name`` (default:
    the experiment's name) at ``storage`` (default ``sqlite:///DIR/optuna.db``; a relative ``sqlite:///`` path is
    relative to the experiment). Raises :class:`~nas.core.errors.ConfigError` for a directory that holds no
    experiment or a storage inside ``trials.db``."""
    view = ExperimentView.open(directory)
    cfg = view.config
    settings = resolve_tracking(optuna=storage or True, tensorboard=False, mlflow=False,
                                directory=view.directory, name=cfg.name)
    assert settings.optuna is not None  # optuna is on
    space = build_space(cfg)
    name = study_name or cfg.name
    mirror = OptunaMirror(storage=settings.optuna, study_name=name, space=space,
                          objectives=[(o.metric, o.direction) for o in parse_objectives(cfg.objectives)],
                          attrs={"nas_space": space.name, "strategy": cfg.strategy.name})
    try:
        added = 0
        for trial in tracked_trials(view.trials, space, parse_constraints(cfg.constraints)):
            if trial.id not in mirror:
                mirror.trial(trial)
                added += 1
        for name, baseline in tracked_baselines(view.baselines, space):  # into the companion study, once
            mirror.baseline(name, baseline)
        total = len(mirror.study.get_trials(deepcopy=False))
    finally:
        mirror.close()
    return OptunaExport(settings.optuna, name, total, added)


def log_artifacts(directory: str | Path, files: dict[str, Path]) -> list[str]:
    """Hand ``files`` (by name, e.g. ``{"report.html": path}``) to the trackers the experiment in ``directory``
    configures (MLflow logs them on its ``search`` run); returns the trackers' names (none without tracking)."""
    view = ExperimentView.open(directory)
    cfg = view.config
    settings = tracking_settings(cfg, view.directory)
    if not settings:
        return []
    trackers = open_trackers(settings, name=cfg.name, space=build_space(cfg),
                             objectives=[(o.metric, o.direction) for o in parse_objectives(cfg.objectives)],
                             params={})
    try:
        trackers.artifacts(files)
        return trackers.names
    finally:
        trackers.close()
