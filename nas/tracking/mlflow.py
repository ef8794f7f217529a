"""The search as MLflow runs (``mlflow-skinny``'s tracking client; no global MLflow state is touched: the
tracker holds its own ``MlflowClient``).

In the MLflow experiment named after ours: one parent run ``search`` (tag ``nas.role=search``) with the
search's settings as parameters, ``score`` and ``best_so_far`` by trial number, and ``best.json`` (and the report,
when written) as artifacts; one child run per trial (tags ``nas.role=trial``, ``nas.trial_id``, ``nas.hash``,
``nas.status``; ``mlflow.parentRunId``) with the decisions as parameters, the per-epoch curves as
``epoch/<metric>`` by epoch, the final metrics, and ``architecture.json`` as an artifact; one child run per job
of the strategy (a supernet search) with its per-epoch figures. A trial id already logged (an earlier session)
is skipped; a resumed search logs into the same parent run.

A trial's run is opened (status RUNNING) at its first epoch and its ``epoch/<metric>`` curves logged while it
trains (:class:`~nas.tracking.base.TrialEpoch`); the finished trial adds what the stream missed and ends the
run. A trial run left RUNNING by a run that never finished (a worker died, the search was killed) is deleted
when the trial runs again, so each trial has one run, with the curve of the run that finished.

Each baseline of the config (``baselines:``) is a child run tagged ``nas.role=baseline`` and
``nas.baseline=<name>`` with the same contents as a trial's, kept out of the parent's ``score`` and
``best_so_far`` (filter the runs by ``tags.`nas.role` = 'trial'`` to compare the search's trials only).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from nas.tracking.base import Scalar, TrackedTrial, TrialEpoch, finite
from nas.tracking.settings import mlflow_server
from nas.trials.trial import Status

__all__ = ["MlflowTracker", "ROLE", "TRIAL_ID", "BASELINE"]

ROLE, TRIAL_ID, HASH, STATUS, PARENT = "nas.role", "nas.trial_id", "nas.hash", "nas.status", "mlflow.parentRunId"
BASELINE = "nas.baseline"
_RUN_STATUS = {Status.COMPLETE: "FINISHED", Status.FAILED: "FAILED", Status.PRUNED: "KILLED"}
_MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


def _param(key: str, value: Any) -> Param:
    text = value if isinstance(value, str) else json.dumps(value)
    return Param(key, text[:_MAX_PARAM])


def _beside_store(tracking_uri: str) -> str | None:
    """The artifact root for an experiment created without one: None (the server's default) for a tracking
    server, ``artifacts/`` beside the database for ``sqlite:///``, ``artifacts/`` inside a ``file:`` store;
    raises ValueError for another database."""
    if mlflow_server(tracking_uri):
        return None
    if tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:///:memory:"):
        return (Path(tracking_uri[len("sqlite:///"):].split("?")[0]).absolute().parent / "artifacts").as_uri()
    if tracking_uri.startswith("file:"):
        return tracking_uri.rstrip("/") + "/artifacts"
    raise ValueError(f"MLflow store {tracking_uri!r}: give artifact_location (MLflow's default would be ./mlruns "
                     "under the working directory)")


def _ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker:
    """Log into the MLflow experiment ``experiment`` at ``tracking_uri``; ``params`` are the search's settings,
    logged on the parent run.

    A missing experiment is created with its artifacts at ``artifact_location``; when that is None, at the
    server's default for a tracking server, else (a store this process writes: ``sqlite:///``, ``file:``)
    ``artifacts/`` beside the SQLite file (inside a ``file:`` store), a ValueError for another database (give
    ``artifact_location``); never MLflow's own default
    (``./mlruns`` under the working directory). An experiment that already exists keeps the artifact location it
    was created with (MLflow fixes it at creation); :attr:`artifact_location` says where that is."""

    name = "mlflow"

    def __init__(self, *, tracking_uri: str, experiment: str, artifact_location: str | None = None,
                 params: Mapping[str, Scalar] | None = None) -> None:
        location = artifact_location or _beside_store(tracking_uri)  # before a store is opened: a ValueError first
        migrations = logging.getLogger("mlflow.store.db.utils")
        level = migrations.level
        migrations.setLevel(logging.WARNING)  # no "Creating initial MLflow database tables" lines in the progress
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)  # the store (and its schema) is made by now
        finally:
            migrations.setLevel(level)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
            found = self.client.get_experiment(self.experiment_id)
        else:
            self.experiment_id = found.experiment_id
        #: where this MLflow experiment's artifacts go (its own location when it existed before)
        self.artifact_location: str = found.artifact_location
        parents = self._runs(f"tags.`{ROLE}` = 'search'")
        if parents:
            self.parent = parents[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name="search", tags={ROLE: "search"})
            self.parent = run.info.run_id
            if params:
                self.client.log_batch(self.parent, params=[_param(k, v) for k, v in params.items()])
        trial_runs = self._runs(f"tags.`{ROLE}` = 'trial'")
        self._seen = {r.data.tags.get(TRIAL_ID) for r in trial_runs if r.info.status != "RUNNING"}
        #: runs of unfinished trials left by an earlier session: trial id -> run ids (deleted when it runs again)
        self._stale: dict[str, list[str]] = {}
        for r in trial_runs:
            if r.info.status == "RUNNING":
                self._stale.setdefault(r.data.tags.get(TRIAL_ID, ""), []).append(r.info.run_id)
        baselines = self._runs(f"tags.`{ROLE}` = 'baseline'")
        self._baselines = {r.data.tags.get(BASELINE) for r in baselines if r.info.status != "RUNNING"}
        self._baselines_stale: dict[str, list[str]] = {}
        for r in baselines:
            if r.info.status == "RUNNING":
                self._baselines_stale.setdefault(r.data.tags.get(BASELINE, ""), []).append(r.info.run_id)
        #: trials training now: trial id -> (attempt, last epoch, run id, epochs logged)
        self._live: dict[int, tuple[int, int, str, set[int]]] = {}
        self._jobs: dict[str, str] = {r.data.tags.get("nas.job", ""): r.info.run_id
                                      for r in self._runs(f"tags.`{ROLE}` = 'job'")}

    def _runs(self, where: str) -> list[Any]:
        out: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=where, max_results=1000,
                                           page_token=token)
            out += list(page)
            token = page.token
            if not token:
                return out

    def _open_run(self, trial_id: int, params: Mapping[str, Scalar], seed: int | None) -> str:
        """A new RUNNING run for trial ``trial_id`` with its decisions as parameters, after deleting the runs an
        unfinished earlier run of it left."""
        for run_id in self._stale.pop(str(trial_id), []):
            self.client.delete_run(run_id)
        run = self.client.create_run(self.experiment_id, run_name=f"trial {trial_id}", tags={
            ROLE: "trial", TRIAL_ID: str(trial_id), PARENT: self.parent})
        logged = [_param(k, v) for k, v in params.items()] + ([_param("seed", seed)] if seed is not None else [])
        for start in range(0, len(logged), 100):  # MLflow takes up to 100 parameters in a batch
            self.client.log_batch(run.info.run_id, params=logged[start:start + 100])
        return str(run.info.run_id)

    def epoch(self, event: TrialEpoch) -> None:
        if str(event.trial_id) in self._seen:
            return
        live = self._live.get(event.trial_id)
        if live is None or live[0] != event.attempt or event.epoch <= live[1]:
            if live is not None:
                self._stale.setdefault(str(event.trial_id), []).append(live[2])
            live = (event.attempt, event.epoch, self._open_run(event.trial_id, event.params, None), set())
        self._live[event.trial_id] = (event.attempt, event.epoch, live[2], live[3])
        now = _ms()
        self.client.log_batch(live[2], metrics=[Metric(f"epoch/{key}", number, now, event.epoch)
                                                for key, value in event.metrics.items()
                                                if key != "epoch" and (number := finite(value)) is not None])
        live[3].add(event.epoch)

    def trial(self, trial: TrackedTrial) -> None:
        if str(trial.id) in self._seen:
            self._live.pop(trial.id, None)
            return
        now = _ms()
        score = finite(trial.score)
        parent_metrics = [Metric("score", score, now, trial.n)] if score is not None else []
        if trial.best is not None:
            parent_metrics.append(Metric("best_so_far", trial.best, now, trial.n))
        if parent_metrics:
            self.client.log_batch(self.parent, metrics=parent_metrics)
        live = self._live.pop(trial.id, None)
        if live is not None:
            run_id, written = live[2], live[3]
            self.client.log_batch(run_id, params=[_param("seed", trial.seed)])
        else:
            run_id, written = self._open_run(trial.id, trial.params, trial.seed), set()
        self._finish(run_id, trial, written)
        self._seen.add(str(trial.id))

    def baseline(self, name: str, trial: TrackedTrial) -> None:
        """Baseline ``name`` as a child run tagged ``nas.role=baseline`` and ``nas.baseline=<name>``: its decisions,
        curves, final metrics and architecture as a trial's, but not in the parent's ``score`` and
        ``best_so_far`` series (a baseline is a reference, not a result of the search). Logged once."""
        if name in self._baselines:
            return
        for run_id in self._baselines_stale.pop(name, []):
            self.client.delete_run(run_id)
        run = self.client.create_run(self.experiment_id, run_name=f"baseline {name}", tags={
            ROLE: "baseline", BASELINE: name, TRIAL_ID: str(trial.id), PARENT: self.parent})
        logged = [_param(k, v) for k, v in trial.params.items()] + [_param("seed", trial.seed)]
        for start in range(0, len(logged), 100):
            self.client.log_batch(run.info.run_id, params=logged[start:start + 100])
        self._finish(run.info.run_id, trial, set())
        self._baselines.add(name)

    def _finish(self, run_id: str, trial: TrackedTrial, written: set[int]) -> None:
        """Tags, the epochs not in ``written``, final metrics and the architecture of ``trial``; ends the run."""
        now = _ms()
        score = finite(trial.score)
        tags = {HASH: trial.hash, STATUS: trial.status.value, **({"nas.error": trial.error[:5000]} if trial.error
                                                                 else {})}
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        metrics: list[Metric] = []
        for i, epoch in enumerate(trial.history):
            step = int(epoch.get("epoch", i + 1))
            if step in written:  # streamed while it trained: not twice
                continue
            metrics += [Metric(f"epoch/{key}", number, now, step) for key, value in epoch.items()
                        if key != "epoch" and (number := finite(value)) is not None]
        final = {key: finite(value) for key, value in trial.metrics.items()}
        if score is not None:
            final["score"] = score
        metrics += [Metric(key, number, now, 0) for key, number in final.items() if number is not None]
        for start in range(0, len(metrics), 1000):  # and up to 1000 metrics
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000])
        self.client.log_text(run_id, trial.arch.to_json(indent=2), "architecture.json")
        self.client.set_terminated(run_id, status=_RUN_STATUS[trial.status])

    def job_epoch(self, job: str, record: Mapping[str, Any]) -> None:
        run_id = self._jobs.get(job)
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=job,
                                         tags={ROLE: "job", "nas.job": job, PARENT: self.parent})
            run_id = self._jobs[job] = run.info.run_id
        step = int(record.get("epoch", 0)) + 1  # a job's records count epochs from 0
        now = _ms()
        self.client.log_batch(run_id, metrics=[Metric(f"job/{key}", number, now, step) for key, value in
                                               record.items() if key != "epoch" and (number := finite(value))
                                               is not None])

    def artifacts(self, files: Mapping[str, Path]) -> None:
        for path in files.values():
            if path.is_file():
                self.client.log_artifact(self.parent, str(path))

    def close(self) -> None:
        self._live.clear()  # a trial still training at the end (time box) stays RUNNING: a resume replaces it
        for run_id in self._jobs.values():
            self.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FINISHED))
        self._jobs.clear()
        self.client.set_terminated(self.parent, status="FINISHED")
