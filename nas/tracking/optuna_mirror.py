"""The search as an Optuna study in its own database (never inside ``trials.db``), for ``optuna-dashboard``
and ``optuna.load_study``.

One Optuna trial per finished trial of any strategy (one-shot strategies included): the decisions as named
parameters, each a ``CategoricalDistribution`` over the values it stands for (op names, not indices); the
objectives as values (the score, and e.g. ``params`` with ``objectives: [max:score, min:params]``); the other
metrics, our trial id, seed, canonical hash and architecture JSON as user attributes; the per-epoch scores as
intermediate values; the state COMPLETE, FAIL or PRUNED. A trial id mirrored before is skipped, so a resumed
search (or ``nas export-optuna`` run twice) never adds a trial twice.

While a trial trains (:class:`~nas.tracking.base.TrialEpoch`), its Optuna trial exists in state RUNNING with its
decisions and our trial id, and each epoch's score is set as the intermediate value of that step as it arrives
(optuna-dashboard draws the curve live); the finished trial sets the rest and the final state. A RUNNING Optuna
trial left by a run that never finished (a worker died, the search was killed) is taken over when the trial runs
again: Optuna cannot delete a trial, so the new run overwrites the steps it reaches, and a step only the
unfinished run reached (the new run was pruned earlier) keeps that run's value.

Baselines (``baselines:`` in the config) are references, not results of the search, so they stay out of the
study (its best trial, its history and importance plots, ``load_study``'s trials are the search's only). Each is
a trial of the companion study ``<study>-baselines`` (:func:`baseline_study_name`) in the same storage, written
like a search trial plus the user attribute ``nas_baseline`` (its name), so optuna-dashboard shows them as a
study of their own; the main study's user attribute ``nas_baselines`` maps each name to its state, score and
trial id, to compare at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from nas.tracking.base import Scalar, TrackedTrial, TrialEpoch, finite
from nas.trials.protocols import Space
from nas.trials.trial import Status

__all__ = ["OptunaMirror", "TRIAL_ID", "HASH", "ARCHITECTURE", "SEED", "ERROR", "BASELINE", "baseline_study_name"]

#: user attributes of every mirrored trial
TRIAL_ID, HASH, ARCHITECTURE, SEED, ERROR = "nas_trial_id", "nas_hash", "nas_architecture", "nas_seed", "nas_error"
BASELINE = "nas_baseline"
_STATES = {Status.COMPLETE: TrialState.COMPLETE, Status.FAILED: TrialState.FAIL, Status.PRUNED: TrialState.PRUNED}


def baseline_study_name(study_name: str) -> str:
    """The companion study that holds the baselines of study ``study_name``."""
    return f"{study_name}-baselines"


def _write_ahead(storage: optuna.storages.RDBStorage) -> None:
    """An SQLite study in write-ahead-log mode, synced at checkpoints only: a trial costs a third less, and
    readers (optuna-dashboard) never block the writer."""
    with storage.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")

    @sqlalchemy.event.listens_for(storage.engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    storage.engine.dispose()  # connections made from now on get the setting


class OptunaMirror:
    """Mirror trials into the study ``study_name`` at ``storage`` (an Optuna storage URL), created if missing.

    ``objectives`` are ``(metric, direction)`` pairs (``score`` is the trial's score, anything else a metric;
    direction ``max`` or ``min``); ``space`` names the decisions (``decision_choices``). A COMPLETE trial that
    lacks an objective's value is mirrored as FAIL, saying which value is missing."""

    name = "optuna"

    def __init__(self, *, storage: str, study_name: str, space: Space,
                 objectives: Sequence[tuple[str, str]] = (("score", "max"),),
                 attrs: Mapping[str, Any] | None = None) -> None:
        self.storage_url = storage
        self.study_name = study_name
        self.objectives = list(objectives)
        self._baseline_study: optuna.Study | None = None
        self._distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(choices)
            for name, choices in zip(space.decision_names(), space.decision_choices())}
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line in the progress
        try:
            self._storage = optuna.storages.RDBStorage(storage)
            if storage.startswith("sqlite:"):
                _write_ahead(self._storage)
            self.study = optuna.create_study(
                storage=self._storage, study_name=study_name, load_if_exists=True,
                directions=["maximize" if d == "max" else "minimize" for _, d in self.objectives])
        finally:
            optuna.logging.set_verbosity(level)
        if list(self.study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "max"
                                           else optuna.study.StudyDirection.MINIMIZE for _, d in self.objectives]:
            raise ValueError(f"study {study_name!r} in {storage} has other directions than the objectives "
                             f"{[f'{d}:{m}' for m, d in self.objectives]}; remove it or mirror into another study")
        for key, value in (attrs or {}).items():
            self.study.set_user_attr(key, value)
        self._study_id = self._storage.get_study_id_from_name(study_name)
        trials = self.study.get_trials(deepcopy=False)
        self._seen = {t.user_attrs.get(TRIAL_ID) for t in trials if t.state.is_finished()}
        #: our trial id -> the RUNNING Optuna trial (its storage id) that mirrors it while it trains
        self._running: dict[int, int] = {
            t.user_attrs[TRIAL_ID]: self._storage.get_trial_id_from_study_id_trial_number(self._study_id, t.number)
            for t in trials if t.state == TrialState.RUNNING and TRIAL_ID in t.user_attrs}

    def __contains__(self, trial_id: int) -> bool:
        return trial_id in self._seen

    def _running_trial(self, trial_id: int, params: Mapping[str, Scalar]) -> int:
        """The storage id of the RUNNING Optuna trial of our trial ``trial_id``, created (with the decisions
        ``params``) if there is none."""
        found = self._running.get(trial_id)
        if found is None:
            found = self._storage.create_new_trial(self._study_id)
            self._storage.set_trial_user_attr(found, TRIAL_ID, trial_id)
            for name, value in params.items():
                distribution = self._distributions.get(name)
                if distribution is not None and value in distribution.choices:  # type: ignore[attr-defined]  # categorical
                    self._storage.set_trial_param(found, name, distribution.to_internal_repr(value), distribution)
            self._running[trial_id] = found
        return found

    def epoch(self, event: TrialEpoch) -> None:
        if event.trial_id in self._seen:
            return
        score = finite(event.metrics.get("score"))
        if score is not None:
            self._storage.set_trial_intermediate_value(self._running_trial(event.trial_id, event.params),
                                                       event.epoch, score)

    def trial(self, trial: TrackedTrial) -> None:
        if trial.id in self._seen:
            self._running.pop(trial.id, None)
            return
        state, values, attrs, intermediate, params = self._contents(trial)
        running = self._running.pop(trial.id, None)
        if running is not None:  # it was mirrored while it trained: finish that Optuna trial
            held = self._storage.get_trial(running)
            for key, value in attrs.items():
                self._storage.set_trial_user_attr(running, key, value)
            for name, choice in params.items():
                if name not in held.params:
                    distribution = self._distributions[name]
                    self._storage.set_trial_param(running, name, distribution.to_internal_repr(choice), distribution)
            for step, value in intermediate.items():
                if held.intermediate_values.get(step) != value:
                    self._storage.set_trial_intermediate_value(running, step, value)
            self._storage.set_trial_state_values(running, state, values)
        else:
            self.study.add_trial(self._frozen(state, values, attrs, intermediate, params))
        self._seen.add(trial.id)

    def baseline(self, name: str, trial: TrackedTrial) -> None:
        """Baseline ``name`` as a trial of the companion study (module doc), once; its summary in the main study's
        ``nas_baselines``."""
        if self._baseline_study is None:
            self._baseline_study = optuna.create_study(
                storage=self._storage, study_name=baseline_study_name(self.study_name), load_if_exists=True,
                directions=list(self.study.directions))
        known = {t.user_attrs.get(BASELINE) for t in self._baseline_study.get_trials(deepcopy=False)}
        if name not in known:
            state, values, attrs, intermediate, params = self._contents(trial)
            attrs[BASELINE] = name
            self._baseline_study.add_trial(self._frozen(state, values, attrs, intermediate, params))
        summary = dict(self.study.user_attrs.get("nas_baselines", {}))
        summary[name] = {"state": _STATES[trial.status].name, "score": finite(trial.score), TRIAL_ID: trial.id}
        self.study.set_user_attr("nas_baselines", summary)

    def _frozen(self, state: TrialState, values: list[float] | None, attrs: dict[str, Any],
                intermediate: dict[int, float], params: dict[str, Any]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=state, values=values, params=params,
            distributions={k: self._distributions[k] for k in params}, user_attrs=attrs,
            intermediate_values=intermediate)

    def _contents(self, trial: TrackedTrial) -> tuple[TrialState, list[float] | None, dict[str, Any],
                                                       dict[int, float], dict[str, Any]]:
        """The state, objective values, user attributes, intermediate values and parameters ``trial`` is
        mirrored with."""
        state = _STATES[trial.status]
        values: list[float] | None = None
        attrs: dict[str, Any] = {TRIAL_ID: trial.id, HASH: trial.hash, SEED: trial.seed,
                                 ARCHITECTURE: trial.arch.to_json()}
        for key, value in trial.metrics.items():
            number = finite(value)
            if number is not None and key not in attrs:
                attrs[key] = number
        if trial.error:
            attrs[ERROR] = trial.error
        if state is TrialState.COMPLETE:
            got = [finite(trial.score) if metric == "score" else finite(trial.metrics.get(metric))
                   for metric, _ in self.objectives]
            missing = [metric for (metric, _), v in zip(self.objectives, got) if v is None]
            if missing:
                state = TrialState.FAIL
                attrs[ERROR] = f"completed without a finite {', '.join(missing)} (an objective)"
            else:
                values = [v for v in got if v is not None]
        intermediate: dict[int, float] = {}
        for i, epoch in enumerate(trial.history):
            step, at_step = int(epoch.get("epoch", i + 1)), finite(epoch.get("score"))
            if at_step is not None:
                intermediate[step] = at_step
        params = {k: v for k, v in trial.params.items() if k in self._distributions}
        return state, values, attrs, intermediate, params

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None:
        """A job's epochs are not trials: the last one is kept as the study's user attribute ``<job>_epoch``."""
        self.study.set_user_attr(f"{job}_epoch", {k: v for k, v in record.items() if finite(v) is not None})

    def artifacts(self, files: Mapping[str, Path]) -> None:
        """The files' paths, as the study's user attribute ``artifacts`` (the dashboard shows it)."""
        self.study.set_user_attr("artifacts", {name: str(path) for name, path in files.items()})

    def close(self) -> None:
        """Release the database connections (every trial was written in its own transaction)."""
        self._storage.engine.dispose()
