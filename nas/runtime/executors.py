"""Executors run evaluations: in-process (:class:`LocalExecutor`) or on Ray workers (the runner issue).

Both satisfy :class:`nas.trials.protocols.Executor`: ``capacity`` (how many trials may run at once),
``submit(evaluator, trial)``, ``next_done() -> Completion`` (blocks until one finishes; results arrive in any
order; the completion names the worker and the retries it took), ``shutdown()``, and ``run_job(runner, spec,
on_progress)`` for a strategy's job (a one-shot supernet search: ``runner(spec)``), which blocks until the job ends
and returns its outcome. ``in_flight`` counts the trials submitted and not yet collected; the Ray executor's
``ready`` counts those known to be finished, which the loop collects before asking again (one ask per batch).

Live epochs: ``set_epoch_sink(sink)`` has every training epoch of a running trial handed to
``sink(trial_id, attempt, epoch, metrics)`` on the driver, in the order the worker made them and before the trial's
completion is returned (the local executor calls it directly; the Ray executor's workers post to a bounded
mailbox actor the driver drains while it waits, see :class:`RayExecutor`). ``attempt`` counts the runs of a trial
in this executor (a retry after its worker died is the next).
"""

from __future__ import annotations

import functools
import math
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nas.cluster.shipping import code_runtime_env, should_ship, uploaded
from nas.core.errors import ConfigError, NASError
from nas.runtime.events import Event, NodeLost, WaitingForWorkers, WorkersLimited
from nas.trials.protocols import Completion, Evaluator, JobOutcome, JobProgress, JobRunner, JobSpec
from nas.trials.trial import Result, Trial

if TYPE_CHECKING:  # annotations only: ray is imported where used, so that local runs never load it
    from ray import ObjectRef
    from ray.actor import ActorClass, ActorHandle

__all__ = ["LocalExecutor", "RayExecutor", "PlacementTimeoutError", "placement_fit", "EpochSink", "MAILBOX_SIZE"]

_Spec = TypeVar("_Spec", bound=JobSpec)

#: where live epochs go: ``sink(trial_id, attempt, epoch, metrics)``
EpochSink = Callable[[int, int, int, dict[str, float]], None]
#: epochs the Ray mailbox holds before a worker's next post is dropped (the result's history still has it)
MAILBOX_SIZE = 10_000
#: seconds a worker waits for the mailbox to take an epoch before dropping it (training never waits longer)
POST_TIMEOUT = 5.0


class LocalExecutor:
    """Evaluates each trial in the calling process when it is submitted; one at a time."""

    capacity = 1

    def __init__(self) -> None:
        self._done: deque[Completion] = deque()
        self._sink: EpochSink | None = None

    def set_epoch_sink(self, sink: EpochSink | None) -> None:
        """Hand each training epoch to ``sink`` as it is made (see the module doc)."""
        self._sink = sink

    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        sink = self._sink
        on_epoch = None
        if sink is not None:
            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                sink(trial.id, 1, epoch, dict(metrics))
        result = evaluator.evaluate(trial) if on_epoch is None else evaluator.evaluate(trial, on_epoch)
        self._done.append(Completion(trial, result))

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
    ``device: auto`` finds it). ``address`` joins an existing cluster; by default an embedded local cluster is
    started, quietly.

    Never hangs:

    - The request is checked against the cluster's live nodes on construction (:func:`placement_fit`): a trial
      that no node can hold raises :class:`ConfigError` naming what the cluster has; when only some of the
      ``workers`` fit, ``capacity`` is what fits and a :class:`~nas.runtime.events.WorkersLimited` notice says so.

    Code and data reach the workers through Ray, whatever the nodes have installed or mounted:

    - ``ship_code`` (``auto``, ``always``, ``never``; see :mod:`nas.cluster.shipping`) decides whether this
      package, the user's ``py_modules`` and the user's ``runtime_env`` go to the workers as a Ray runtime
      environment: job-wide when this executor connects, else on each actor and task it starts
      (:attr:`runtime_env`).
    - an evaluator is put in the object store once and read once per worker; one with a ``for_workers()``
      method is replaced by what that returns first (the train evaluator loads its task's data on the driver).
    - Trials queue in the executor and go to a worker once Ray has placed it (an actor reports its node when it
      starts), so a worker Ray cannot place never holds a trial while another worker idles. A queue waiting for
      placement is reported (:class:`~nas.runtime.events.WaitingForWorkers`, first after ``notice_after``
      seconds); when trials have waited ``placement_timeout`` seconds with none running, :class:`PlacementTimeoutError`
      is raised (the trials stay RUNNING in the store; ``nas resume`` runs them).
    - Every wait lasts at most ``poll_seconds``; between waits the nodes' alive states are read
      (``ray.nodes()``): the actors of a dead node are killed and their trials run again on the others
      (:class:`~nas.runtime.events.NodeLost`), as are those whose actor Ray reports lost on a dead node. Lost
      nodes do not count against ``max_retries``: a trial whose worker process dies on a live node is retried on
      a fresh actor up to ``max_retries`` times, then recorded FAILED with the reason. On a multi-node cluster
      the verdict on a dead actor whose node still looks alive waits up to ``node_grace`` seconds (without
      blocking the other trials): Ray may report the actor's death before it marks the node dead, and a trial
      lost with its node must run again, not fail.

    ``notify`` (settable later with :meth:`set_notify`) receives those progress events; notices made before it
    is set are kept and handed to it when it is.

    Live epochs (:meth:`set_epoch_sink`): each worker posts every epoch of the trial it trains to one mailbox
    actor (holding at most :data:`MAILBOX_SIZE` epochs; a post it does not take within :data:`POST_TIMEOUT`
    seconds, or finds full, is dropped, so training never waits on it); the driver drains it at every wait of
    :meth:`next_done` (at most ``poll_seconds`` apart, without waiting for it) and, waiting for it, before it
    returns a completion, so a trial's epochs reach the sink before its result. A dropped epoch (or one whose
    post was slower than the result) is still in the result's history.
    """

    def __init__(self, *, workers: int = 2, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 address: str | None = None, max_retries: int = 1, threads_per_trial: int | None = None,
                 init_options: dict[str, Any] | None = None, placement_timeout: float = 600.0,
                 poll_seconds: float = 2.0, notice_after: float = 10.0, node_grace: float = 30.0,
                 notify: Callable[[Event], None] | None = None, ship_code: str = "never",
                 py_modules: Sequence[Path] = (), runtime_env: Mapping[str, Any] | None = None) -> None:
        import ray

        for key, value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_USAGE_STATS_ENABLED", "0"),
                           ("RAY_AUTH_MODE", "disabled")):
            os.environ.setdefault(key, value)
        self._owns_ray = not ray.is_initialized()
        #: the runtime environment of the actors and tasks this executor starts (None: the job's own)
        self.runtime_env: dict[str, Any] | None = None
        if self._owns_ray:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": "ERROR", "configure_logging": True}
            options.update(init_options or {})
            env = code_runtime_env(should_ship(ship_code, address=address, joined_nodes=None), py_modules,
                                   runtime_env)
            if env:
                options["runtime_env"] = {**env, **options.get("runtime_env", {})}
            try:
                ray.init(address=address, **options)
            except (TypeError, ValueError, OSError) as err:
                if not env or ray.is_initialized():
                    raise
                raise ConfigError(f"execution.runtime_env / ship_code: Ray refused the runtime environment "
                                  f"{_first_line(err)}; fix execution.runtime_env, or set execution.ship_code: "
                                  "never if the nodes have this package installed") from None
        else:
            joined = sum(1 for n in _nodes() if n["alive"])
            env = code_runtime_env(should_ship(ship_code, address=address, joined_nodes=joined), py_modules,
                                   runtime_env)
            self.runtime_env = uploaded(env) if env else None
        self.requested = workers
        self.cpus = cpus_per_trial
        self.gpus = gpus_per_trial
        self.max_retries = max_retries
        self.threads = threads_per_trial or max(1, int(cpus_per_trial))
        self.placement_timeout = placement_timeout
        self.poll_seconds = poll_seconds
        self.node_grace = node_grace
        self.notice_after = min(notice_after, placement_timeout / 2)
        self._notify = notify
        self._notices: list[Event] = []
        # trials waiting for a placed worker: (trial, attempts so far + 1, deaths of its worker process so far)
        self._queue: deque[tuple[Trial, int, int]] = deque()
        self._idle: list[_Worker] = []
        self._starting: dict[ObjectRef[Any], _Worker] = {}  # placement probe -> a worker Ray has not placed yet
        self._running: dict[ObjectRef[Any], tuple[Trial, _Worker, int, int]] = {}
        self._finished: deque[ObjectRef[Any]] = deque()  # tasks seen finished by a ray.wait, not yet handled
        # dead actors on nodes that still looked alive, awaiting the verdict: node lost, or the worker died
        self._suspects: list[_Suspect] = []
        self._evaluator_ref: tuple[int, ObjectRef[Evaluator]] | None = None
        self._last_evaluator: Evaluator | None = None
        self._sink: EpochSink | None = None
        self._mailbox: ActorHandle[Any] | None = None
        self._draining: ObjectRef[Any] | None = None  # a drain of the mailbox not yet answered
        self._waiting_since: float | None = None  # the queue has been non-empty since
        self._stalled_since: float | None = None  # ... and nothing has run since
        self._last_notice = 0.0
        self._last_node_check = time.monotonic()
        self._dead_nodes: set[str] = set()
        self._start_failures, self._start_error = 0, ""  # workers that failed to start, their constructor aside
        try:
            nodes = list(_alive(_nodes()).values())
            fit = placement_fit(nodes, self.cpus, self.gpus)
            if fit == 0:
                raise ConfigError(self._infeasible(nodes))
        except BaseException:
            if self._owns_ray:
                ray.shutdown()
            raise
        self.capacity = min(workers, fit)
        if fit < workers:
            self._tell(WorkersLimited(requested=workers, fit=fit, need=self._need(), cluster=_describe(nodes)))

    # -- live epochs -------------------------------------------------------------------------------------
    def set_epoch_sink(self, sink: EpochSink | None) -> None:
        """Hand each training epoch to ``sink`` on the driver (see the class doc); the mailbox actor is started
        with the first sink."""
        self._sink = sink
        if sink is not None and self._mailbox is None:
            mailbox: ActorHandle[Any] = _mailbox_class().options(  # type: ignore[assignment]  # ray types remote() loosely
                num_cpus=0, **self._env_option()).remote(MAILBOX_SIZE)
            self._mailbox = mailbox

    def _drain(self, settle: bool = False) -> None:
        """Hand the epochs the mailbox holds to the sink. A drain is one call to the mailbox, kept until it
        answers (never dropped, so no epoch is lost to a slow answer): without ``settle`` it is only looked at
        (the loop does not wait); with ``settle`` (a trial's result is in) the pending drain and then a fresh one
        are waited for, up to :data:`POST_TIMEOUT` seconds each, so every epoch posted before the result is
        handed on before it."""
        import ray
        from ray.exceptions import RayError

        if self._mailbox is None or self._sink is None:
            return
        for _ in range(2 if settle else 1):
            if self._draining is None:
                self._draining = self._mailbox.drain.remote()
            ready, _ = ray.wait([self._draining], timeout=POST_TIMEOUT if settle else 0)
            if not ready:
                return
            try:
                events = ray.get(self._draining)
            except RayError:  # the mailbox died: those epochs are in the results' histories
                events = []
            self._draining = None
            for trial_id, attempt, epoch, metrics in events:
                self._sink(trial_id, attempt, epoch, metrics)

    # -- notices -----------------------------------------------------------------------------------------
    def set_notify(self, notify: Callable[[Event], None] | None) -> None:
        """Send progress events to ``notify`` from now on, after the notices made before (if any)."""
        self._notify = notify
        if notify is not None:
            for event in self._notices:
                notify(event)
            self._notices.clear()

    def _tell(self, event: Event) -> None:
        if self._notify is None:
            self._notices.append(event)
        else:
            self._notify(event)

    def _need(self) -> str:
        return _format({"CPU": self.cpus, "GPU": self.gpus})

    def _infeasible(self, nodes: list[dict[str, float]]) -> str:
        most_cpu = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
        most_gpu = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
        if self.gpus > most_gpu + _EPS:
            field = f"execution.gpus_per_trial = {self.gpus:g}"
        elif self.cpus > most_cpu + _EPS:
            field = f"execution.cpus_per_trial = {self.cpus:g}"
        else:
            field = f"execution.cpus_per_trial = {self.cpus:g} with execution.gpus_per_trial = {self.gpus:g}"
        return (f"{field}: no node of the Ray cluster can hold one trial ({self._need()}); the cluster has "
                f"{_describe(nodes)}; lower the request, or run on a cluster with such a node (execution.address)")

    # -- placement -------------------------------------------------------------------------------------------
    def _new_worker(self) -> None:
        actors = _worker_class().options(num_cpus=self.cpus, num_gpus=self.gpus, **self._env_option())
        handle: ActorHandle[Any] = actors.remote(self.threads)  # type: ignore[assignment]  # ray types remote() loosely
        worker = _Worker(handle)
        self._starting[handle.where.remote()] = worker

    def _env_option(self) -> dict[str, Any]:
        return {"runtime_env": self.runtime_env} if self.runtime_env else {}

    def _workers(self) -> int:
        return len(self._idle) + len(self._starting) + len(self._running)

    def _dispatch(self) -> None:
        """Give queued trials to placed idle workers; ask Ray for more workers while trials wait and the
        capacity allows."""
        import ray

        while self._queue and self._idle:
            trial, attempts, deaths = self._queue.popleft()
            worker = self._idle.pop()
            assert self._evaluator_ref is not None  # set by submit()
            ref = worker.handle.evaluate.remote([self._evaluator_ref[1]], trial, self._mailbox if self._sink else None,
                                                attempts)
            self._running[ref] = (trial, worker, attempts, deaths)
        while self._queue and len(self._starting) < len(self._queue) and self._workers() < self.capacity:
            self._new_worker()
        while self._idle and self._workers() > self.capacity:  # the cluster shrank: let idle workers go
            ray.kill(self._idle.pop().handle, no_restart=True)
        now = time.monotonic()
        if not self._queue:
            self._waiting_since = self._stalled_since = None
        else:
            self._waiting_since = self._waiting_since or now
            self._stalled_since = None if self._running else (self._stalled_since or now)

    def _placed(self, ref: ObjectRef[Any]) -> None:
        import ray
        from ray.exceptions import RayActorError, RayError

        worker = self._starting.pop(ref)
        try:
            worker.node, worker.where = ray.get(ref, timeout=self.poll_seconds)
        except RayError as err:  # the actor died while starting: a broken setup, or its node or start-up failed
            ray.kill(worker.handle, no_restart=True)
            if isinstance(err, RayActorError) and err.actor_init_failed:  # its constructor raised: it always will
                raise NASError(f"a Ray trial worker failed to start: {_first_line(err)}") from None
            # a system failure (a node lost, a worker start timed out): try again, within the placement timeout
            self._start_failures, self._start_error = self._start_failures + 1, _first_line(err)
            return
        if worker.node in self._dead_nodes:
            ray.kill(worker.handle, no_restart=True)
            return
        self._idle.append(worker)

    def _check_nodes(self) -> None:
        """Read the nodes' alive states: the workers of a dead node are lost (:meth:`_lose_node`); ``capacity``
        becomes what the live nodes hold (at least 1: with no node left the search waits for one, up to the
        placement timeout, rather than stop)."""
        self._last_node_check = time.monotonic()
        nodes = _nodes()
        for node in sorted({w.node for w in self._placed_workers() if w.node is not None} - set(_alive(nodes))):
            self._lose_node(node, nodes)
        self.capacity = max(1, min(self.requested, placement_fit(list(_alive(nodes).values()), self.cpus, self.gpus)))

    def _lose_node(self, node: str, nodes: list[dict[str, Any]], also: tuple[int, ...] = ()) -> None:
        """Node ``node`` died: kill its workers (releasing their reservations), put the trials they ran back at
        the head of the queue (not counted against ``max_retries``) and say so. ``also`` are trials of that node
        already requeued."""
        import ray

        lost = list(also)
        for ref, (trial, worker, attempts, deaths) in list(self._running.items()):
            if worker.node == node:
                del self._running[ref]
                ray.kill(worker.handle, no_restart=True)
                self._queue.appendleft((trial, attempts + 1, deaths))
                lost.append(trial.id)
        for worker in [w for w in self._idle if w.node == node]:
            self._idle.remove(worker)
            ray.kill(worker.handle, no_restart=True)
        for suspect in [x for x in self._suspects if x.worker.node == node]:
            self._suspects.remove(suspect)
            self._queue.appendleft((suspect.trial, suspect.attempts + 1, suspect.deaths))
            lost.append(suspect.trial.id)
        self._dead_nodes.add(node)
        self.capacity = max(1, min(self.requested, placement_fit(list(_alive(nodes).values()), self.cpus, self.gpus)))
        address = next((n["address"] for n in nodes if n["id"] == node), "?")
        self._tell(NodeLost(node=f"{address} ({node[:8]})", trials=tuple(sorted(lost)), capacity=self.capacity))

    def _placed_workers(self) -> list[_Worker]:
        return self._idle + [w for _, w, _, _ in self._running.values()]

    def _waited(self) -> None:
        """A wait timed out: check the nodes; report a queue that waits for placement; stop the search when
        trials have waited ``placement_timeout`` seconds with none running."""
        import ray

        self._check_nodes()
        self._dispatch()
        now = time.monotonic()
        if self._waiting_since is None:
            return
        stops_in = (None if self._stalled_since is None
                    else self.placement_timeout - (now - self._stalled_since))
        if stops_in is not None and stops_in <= 0:
            raise PlacementTimeoutError(
                f"no Ray worker could be placed for {self.placement_timeout:g}s (execution.placement_timeout) while "
                f"{len(self._queue)} trial(s) waited and none ran: each worker needs {self._need()}, the cluster has "
                f"{_describe(list(_alive(_nodes()).values()))}, free now: {_format(ray.available_resources())}; "
                "free resources on the cluster, lower execution.cpus_per_trial / gpus_per_trial or raise "
                "execution.placement_timeout, then `nas resume` the experiment (the waiting trials run then)"
                + (f"; {self._start_failures} worker(s) failed to start, the last: {self._start_error}"
                   if self._start_failures else ""))
        waited = now - self._waiting_since
        if waited >= self.notice_after and now - self._last_notice >= max(self.notice_after, 60.0):
            self._last_notice = now
            self._tell(WaitingForWorkers(waiting=len(self._queue), running=len(self._running), seconds=waited,
                                         need=self._need(), free=_format(ray.available_resources()),
                                         stops_in=stops_in))

    # -- the executor contract -------------------------------------------------------------------------------
    def submit(self, evaluator: Evaluator, trial: Trial) -> None:
        """Queue ``trial``; it starts as soon as a worker is placed and free. At most ``capacity`` trials are in
        flight (queued or running)."""
        import ray

        if self.in_flight >= self.capacity:
            raise RuntimeError(f"submit(): all {self.capacity} workers are busy; collect a result with next_done() "
                               "first")
        if self._evaluator_ref is None or self._evaluator_ref[0] != id(evaluator):
            prepare = getattr(evaluator, "for_workers", None)  # its data loaded here, to go once to the workers
            self._evaluator_ref = (id(evaluator), ray.put(prepare() if callable(prepare) else evaluator))
        self._last_evaluator = evaluator
        self._queue.append((trial, 1, 0))
        self._dispatch()

    @property
    def in_flight(self) -> int:
        return len(self._queue) + len(self._running) + len(self._suspects)

    def next_done(self) -> Completion:
        """The next trial to finish, with the worker it ran on (``host/node:pid[:gpuN]``) and the extra attempts it
        took because a worker or its node died (a trial whose worker process still dies after ``max_retries``
        retries is returned FAILED). Waits at most ``poll_seconds`` at a time (see the class doc); raises
        :class:`PlacementTimeoutError` when no worker can be placed."""

        while True:
            if not self.in_flight:
                raise RuntimeError("next_done() with nothing submitted")
            self._dispatch()
            if time.monotonic() - self._last_node_check >= self.poll_seconds:
                self._waited()
            judged = self._judge_suspects()
            if judged is not None:
                return judged
            ref = self._next_ready()
            self._drain(settle=ref is not None and ref in self._running)
            if ref is None:
                self._waited()
                continue
            if ref in self._starting:
                self._placed(ref)
                continue
            completion = self._collect(ref)
            if completion is not None:
                return completion

    @property
    def ready(self) -> int:
        """Trials known to have finished and not yet collected: :meth:`next_done` returns (at least) that many
        without waiting on a worker."""
        return sum(ref in self._running for ref in self._finished)

    def _next_ready(self) -> ObjectRef[Any] | None:
        """A finished task (a trial, or a worker's placement probe), or None after waiting ``poll_seconds``.

        One ``ray.wait`` over the tasks in flight costs time in their number, so it is not made once per result:
        every finished task it finds is kept (:attr:`_finished`) and handed out one by one; only when none is left
        is the next wait made (first without blocking, for all that finished meanwhile, then for one)."""
        import ray

        while self._finished:
            ref = self._finished.popleft()
            if ref in self._running or ref in self._starting:  # not requeued or killed since it was seen
                return ref
        refs = list(self._running) + list(self._starting)
        if not refs:
            if self._suspects:  # only verdicts are awaited: do not spin on the cluster's node table
                time.sleep(min(0.5, self.poll_seconds))
            return None
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = ray.wait(refs, num_returns=1, timeout=self.poll_seconds)
        if not ready:
            return None
        self._finished.extend(ready[1:])
        return ready[0]

    def _collect(self, ref: ObjectRef[Any]) -> Completion | None:
        """The completion of the finished task ``ref``, or None when its trial went back to the queue."""
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        trial, worker, attempts, deaths = self._running.pop(ref)
        try:
            result, where = ray.get(ref, timeout=self.poll_seconds)
        except (RayActorError, WorkerCrashedError) as err:
            ray.kill(worker.handle, no_restart=True)
            nodes = _nodes()
            alive = _alive(nodes)
            if worker.node is not None and worker.node not in alive:  # the node died, not the trial's doing
                self._queue.appendleft((trial, attempts + 1, deaths))
                self._lose_node(worker.node, nodes, also=(trial.id,))
                return None
            if worker.node is not None and len(alive) > 1 and self.node_grace > 0:
                # Ray may say the actor died before it marks its node dead: the verdict waits (_judge_suspects)
                self._suspects.append(_Suspect(trial, worker, attempts, deaths, time.monotonic(), _first_line(err)))
                return None
            return self._worker_died(trial, attempts, deaths, _first_line(err))
        except Exception as err:  # the evaluator raised (ours never do), or Ray failed
            self._idle.append(worker)
            cause = getattr(err, "cause", None) or err  # RayTaskError wraps the worker's exception
            first = str(cause).splitlines()[0][:200] if str(cause) else ""
            failed = Result.failed(f"{type(cause).__name__}: {first}" if first else type(cause).__name__,
                                   traceback=str(err))
            return Completion(trial, failed, retries=attempts - 1)
        self._idle.append(worker)
        return Completion(trial, result, where, attempts - 1)

    def _worker_died(self, trial: Trial, attempts: int, deaths: int, why: str) -> Completion | None:
        """A trial's worker process died on a live node: run it again on a fresh actor while ``max_retries``
        allows (None), else its FAILED completion."""
        if deaths < self.max_retries:
            self._queue.appendleft((trial, attempts + 1, deaths + 1))
            return None
        return Completion(trial, Result.failed(f"worker died: {why} (after {attempts} attempts)"),
                          retries=attempts - 1)

    def _judge_suspects(self) -> Completion | None:
        """Settle the dead actors awaiting a verdict: those whose node is now dead are lost with it (their trials
        run again, :meth:`_lose_node`); those whose node is still alive ``node_grace`` seconds after the death
        count as worker deaths (:meth:`_worker_died`). Returns the first FAILED completion this makes, if any."""
        if not self._suspects:
            return None
        nodes = _nodes()
        alive = _alive(nodes)
        for node in sorted({x.worker.node for x in self._suspects if x.worker.node and x.worker.node not in alive}):
            self._lose_node(node, nodes)
        now = time.monotonic()
        for suspect in [x for x in self._suspects if now - x.since >= self.node_grace]:
            self._suspects.remove(suspect)
            done = self._worker_died(suspect.trial, suspect.attempts, suspect.deaths, suspect.why)
            if done is not None:
                return done
        return None

    def run_job(self, runner: JobRunner[_Spec], spec: _Spec, on_progress: JobProgress | None = None,
                poll_seconds: float = 2.0) -> JobOutcome:
        """Run ``runner(spec)`` as one Ray task with this executor's CPUs per trial and a GPU when the cluster has
        one (or ``gpus_per_trial`` if set). Progress is read from ``spec.read_history()`` every ``poll_seconds``
        (the job's files are where the spec says: the driver's machine reached through Ray, or the configured
        storage). A dead worker is replaced up to ``max_retries`` times; the job resumes from its last checkpoint.

        The job's resources are reserved first (a placement group of one bundle), under the trials' placement rules:
        a wait is reported (:class:`~nas.runtime.events.WaitingForWorkers`) and after ``placement_timeout`` seconds
        unplaced :class:`PlacementTimeoutError` is raised (``nas resume`` runs the job then)."""
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        gpus = self.gpus or (1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0)
        bundle = {"CPU": self.cpus, **({"GPU": gpus} if gpus else {})}
        group = placement_group([bundle])
        try:
            self._wait_for_job_placement(group.ready(), spec.name, _format(bundle))
            task = ray.remote(_run_job).options(num_cpus=self.cpus, num_gpus=gpus, max_retries=self.max_retries,
                                                scheduling_strategy=PlacementGroupSchedulingStrategy(group),
                                                **self._env_option())
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
        finally:
            remove_placement_group(group)

    def _wait_for_job_placement(self, ready: ObjectRef[Any], name: str, need: str) -> None:
        """Wait until ``ready`` (a placement group's) resolves, reporting the wait after ``notice_after`` seconds;
        :class:`PlacementTimeoutError` after ``placement_timeout``."""
        import ray

        start = last_notice = time.monotonic()
        while True:
            waited = time.monotonic() - start
            stops_in = self.placement_timeout - waited
            if stops_in <= 0:
                raise PlacementTimeoutError(
                    f"the {name} job could not be placed on the Ray cluster for {self.placement_timeout:g}s "
                    f"(execution.placement_timeout): it needs {need}, the cluster has "
                    f"{_describe(list(_alive(_nodes()).values()))}, free now: {_format(ray.available_resources())}; "
                    "free resources on the cluster, lower execution.cpus_per_trial / gpus_per_trial or raise "
                    "execution.placement_timeout, then `nas resume` the experiment (the job runs then)")
            done, _ = ray.wait([ready], timeout=max(0.01, min(self.poll_seconds, stops_in)))
            if done:
                return
            now = time.monotonic()
            if now - start >= self.notice_after and (last_notice == start
                                                     or now - last_notice >= max(self.notice_after, 60.0)):
                last_notice = now
                self._tell(WaitingForWorkers(waiting=1, running=0, seconds=now - start, need=need,
                                             free=_format(ray.available_resources()), stops_in=stops_in,
                                             what=f"{name} job"))

    def shutdown(self) -> None:
        import ray

        for worker in self._placed_workers() + list(self._starting.values()):
            ray.kill(worker.handle, no_restart=True)
        self._idle, self._running, self._starting = [], {}, {}
        self._finished.clear()
        if self._mailbox is not None:
            ray.kill(self._mailbox, no_restart=True)
            self._mailbox = self._draining = None
        self._queue.clear()
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()


class PlacementTimeoutError(NASError):
    """Trials waited ``execution.placement_timeout`` seconds for a worker Ray could not place, with none running."""


@dataclass
class _Worker:
    """A trial actor: its node id and ``host/node:pid[:gpuN]`` once Ray has placed it (None before)."""

    handle: ActorHandle[Any]
    node: str | None = None
    where: str | None = None


@dataclass
class _Suspect:
    """A trial whose actor died on a node that still looked alive: the verdict waits (see ``node_grace``)."""

    trial: Trial
    worker: _Worker
    attempts: int
    deaths: int
    since: float
    why: str


_EPS = 1e-9


def placement_fit(nodes: list[dict[str, float]], cpus: float, gpus: float) -> int:
    """How many workers of ``cpus`` CPUs and ``gpus`` GPUs each the nodes (their total resources, as
    ``ray.nodes()`` gives them) can hold at once; 0 when no node can hold one."""
    total = 0
    for node in nodes:
        counts = [math.floor(node.get(kind, 0.0) / need + _EPS) for kind, need in (("CPU", cpus), ("GPU", gpus))
                  if need > 0]
        total += min(counts) if counts else 0
    return total


def _nodes() -> list[dict[str, Any]]:
    """The cluster's nodes, dead ones included: ``id``, ``address``, ``alive`` and ``resources`` (totals)."""
    import ray

    return [{"id": n["NodeID"], "address": n.get("NodeManagerAddress", "?"), "alive": bool(n.get("Alive")),
             "resources": dict(n.get("Resources") or {})} for n in ray.nodes()]


def _alive(nodes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Node id -> total resources, of the live nodes."""
    return {n["id"]: n["resources"] for n in nodes if n["alive"]}


def _format(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(kind, 0.0):g} {kind}" for kind in ("CPU", "GPU"))


def _describe(nodes: list[dict[str, float]]) -> str:
    """The CPUs and GPUs of live nodes, in all and per node (at most 8 listed)."""
    total = {kind: sum(n.get(kind, 0.0) for n in nodes) for kind in ("CPU", "GPU")}
    each = "; ".join(_format(n) for n in nodes[:8]) + ("; ..." if len(nodes) > 8 else "")
    return f"{_format(total)} on {len(nodes)} live node(s)" + (f" ({each})" if len(nodes) > 1 else "")


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


def _describe_worker() -> str:
    """``host/node:pid[:gpuN]`` of the calling Ray worker: its host, the first 8 hex digits of its Ray node's id
    (several nodes may share a host), its process id and GPUs."""
    import ray

    gpus = ",".join(str(g) for g in ray.get_gpu_ids())
    node = ray.get_runtime_context().get_node_id()[:8]
    return f"{socket.gethostname()}/{node}:{os.getpid()}" + (f":gpu{gpus}" if gpus else "")


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

        def where(self) -> tuple[str, str]:
            """The id of this worker's node and its description (``host/node:pid[:gpuN]``): the placement probe."""
            return ray.get_runtime_context().get_node_id(), _describe_worker()

        def evaluate(self, evaluator_ref: list[ObjectRef[Evaluator]], trial: Trial,
                     mailbox: ActorHandle[Any] | None = None, attempt: int = 1) -> tuple[Result, str]:
            ref = evaluator_ref[0]
            key = ref.hex()  # a ray ObjectRef, passed in a list unresolved
            if key not in self._evaluators:
                self._evaluators = {key: ray.get(ref)}
            on_epoch = None
            if mailbox is not None:
                def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                    try:  # waited for, so the epochs arrive in order and before the result
                        ray.get(mailbox.post.remote((trial.id, attempt, epoch, dict(metrics))), timeout=POST_TIMEOUT)
                    except Exception:  # a mailbox gone or slow: drop the epoch, training goes on
                        pass
            evaluator = self._evaluators[key]
            result = evaluator.evaluate(trial) if on_epoch is None else evaluator.evaluate(trial, on_epoch)
            return result, _describe_worker()

    return ray.remote(TrialWorker)


@functools.lru_cache(maxsize=1)
def _mailbox_class() -> ActorClass[Any]:
    """The Ray actor that holds live epochs between the workers' posts and the driver's drains."""
    import ray

    class EpochMailbox:
        """A bounded FIFO of ``(trial_id, attempt, epoch, metrics)``; a post to a full box is dropped. A plain
        (not async) actor: the calls of one caller run in the order they were made."""

        def __init__(self, size: int) -> None:
            self._events: deque[tuple[int, int, int, dict[str, float]]] = deque()
            self._size = size

        def post(self, event: tuple[int, int, int, dict[str, float]]) -> bool:
            if len(self._events) >= self._size:
                return False
            self._events.append(event)
            return True

        def drain(self) -> list[tuple[int, int, int, dict[str, float]]]:
            out = list(self._events)
            self._events.clear()
            return out

    return ray.remote(EpochMailbox)
