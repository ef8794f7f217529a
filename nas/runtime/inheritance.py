"""Weight inheritance, the driver's side: the trained weights of finished trials go into the experiment's weight
store (:class:`~nas.storage.weights.WeightStore`, collected as ``evaluator.inherit`` says), and a child trial is
handed its parent's weights when it is submitted.

Workers never read the experiment's folder (they may run on other nodes): the driver reads the parent's weights from
the store (checking their hash), and on Ray puts them in the object store once per parent (a bounded cache of
references, so many children of one parent share one copy); the trial carries the reference and the worker reads it
from there (:class:`RayWeights`). In-process the trial carries the bytes (:class:`InlineWeights`). A parent whose
weights are not kept or fail their hash check gives the child a note instead, and the child trains from scratch.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nas.evaluation.inheritance import InheritSettings
from nas.storage.weights import WeightStore, WeightsUnavailableError
from nas.trials.protocols import Proposer
from nas.trials.trial import ParentWeights, Result, Trial, WeightSource

if TYPE_CHECKING:  # annotations only: ray is imported where used, so that local runs never load it
    from ray import ObjectRef

__all__ = ["InlineWeights", "RayWeights", "WeightShipper", "InheritingProposer", "settings_of"]

#: parents whose weights stay in Ray's object store at once (the most recently used)
_CACHED_PARENTS = 64


@dataclasses.dataclass(frozen=True)
class InlineWeights:
    """The weights themselves (in-process executor)."""

    data: bytes = dataclasses.field(repr=False)

    def load(self) -> bytes:
        return self.data


@dataclasses.dataclass(frozen=True)
class RayWeights:
    """A reference to the weights in Ray's object store, read on the worker."""

    ref: ObjectRef

    def load(self) -> bytes:
        import ray

        data = ray.get(self.ref)
        return bytes(data)


class WeightShipper:
    """Keeps finished trials' weights in ``store`` and hands children their parent's (``ray``: through Ray's object
    store)."""

    def __init__(self, store: WeightStore, settings: InheritSettings, *, ray: bool,
                 live: Callable[[], set[int] | None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.ray = ray
        #: the trial ids the strategy may still pick as parents (``Strategy.live_parents``): never collected
        self.live = live
        self._refs: OrderedDict[tuple[int, str], WeightSource] = OrderedDict()

    def attach(self, trial: Trial) -> Trial:
        """``trial`` with its parent's weights (or the reason there are none) in ``inherit``; unchanged without a
        parent."""
        if trial.parent is None:
            return trial
        try:
            digest, data = self.store.get(trial.parent)
        except WeightsUnavailableError as err:
            return dataclasses.replace(trial, inherit=ParentWeights(trial.parent, note=str(err)))
        return dataclasses.replace(trial, inherit=ParentWeights(trial.parent, digest,
                                                                self._source(trial.parent, digest, data)))

    def _source(self, parent: int, digest: str, data: bytes) -> WeightSource:
        if not self.ray:
            return InlineWeights(data)
        key = (parent, digest)
        source = self._refs.get(key)
        if source is None:
            import ray

            source = RayWeights(ray.put(data))
            self._refs[key] = source
            while len(self._refs) > _CACHED_PARENTS:
                self._refs.popitem(last=False)
        self._refs.move_to_end(key)
        return source

    def record(self, trial: Trial, result: Result) -> None:
        """Keep the weights a completed ``result`` carries (then drop them from it) and collect the store, sparing
        the weights of the parents the strategy may still pick."""
        data, result.weights = result.weights, None
        if data is None or not result.ok:
            return
        self.store.put(trial.id, data, result.score)
        max_bytes = None if self.settings.max_mb is None else int(self.settings.max_mb * 2**20)
        live = self.live() if self.live is not None else None
        self.store.collect(self.settings.keep, max_bytes, protect=live or ())


class InheritingProposer:
    """A :class:`~nas.trials.protocols.Proposer` over ``strategy`` whose trials carry their parent's weights."""

    def __init__(self, strategy: Proposer, shipper: WeightShipper) -> None:
        self.strategy = strategy
        self.shipper = shipper

    def ask(self, n: int = 1) -> list[Trial]:
        return [self.shipper.attach(t) for t in self.strategy.ask(n)]

    def tell(self, trial: Trial, result: Result) -> None:
        self.strategy.tell(trial, result)


def settings_of(evaluator: Any) -> InheritSettings | None:
    """The inheritance settings of ``evaluator`` (None: it does not inherit weights)."""
    settings = getattr(evaluator, "inherit", None)
    return settings if isinstance(settings, InheritSettings) else None
