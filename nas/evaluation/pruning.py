"""Early stopping of weak candidates: asynchronous successive halving (ASHA, Li et al., MLSys 2020).

Rungs sit at ``grace_epochs * reduction_factor**k`` epochs. A trial reaching a rung records its score there (the
validation metric of ``evaluator.metric`` oriented to be maximised: accuracy by default, ``-rmse`` for ``rmse``)
and goes on only if it is among the top ``1 / reduction_factor`` of all values recorded at that rung so far (the
first trials at a rung always go on). Decisions need no synchronisation between trials, so
workers never wait. One pruner serves all workers: in-process for the local executor, a Ray actor
(:class:`RemotePruner`) for the Ray executor.
"""

from __future__ import annotations

from typing import Any

from nas.core.checks import check_int
from nas.core.errors import NASError

__all__ = ["ASHA", "RemotePruner"]


class ASHA:
    """Options: ``grace_epochs`` (first rung, 1), ``reduction_factor`` (3)."""

    def __init__(self, *, grace_epochs: int = 1, reduction_factor: int = 3) -> None:
        check_int("early_stopping.grace_epochs", grace_epochs, minimum=1)
        check_int("early_stopping.reduction_factor", reduction_factor, minimum=2)
        self.grace = grace_epochs
        self.eta = reduction_factor
        self.rungs: dict[int, list[float]] = {}

    def is_rung(self, epoch: int) -> bool:
        e = epoch / self.grace
        while e > 1 and e == int(e):
            e /= self.eta
        return e == 1

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Record ``value`` (a score: higher is better) at ``epoch``; False means stop the trial."""
        if not self.is_rung(epoch):
            return True
        values = self.rungs.setdefault(epoch, [])
        values.append(value)
        keep = max(1, len(values) // self.eta)
        return value >= sorted(values, reverse=True)[keep - 1]


class RemotePruner:
    """A picklable handle on a pruner living in a Ray actor (one for all workers). Every call waits at most
    ``timeout`` seconds for the actor (the experiment passes ``execution.placement_timeout``), then raises
    :class:`NASError` saying so: the trial that asked fails with that reason rather than wait forever."""

    def __init__(self, *, timeout: float = 600.0, runtime_env: dict[str, Any] | None = None,
                 **options: Any) -> None:
        """``options`` are :class:`ASHA`'s; ``runtime_env`` that of the actor (None: the job's)."""
        import ray

        self.timeout = timeout
        env = {"runtime_env": runtime_env} if runtime_env else {}
        # an actor handle: ray types `handle.method.remote` only for methods decorated with @ray.method, which
        # would make this module import ray at its top (it is loaded by runs that never start Ray)
        self._actor: Any = ray.remote(ASHA).options(num_cpus=0, **env).remote(**options)

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            return bool(ray.get(self._actor.report.remote(trial_id, epoch, value), timeout=self.timeout))
        except GetTimeoutError:
            raise NASError(f"the early-stopping pruner (a Ray actor) did not answer within {self.timeout:g}s "
                           "(execution.placement_timeout); check the Ray cluster (`ray status`) and `nas resume` "
                           "the experiment") from None
