"""The search as MLflow runs (``mlflow-skinny``'s tracking client; no global MLflow state is touched: the
tracker holds its own ``MlflowClient``).

In the MLflow experiment named after ours: one parent run ``search`` (tag ``nas.role=search``) with the
search's settings as parameters, ``score`` and ``best_so_far`` by trial number, and ``best.json`` (and the report,
when written) as artifacts; one child run per trial (tags ``nas.role=trial``, ``nas.trial_id``, ``nas.hash``,
``nas.status``; ``mlflow.parentRunId``) with the decisions as parameters, the per-epoch curves as
``epoch/<metric>`` by epoch, the final metrics, and ``architecture.json`` as an artifact; one child run per job
of the strategy (a supernet search) with its per-epoch figures. A trial id already logged (an earlier session)
is skipped; a resumed search logs into the same parent run.
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

from nas.tracking.base import Scalar, TrackedTrial, finite
from nas.trials.trial import Status

__all__ = ["MlflowTracker", "ROLE", "TRIAL_ID"]

ROLE, TRIAL_ID, HASH, STATUS, PARENT = "nas.role", "nas.trial_id", "nas.hash", "nas.status", "mlflow.parentRunId"
_RUN_STATUS = {Status.COMPLETE: "FINISHED", Status.FAILED: "FAILED", Status.PRUNED: "KILLED"}
_MAX_PARAM = 6000  # MLflow's limit on a parameter value's length


def _param(key: str, value: Any) -> Param:
    text = value if isinstance(value, str) else json.dumps(value)
    return Param(key, text[:_MAX_PARAM])


def _ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker:
    """Log into the MLflow experiment ``experiment`` at ``tracking_uri`` (created if missing, its artifacts at
    ``artifact_location`` when given); ``params`` are the search's settings, logged on the parent run."""

    name = "mlflow"

    def __init__(self, *, tracking_uri: str, experiment: str, artifact_location: str | None = None,
                 params: Mapping[str, Scalar] | None = None) -> None:
        migrations = logging.getLogger("mlflow.store.db.utils")
        level = migrations.level
        migrations.setLevel(logging.WARNING)  # no "Creating initial MLflow database tables" lines in the progress
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
            found = self.client.get_experiment_by_name(experiment)  # the store (and its schema) is made by now
        finally:
            migrations.setLevel(level)
        self.experiment_id = (found.experiment_id if found is not None else
                              self.client.create_experiment(experiment, artifact_location=artifact_location))
        parents = self._runs(f"tags.`{ROLE}` = 'search'")
        if parents:
            self.parent = parents[0].info.run_id
            self.client.update_run(self.parent, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name="search", tags={ROLE: "search"})
            self.parent = run.info.run_id
            if params:
                self.client.log_batch(self.parent, params=[_param(k, v) for k, v in params.items()])
        self._seen = {r.data.tags.get(TRIAL_ID) for r in self._runs(f"tags.`{ROLE}` = 'trial'")}
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

    def trial(self, trial: TrackedTrial) -> None:
        if str(trial.id) in self._seen:
            return
        now = _ms()
        score = finite(trial.score)
        parent_metrics = [Metric("score", score, now, trial.n)] if score is not None else []
        if trial.best is not None:
            parent_metrics.append(Metric("best_so_far", trial.best, now, trial.n))
        if parent_metrics:
            self.client.log_batch(self.parent, metrics=parent_metrics)
        run = self.client.create_run(self.experiment_id, run_name=f"trial {trial.id}", tags={
            ROLE: "trial", TRIAL_ID: str(trial.id), HASH: trial.hash, STATUS: trial.status.value,
            PARENT: self.parent, **({"nas.error": trial.error[:5000]} if trial.error else {})})
        run_id = run.info.run_id
        metrics: list[Metric] = []
        for i, epoch in enumerate(trial.history):
            step = int(epoch.get("epoch", i + 1))
            metrics += [Metric(f"epoch/{key}", number, now, step) for key, value in epoch.items()
                        if key != "epoch" and (number := finite(value)) is not None]
        final = {key: finite(value) for key, value in trial.metrics.items()}
        if score is not None:
            final["score"] = score
        metrics += [Metric(key, number, now, 0) for key, number in final.items() if number is not None]
        params = [_param(k, v) for k, v in trial.params.items()] + [_param("seed", trial.seed)]
        for start in range(0, len(params), 100):  # MLflow takes up to 100 parameters in a batch
            self.client.log_batch(run_id, params=params[start:start + 100])
        for start in range(0, len(metrics), 1000):  # and up to 1000 metrics
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000])
        self.client.log_text(run_id, trial.arch.to_json(indent=2), "architecture.json")
        self.client.set_terminated(run_id, status=_RUN_STATUS[trial.status])
        self._seen.add(str(trial.id))

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
        for run_id in self._jobs.values():
            self.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.FINISHED))
        self._jobs.clear()
        self.client.set_terminated(self.parent, status="FINISHED")
