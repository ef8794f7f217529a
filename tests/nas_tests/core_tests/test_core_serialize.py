"""nas.core.serialize.jsonable: strict JSON data from numpy values and non-finite floats."""

from __future__ import annotations

import json
import math

import numpy as np

from nas.core.serialize import jsonable


def test_numpy_scalars_become_python_numbers() -> None:
    out = jsonable({"i": np.int64(7), "u": np.uint8(3), "f": np.float32(0.5), "d": np.float64(2.25),
                    "b": np.bool_(True)})
    assert out == {"i": 7, "u": 3, "f": 0.5, "d": 2.25, "b": True}
    assert [type(out[k]) for k in ("i", "u", "f", "d", "b")] == [int, int, float, float, bool]


def test_arrays_and_tuples_become_lists_recursively() -> None:
    out = jsonable({"a": np.arange(4).reshape(2, 2), "t": (1, (2, np.int32(3))), "l": [np.array([1.5])]})
    assert out == {"a": [[0, 1], [2, 3]], "t": [1, [2, 3]], "l": [[1.5]]}
    assert type(out["t"][1][1]) is int


def test_non_finite_floats_become_none_python_and_numpy_alike() -> None:
    values = [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf"), np.array([1.0, np.nan])]
    assert jsonable(values) == [None, None, None, None, None, [1.0, None]]
    text = json.dumps(jsonable({"loss": math.nan, "history": [{"acc": np.float64(91.5), "x": -math.inf}]}),
                      allow_nan=False)
    assert json.loads(text) == {"loss": None, "history": [{"acc": 91.5, "x": None}]}


def test_other_values_pass_through_unchanged() -> None:
    for value in ("text", None, True, False, 3, 1.25, -0.0):
        assert jsonable(value) == value and type(jsonable(value)) is type(value)


def test_a_generator_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(123)
    rng.random(5)
    state = json.loads(json.dumps(jsonable(rng.bit_generator.state)))
    expected = rng.random(3)
    other = np.random.default_rng(0)
    other.bit_generator.state = state
    assert np.array_equal(other.random(3), expected)
