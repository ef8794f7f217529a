"""Supernets described as data (search_spaces.slots): what each space's spec holds, and the checks a spec makes."""

from __future__ import annotations

import numpy as np
import pytest

from nas.core.errors import ConfigError, InvalidArchitectureError
from search_spaces import get_space
from search_spaces.slots import Slot, SupernetSpec, edge_weights


def test_spaces_describe_their_supernet_slots_as_data():
    nb = get_space("nb201", C=4, N=1).supernet_spec()
    assert list(nb.slots) == ["cell"] and nb.slots["cell"].rows == 6 and nb.slots["cell"].macro is None
    assert nb.slots["cell"].edges == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert nb.template.macro["skeleton"] == "cells"
    darts = get_space("darts", C=4, layers=3, steps=2).supernet_spec()
    assert list(darts.slots) == ["normal", "reduce"] and darts.slots["normal"].ops[0] == "none"
    assert darts.slots["normal"].edges == ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    tr = get_space("transformer", d_model=8, nodes=3).supernet_spec()
    assert tr.slots["pos_encoding"] == Slot(("none", "pe_sinusoidal", "pe_learned"), macro="pos_encoding")
    assert list(tr.cell_slots) == ["cell"]
    with pytest.raises(ConfigError, match="space 'rnn' has no supernet"):
        get_space("rnn").supernet_spec()


def test_a_spec_rejects_slots_that_do_not_match_its_template():
    template = get_space("nb201", C=4, N=1).supernet_spec().template
    edges = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert SupernetSpec(template, {"cell": Slot(("none", "skip_connect"), edges)}).slots["cell"].rows == 6
    with pytest.raises(InvalidArchitectureError, match="slot 'body' names no cell of the template"):
        SupernetSpec(template, {"body": Slot(("none",), edges)})
    with pytest.raises(InvalidArchitectureError, match=r"slot 'cell' lists edges \[\(0, 1\)\]; its template cell"):
        SupernetSpec(template, {"cell": Slot(("none",), ((0, 1),))})
    with pytest.raises(InvalidArchitectureError, match="chooses macro setting 'pos_encoding'"):
        SupernetSpec(template, {"pos": Slot(("none",), macro="pos_encoding")})
    with pytest.raises(InvalidArchitectureError, match="slot 'cell' has no candidate ops"):
        SupernetSpec(template, {"cell": Slot((), edges)})


def test_edge_weights_normalise_over_the_edges_into_each_node():
    edges = [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    w = edge_weights(np.array([0.0, 0.0, 1.0, 1.0, 1.0]), edges)
    assert np.allclose(w, [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3])
