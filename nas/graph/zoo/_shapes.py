"""Input-shape checks shared by the zoo's builders, and the rule choosing a small-input variant."""

from __future__ import annotations

from collections.abc import Sequence

from nas.core.errors import ShapeError

__all__ = ["SMALL_SIDE", "image_shape", "sequence_shape", "is_small"]

SMALL_SIDE = 64
"""Images whose shorter side is below this get a model's small-input variant (see :mod:`nas.graph.zoo`)."""


def image_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)``, or a :class:`ShapeError` naming the reference and the shape."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(f"reference {name!r} takes images (C, H, W), got input_shape {shape!r}; "
                         "use it on an image task or pick a sequence reference (gru, bigru)")
    return shape[0], shape[1], shape[2]


def sequence_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int]:
    """``input_shape`` as ``(T, F)``, or a :class:`ShapeError` naming the reference and the shape."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ShapeError(f"reference {name!r} takes sequences (T, F), got input_shape {shape!r}; "
                         "use it on a sequence task or pick an image reference")
    return shape[0], shape[1]


def is_small(height: int, width: int) -> bool:
    """Whether an image of this size gets the small-input variant (shorter side below :data:`SMALL_SIDE`)."""
    return min(height, width) < SMALL_SIDE
