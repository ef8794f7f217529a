"""Early stopping of weak candidates: asynchronous successive halving (ASHA, Li et al., MLSys 2020) and
asynchronous Hyperband (Li et al., JMLR 2018: brackets of successive halving with different first rungs).

Rungs sit at ``grace_epochs * reduction_factor**k`` epochs. A trial reaching a rung records its score there (the
validation metric of ``evaluator.metric`` oriented to be maximised: accuracy by default, ``-rmse`` for ``rmse``;
for the ``ssl`` evaluator its pretext's validation score, or its probe's accuracy)
and goes on only if it is among the top ``1 / reduction_factor`` of all values recorded at that rung so far (the
first trials at a rung always go on). Decisions need no synchronisation between trials, so
workers never wait. One pruner serves all workers: in-process for the local executor, a Ray actor
(:class:`RemotePruner`) for the Ray executor. :func:`make_pruner` builds one by name (``asha``, ``hyperband``)
from the ``early_stopping`` options of a config.

Both are deterministic functions of the values reported (and, for Hyperband, of the trial ids and its ``seed``):
replaying the per-epoch history of finished trials into a fresh pruner restores it, which is how a resumed
experiment continues.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nas.core.checks import check_int
from nas.core.errors import ConfigError, NASError, did_you_mean

__all__ = ["ASHA", "Hyperband", "PRUNERS", "make_pruner", "RemotePruner"]


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


class Hyperband:
    """Asynchronous Hyperband: brackets ``s = 0 .. s_max`` of ASHA, bracket ``s`` with its first rung at
    ``grace_epochs * reduction_factor**s`` (``s_max``: the last bracket whose first rung is within ``max_epochs``,
    the full training length). Bracket 0 is the most aggressive (stops from the first rung on), bracket ``s_max``
    never stops before ``grace * eta**s_max`` epochs, so a slow starter still gets a fair run in some bracket.
    Trials go to brackets in the proportions of Li et al.'s Hyperband (bracket ``s`` of ``s_max + 1`` gets
    ``ceil((s_max + 1) / (s_max + 1 - s) * eta**(s_max - s))`` configurations per round), in an order shuffled
    with ``seed`` and repeated: trial ``id`` goes to ``order[id % len(order)]``, so the assignment needs no state
    and a resumed experiment puts every trial back in its bracket. Rungs are kept per bracket (a trial competes
    only with trials of its own bracket).

    Options: ``grace_epochs`` (1), ``reduction_factor`` (3), ``max_epochs`` (the training epochs; the experiment
    passes ``evaluator.train.epochs`` when unset), ``seed`` (the experiment seed when unset)."""

    def __init__(self, *, grace_epochs: int = 1, reduction_factor: int = 3, max_epochs: int = 9,
                 seed: int = 0) -> None:
        check_int("early_stopping.grace_epochs", grace_epochs, minimum=1)
        check_int("early_stopping.reduction_factor", reduction_factor, minimum=2)
        check_int("early_stopping.max_epochs", max_epochs, minimum=1)
        check_int("early_stopping.seed", seed)
        if grace_epochs > max_epochs:
            raise ConfigError(f"early_stopping.grace_epochs = {grace_epochs} exceeds max_epochs = {max_epochs} "
                              "(the training epochs): no trial would reach a rung; lower grace_epochs")
        self.grace, self.eta, self.max_epochs, self.seed = grace_epochs, reduction_factor, max_epochs, seed
        s_max = 0
        while grace_epochs * reduction_factor ** (s_max + 1) <= max_epochs:
            s_max += 1
        self.s_max = s_max
        self.brackets = [ASHA(grace_epochs=grace_epochs * reduction_factor ** s, reduction_factor=reduction_factor)
                         for s in range(s_max + 1)]
        # bracket s holds the trials whose first rung is grace * eta**s; Hyperband's bracket with k halvings
        # (k = s_max - s) starts ceil((s_max + 1) / (s + 1) * eta**k) configurations
        sizes = [math.ceil((s_max + 1) / (s_max - s + 1) * reduction_factor ** (s_max - s))
                 for s in range(s_max + 1)]
        order = np.repeat(np.arange(s_max + 1), sizes)
        np.random.default_rng(seed).shuffle(order)
        self.order = [int(b) for b in order]

    def bracket(self, trial_id: int) -> int:
        """The bracket of trial ``trial_id`` (0: first rung at ``grace_epochs``)."""
        return self.order[trial_id % len(self.order)]

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Record ``value`` (higher is better) at ``epoch`` in the trial's bracket; False means stop the trial
        (never at ``max_epochs`` or later: a trial trained to the end is complete, not pruned)."""
        if epoch >= self.max_epochs:
            return True
        return self.brackets[self.bracket(trial_id)].report(trial_id, epoch, value)


#: the pruners by the name ``early_stopping.name`` takes
PRUNERS: dict[str, type[ASHA] | type[Hyperband]] = {"asha": ASHA, "hyperband": Hyperband}


def make_pruner(*, name: str = "asha", **options: Any) -> ASHA | Hyperband:
    """The pruner ``name`` with ``options``; unknown names and options raise :class:`ConfigError` naming the field.
    ``max_epochs`` and ``seed`` are accepted and ignored by ASHA (its rungs need neither)."""
    if name not in PRUNERS:
        raise ConfigError(f"early_stopping.name = {name!r}: unknown pruner{did_you_mean(str(name), list(PRUNERS))}; "
                          f"choose one of {', '.join(PRUNERS)}")
    cls = PRUNERS[name]
    if cls is ASHA:
        options = {k: v for k, v in options.items() if k not in ("max_epochs", "seed")}
    allowed = ("grace_epochs", "reduction_factor") + (("max_epochs", "seed") if cls is Hyperband else ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"early_stopping.{unknown[0]}: unknown option of the {name} pruner"
                          f"{did_you_mean(unknown[0], list(allowed))}; options: name, {', '.join(allowed)}")
    return cls(**options)


class RemotePruner:
    """A picklable handle on a pruner living in a Ray actor (one for all workers). Every call waits at most
    ``timeout`` seconds for the actor (the experiment passes ``execution.placement_timeout``), then raises
    :class:`NASError` saying so: the trial that asked fails with that reason rather than wait forever."""

    def __init__(self, *, timeout: float = 600.0, runtime_env: dict[str, Any] | None = None,
                 **options: Any) -> None:
        """``options`` are :func:`make_pruner`'s; ``runtime_env`` that of the actor (None: the job's)."""
        import ray

        self.timeout = timeout
        env = {"runtime_env": runtime_env} if runtime_env else {}
        # an actor handle: ray types `handle.method.remote` only for methods decorated with @ray.method, which
        # would make this module import ray at its top (it is loaded by runs that never start Ray)
        self._actor: Any = ray.remote(_PrunerActor).options(num_cpus=0, **env).remote(**options)

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            return bool(ray.get(self._actor.report.remote(trial_id, epoch, value), timeout=self.timeout))
        except GetTimeoutError:
            raise NASError(f"the early-stopping pruner (a Ray actor) did not answer within {self.timeout:g}s "
                           "(execution.placement_timeout); check the Ray cluster (`ray status`) and `nas resume` "
                           "the experiment") from None


class _PrunerActor:
    """The pruner :func:`make_pruner` builds from ``options``, as a Ray actor class."""

    def __init__(self, **options: Any) -> None:
        self.pruner = make_pruner(**options)

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        return self.pruner.report(trial_id, epoch, value)
