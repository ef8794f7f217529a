"""Starting a child from its parent's weights, on the worker: read them from where the runtime put them, check
their sha256, copy the tensors of every unchanged op (:func:`nas.graph.inherit.inherit`), and say what happened.
Any problem (no weights kept, a hash mismatch, an unreadable file) leaves the child as initialised, with a note:
it then trains from scratch, for the full epochs."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import torch
from torch import nn

from nas.graph.inherit import inherit, inheritable_state
from nas.trials.trial import ParentWeights

__all__ = ["Start", "start_from_parent", "serialize_weights"]


@dataclass(frozen=True)
class Start:
    """How a trial started: ``copied`` tensors from trial ``parent`` (None: no parent) and ``fresh`` ones as
    initialised; ``note`` says what happened, in a sentence; ``morphed``: new ops started from the ops they
    replaced (network morphisms)."""

    parent: int | None
    copied: int
    fresh: int
    note: str
    morphed: int = 0

    @property
    def inherited(self) -> bool:
        return self.copied > 0


def serialize_weights(model: nn.Module) -> bytes:
    """The trained ``model``'s tensors by site name, as bytes for the weight store (``torch.save`` format, read back
    with ``weights_only=True``)."""
    buffer = io.BytesIO()
    torch.save(inheritable_state(model), buffer)
    return buffer.getvalue()


def start_from_parent(model: nn.Module, weights: ParentWeights | None, *, zero_new_ops: bool = False,
                      morph: bool = False, sample: torch.Tensor | None = None) -> Start:
    """Copy into the fresh ``model`` what it inherits from ``weights`` (None: the trial has no parent); with
    ``morph`` the ops it does not inherit start from the ops they replaced where a network morphism exists
    (``sample``: inputs that calibrate the batch norms those leave as the identity), with ``zero_new_ops`` the
    others start at zero output (see :func:`nas.graph.inherit.inherit`)."""
    total = len(model.state_dict())
    if weights is None:
        return Start(None, 0, total, "no parent: trained from scratch")
    parent = weights.parent
    if weights.source is None:
        return Start(parent, 0, total, f"trained from scratch: {weights.note or 'no weights of parent'}")
    try:
        data = weights.source.load()
    except Exception as err:  # a lost object, a dead node: the child still trains
        return Start(parent, 0, total, f"trained from scratch: the weights of trial {parent} could not be read "
                                       f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
    digest = hashlib.sha256(data).hexdigest()
    if digest != weights.sha256:
        return Start(parent, 0, total, f"trained from scratch: the weights of trial {parent} fail their hash check "
                                       f"(sha256 {digest[:12]}, expected {weights.sha256[:12]})")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"expected a mapping of tensors, got {type(state).__name__}")
    except Exception as err:
        return Start(parent, 0, total, f"trained from scratch: the weights of trial {parent} are unreadable "
                                       f"({type(err).__name__})")
    done = inherit(model, state, zero_new_ops=zero_new_ops, morph=morph, sample=sample)
    note = (f"inherited {done.copied} of {total} tensors from trial {parent}" if done.copied
            else f"trained from scratch: no op of trial {parent} is unchanged")
    if done.exact or done.approx:
        note += (f" ({done.exact} new ops start from the op they replaced exactly, {done.approx} approximately: "
                 "network morphisms)")
    if done.zeroed:
        note += f" ({done.zeroed} new ops start at zero output)"
    return Start(parent, done.copied, done.fresh, note, morphed=done.exact + done.approx)
