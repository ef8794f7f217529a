"""Weight inheritance in multi-trial search, the evaluator's side: the ``evaluator.inherit`` settings
(:mod:`.settings`) and starting a child trial from its parent's trained weights (:mod:`.start`). The weight store and
the shipping of weights to workers are the runtime's (:mod:`nas.storage.weights`, :mod:`nas.runtime.inheritance`)."""

from nas.evaluation.inheritance.settings import InheritSettings
from nas.evaluation.inheritance.start import Start, serialize_weights, start_from_parent

__all__ = ["InheritSettings", "Start", "serialize_weights", "start_from_parent"]
