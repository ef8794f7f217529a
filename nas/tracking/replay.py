"""Finished trials of a store as trackers see them, in the order they finished, for mirroring an experiment
after the fact (``nas export-optuna``) or catching a tracker up when a search starts (trials finished while it
was off, or after the last write before a crash: the trackers skip those they hold)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from nas.storage.store import RUNNING, StoredBaseline, StoredTrial
from nas.tracking.base import TrackedTrial, decision_params
from nas.trials.objectives import Constraint, feasible
from nas.trials.protocols import Space
from nas.trials.trial import Status

__all__ = ["tracked_trials", "tracked", "tracked_baselines"]


def tracked(stored: StoredTrial, *, n: int, best: float | None, space: Space) -> TrackedTrial:
    """One stored trial as a :class:`TrackedTrial`, the ``n``-th to finish, ``best`` the best score after it."""
    return TrackedTrial(id=stored.id, n=n, arch=stored.arch, hash=stored.hash, seed=stored.seed,
                        status=Status(stored.status), score=stored.score, metrics=stored.metrics,
                        history=stored.history, error=stored.error, params=decision_params(space, stored.arch),
                        best=best)


def tracked_trials(trials: Iterable[StoredTrial], space: Space,
                   constraints: Sequence[Constraint] = ()) -> Iterator[TrackedTrial]:
    """The finished ``trials`` (RUNNING ones left out) in the order they finished (ties: by id), each with the
    best feasible score so far."""
    done = sorted((t for t in trials if t.status != RUNNING), key=lambda t: (t.finished or 0.0, t.id))
    best: float | None = None
    for n, stored in enumerate(done, start=1):
        result = stored.result()
        if result.ok and result.score is not None and (best is None or result.score > best) \
                and feasible(result, constraints):
            best = result.score
        yield tracked(stored, n=n, best=best, space=space)


def tracked_baselines(baselines: Iterable[StoredBaseline], space: Space) -> Iterator[tuple[str, TrackedTrial]]:
    """The finished ``baselines`` by name, as trackers see them (``n`` 0 and no best-so-far: they are not
    trials of the search)."""
    for stored in baselines:
        if stored.status != RUNNING:
            yield stored.name, tracked(stored, n=0, best=None, space=space)
