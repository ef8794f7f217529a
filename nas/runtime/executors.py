"""Executors run evaluations: in-process (:class:`LocalExecutor`) or on Ray workers (the runner issue).

Both satisfy :class:`nas.trials.protocols.Executor`: ``capacity`` (how many trials may run at once),
``submit(evaluator, trial)``, ``next_done() -> Completion`` (blocks until one finishes; results arrive in any
order; the completion names the worker and the retries it took), ``shutdown()``, and ``run_job(runner, spec,
on_progress)`` for a strategy's job (a one-shot supernet search: ``runner(spec)``), which blocks until the job ends
and returns its outcome. ``in_flight`` counts the trials submitted and not yet collected.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar

from nas.core.errors import NASError
from nas.trials.protocols import Completion, Evaluator, JobOutcome, JobProgress, JobRunner, JobSpec
from nas.trials.trial import Result, Trial

if TYPE_CHECKING:  # annotations only: ray is imported where used, so that local runs never load it
    from ray import ObjectRef
    from ray.actor import ActorClass, ActorHandle

__all__ = ["LocalExecutor", "RayExecutor"]

_Spec = TypeVar("_Spec", bound=JobSpec)


class LocalExecutor:
    """Evaluates each trial in the calling process when it is submitted; one at a time."""

    capacity = 1

    def __init__(self) -> None:
        self._done: deque[Completion] = deque()

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        self._done.append(Completion(trial, evaluator.evaluate(trial)))

    @property
    def in_flight(self) -> int:
        return len(self._done)

    def next_done(self) -> Completion:
        if not self._done:
            raise RuntimeError("next_done() with nothing submitted")
        return self._done.popleft()

    def run_job(self, runner: JobRunner[_Spec], spec: _Spec, on_progress: JobProgress | None = None) -> JobOutcome:
        """Run the job ``spec`` describes with ``runner`` here; ``on_progress`` receives each epoch record as it is
        made."""
        return runner(spec, on_progress)

    def shutdown(self) -> None:
        self._done.clear()


class RayExecutor:
    """Runs trials on Ray actors, one trial per actor at a time, actors reused across trials.

    Ray core actors rather than Ray Tune: the search loop (ask/tell, store, checkpoint) is ours, so what we
    need from Ray is resource-aware placement, reuse of warm workers and failure detection, which actors give
    with far less per-trial overhead than a Tune trial. Each actor reserves ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs (fractions share a GPU; Ray sets ``CUDA_VISIBLE_DEVICES`` so the trainer's
    ``device: auto`` finds it). A trial whose worker dies is retried on a fresh actor up to ``max_retries``
    times, then recorded FAILED with the reason. ``address`` joins an existing cluster; by default an embedded
    local cluster is started, quietly.
    """

    def __init__(self, *, workers: int = 2, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 address: str | None = None, max_retries: int = 1, threads_per_trial: int | None = None,
                 init_options: dict[str, Any] | None = None) -> None:
        import os

        import ray

        for key, value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_USAGE_STATS_ENABLED", "0"),
                           ("RAY_AUTH_MODE", "disabled")):
            os.environ.setdefault(key, value)
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": "ERROR", "configure_logging": True}
            options.update(init_options or {})
            ray.init(address=address, **options)
        self.capacity = workers
        self.cpus = cpus_per_trial
        self.gpus = gpus_per_trial
        self.max_retries = max_retries
        self.threads = threads_per_trial or max(1, int(cpus_per_trial))
        self._idle: list[ActorHandle[Any]] = []
        self._running: dict[ObjectRef[Any], tuple[Trial, ActorHandle[Any], int]] = {}
        self._evaluator_ref: tuple[int, ObjectRef[Evaluator]] | None = None

    def _actor(self) -> ActorHandle[Any]:
        if self._idle:
            return self._idle.pop()
        actors = _worker_class().options(num_cpus=self.cpus, num_gpus=self.gpus)
        return actors.remote(self.threads)  # type: ignore[return-value]  # ray types remote() as a handle or the class

    def _launch(self, evaluator: Evaluator, trial: Trial, attempt: int) -> None:
        import ray

        if self._evaluator_ref is None or self._evaluator_ref[0] != id(evaluator):
            self._evaluator_ref = (id(evaluator), ray.put(evaluator))
        actor = self._actor()
        ref = actor.evaluate.remote([self._evaluator_ref[1]], trial)
        self._running[ref] = (trial, actor, attempt)
        self._last_evaluator = evaluator

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        """Start ``trial`` on a free worker; at most ``capacity`` trials run at once."""
        if len(self._running) >= self.capacity:
            raise RuntimeError(f"submit(): all {self.capacity} workers are busy; collect a result with next_done() "
                               "first")
        self._launch(evaluator, trial, 1)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def next_done(self) -> Completion:
        """The next trial to finish, with the worker it ran on (``host:pid[:gpuN]``) and the extra attempts it
        took because a worker died (a trial still failing after ``max_retries`` is returned FAILED)."""
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        while True:
            if not self._running:
                raise RuntimeError("next_done() with nothing submitted")
            (ref,), _ = ray.wait(list(self._running), num_returns=1)
            trial, actor, attempt = self._running.pop(ref)
            try:
                result, worker = ray.get(ref)
            except (RayActorError, WorkerCrashedError) as err:
                ray.kill(actor, no_restart=True)
                reason = f"worker died: {str(err).splitlines()[0][:200]}"
                if attempt <= self.max_retries:
                    self._launch(self._last_evaluator, trial, attempt + 1)
                    continue
                return Completion(trial, Result.failed(f"{reason} (after {attempt} attempts)"), retries=attempt - 1)
            except Exception as err:  # the evaluator raised (ours never do), or Ray failed
                self._idle.append(actor)
                cause = getattr(err, "cause", None) or err  # RayTaskError wraps the worker's exception
                first = str(cause).splitlines()[0][:200] if str(cause) else ""
                failed = Result.failed(f"{type(cause).__name__}: {first}" if first else type(cause).__name__,
                                       traceback=str(err))
                return Completion(trial, failed, retries=attempt - 1)
            self._idle.append(actor)
            return Completion(trial, result, worker, attempt - 1)

    def run_job(self, runner: JobRunner[_Spec], spec: _Spec, on_progress: JobProgress | None = None,
                poll_seconds: float = 2.0) -> JobOutcome:
        """Run ``runner(spec)`` as one Ray task with this executor's CPUs per trial and a GPU when the cluster has
        one (or ``gpus_per_trial`` if set). Progress is read from ``spec.read_history()`` every ``poll_seconds``
        (the experiment directory must be shared storage on a multi-node cluster). A dead worker is replaced
        up to ``max_retries`` times; the job resumes from its last checkpoint."""
        import ray

        gpus = self.gpus or (1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0)
        task = ray.remote(_run_job).options(num_cpus=self.cpus, num_gpus=gpus, max_retries=self.max_retries)
        ref = task.remote(runner, spec, self.threads)
        seen = 0
        while True:
            ready, _ = ray.wait([ref], timeout=poll_seconds)
            history = spec.read_history()
            for record in history[seen:]:
                if on_progress is not None:
                    on_progress(record)
            seen = max(seen, len(history))
            if ready:
                break
        try:
            outcome: JobOutcome = ray.get(ref)
        except Exception as err:
            cause = getattr(err, "cause", None) or err
            if isinstance(cause, NASError):
                raise cause from None
            raise NASError(f"the {spec.name} job failed: {type(cause).__name__}: "
                           f"{str(cause).splitlines()[0][:300]}") from None
        return outcome

    def shutdown(self) -> None:
        import ray

        for actor in self._idle + [a for _, a, _ in self._running.values()]:
            ray.kill(actor, no_restart=True)
        self._idle, self._running = [], {}
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


def _run_job(runner: JobRunner[Any], spec: JobSpec, threads: int) -> JobOutcome:
    """A Ray task body: run a job with ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    return runner(spec)


@functools.lru_cache(maxsize=1)
def _worker_class() -> ActorClass[Any]:
    """The Ray actor class, defined on first use so that importing this module does not import Ray."""
    import ray

    class TrialWorker:
        """Evaluates trials; keeps each evaluator (and the data it loaded) warm between trials."""

        def __init__(self, threads: int) -> None:
            import torch

            torch.set_num_threads(threads)
            self._evaluators: dict[str, Evaluator] = {}

        def evaluate(self, evaluator_ref: list[ObjectRef[Evaluator]], trial: Trial) -> tuple[Result, str]:
            import os
            import socket

            ref = evaluator_ref[0]
            key = ref.hex()  # a ray ObjectRef, passed in a list unresolved
            if key not in self._evaluators:
                self._evaluators = {key: ray.get(ref)}
            gpus = ",".join(str(g) for g in ray.get_gpu_ids())
            where = f"{socket.gethostname()}:{os.getpid()}" + (f":gpu{gpus}" if gpus else "")
            return self._evaluators[key].evaluate(trial), where

    return ray.remote(TrialWorker)
