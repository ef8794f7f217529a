"""Plain JSON data from the values the framework holds (numpy scalars and arrays, tuples, non-finite floats)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` as data :func:`json.dumps` writes as strict JSON: mappings and sequences recursively (tuples
    become lists), numpy arrays become lists, numpy scalars become ``int``/``float``/``bool``, and NaN and
    infinities (which JSON has not) become ``None``. Anything else is returned as it is."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
