"""nas.graph.architecture: Cell and Architecture as data (JSON, immutability, equality), validation errors, canonical
hash."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import pickle

import numpy as np
import pytest

from nas import references
from nas.core.errors import InvalidArchitectureError, NASError, UnknownNameError
from nas.graph.architecture import FORMAT_VERSION, Architecture, Cell
from search_spaces import get_space

# -- helpers ------------------------------------------------------------------------------------


def conv_cell(**overrides) -> Cell:
    """A valid 3-node conv chain 0 -> 1 -> 2 (plus overrides)."""
    fields = dict(family="conv", inputs=1, nodes=3, edges=((0, 1, "nor_conv_3x3"), (1, 2, "skip_connect")),
                  output=(2,))
    fields.update(overrides)
    return Cell(**fields)


def image_arch(cell: Cell | None = None, **macro) -> Architecture:
    m = {"skeleton": "cells", "stem_channels": 0, "layers": [["c", 4]]}
    m.update(macro)
    return Architecture(space="test", cells={"c": cell or conv_cell()}, macro=m)


def example_archs() -> list[Architecture]:
    """One architecture of every kind the framework makes: each space, references, hand-made macro data."""
    rng = np.random.default_rng(0)
    archs = [get_space(name).sample(rng) for name in ("nb201", "darts", "rnn", "transformer")]
    archs.append(get_space("darts").named("DARTS_V2"))
    archs.append(get_space("rnn").named("DARTS_V1", layers=["cell:rnn", "lstm"]))
    archs += [references.get(name) for name in references.list_references()]
    archs.append(image_arch(head_hidden=[7, 3], head_preact=True, note={"nested": [1, 2.5, None, "x", False]}))
    return archs


EXAMPLES = example_archs()
EXAMPLE_IDS = [f"{a.space}-{i}" for i, a in enumerate(EXAMPLES)]

# -- JSON round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", EXAMPLES, ids=EXAMPLE_IDS)
def test_json_round_trip_architecture_text_architecture(arch: Architecture) -> None:
    text = arch.to_json()
    back = Architecture.from_json(text)
    assert back == arch
    assert back.to_json() == text
    assert back.canonical_hash() == arch.canonical_hash()
    assert back.cells == arch.cells and back.macro == arch.macro and back.space == arch.space


@pytest.mark.parametrize("arch", EXAMPLES, ids=EXAMPLE_IDS)
def test_json_round_trip_text_architecture_text(arch: Architecture) -> None:
    for text in (arch.to_json(), arch.to_json(indent=2)):
        indent = 2 if "\n" in text else None
        assert Architecture.from_json(text).to_json(indent=indent) == text
        assert Architecture.from_json(text.encode()).to_json(indent=indent) == text  # bytes are accepted too


def test_to_dict_is_plain_json_data_with_format_version() -> None:
    arch = image_arch(head_hidden=[7, 3])
    data = arch.to_dict()
    assert data["format"] == FORMAT_VERSION
    assert data["space"] == "test"
    assert data["cells"]["c"] == {"family": "conv", "inputs": 1, "nodes": 3,
                                  "edges": [[0, 1, "nor_conv_3x3"], [1, 2, "skip_connect"]], "output": [2],
                                  "combine": "sum", "fan_in": None, "reduction": False}
    assert data["macro"]["layers"] == [["c", 4]] and isinstance(data["macro"]["layers"][0], list)
    assert json.loads(arch.to_json()) == data
    assert arch.to_json() == json.dumps(data, sort_keys=True)


def test_from_dict_fills_defaults_and_sorts_edges() -> None:
    data = {"space": "test", "cells": {"c": {"family": "conv", "inputs": 1, "nodes": 3, "output": [2],
                                             "edges": [[1, 2, "skip_connect"], [0, 1, "nor_conv_3x3"]]}},
            "macro": {"skeleton": "cells", "stem_channels": 0, "layers": [["c", 4]]}}
    arch = Architecture.from_dict(data)
    assert arch == image_arch()
    cell = arch.cell("c")
    assert cell.edges == ((0, 1, "nor_conv_3x3"), (1, 2, "skip_connect"))
    assert (cell.combine, cell.fan_in, cell.reduction) == ("sum", None, False)


def test_edge_order_does_not_matter() -> None:
    a = conv_cell(edges=((1, 2, "skip_connect"), (0, 1, "nor_conv_3x3")))
    b = conv_cell(edges=[[0, 1, "nor_conv_3x3"], [1, 2, "skip_connect"]])
    assert a == b and hash(a) == hash(b)
    assert image_arch(a).to_json() == image_arch(b).to_json()


def test_macro_values_keep_their_json_types() -> None:
    macro = {"skeleton": "cells", "stem_channels": 0, "layers": [["c", 4]],
             "extra": {"b": [1, 2.5, None, True, "s"], "a": {}}}
    arch = Architecture(space="test", cells={"c": conv_cell()}, macro=macro)
    assert arch.macro == macro
    back = Architecture.from_json(arch.to_json())
    assert back.macro["extra"]["b"] == [1, 2.5, None, True, "s"]
    assert isinstance(back.macro["extra"]["b"][1], float) and back.macro["extra"]["b"][3] is True


# -- immutability -------------------------------------------------------------------------------


def test_cell_is_frozen() -> None:
    cell = conv_cell()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.nodes = 4  # type: ignore[misc]  # frozen: the test expects a refusal
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.edges = ()  # type: ignore[misc]  # frozen: the test expects a refusal
    assert isinstance(cell.edges, tuple) and isinstance(cell.output, tuple)


def test_architecture_refuses_attribute_assignment_and_deletion() -> None:
    arch = image_arch()
    with pytest.raises(AttributeError, match="immutable"):
        arch.space = "other"  # type: ignore[misc]  # read-only: the test expects a refusal
    with pytest.raises(AttributeError, match="immutable"):
        arch._macro = ()  # type: ignore[misc]  # immutable: the test expects a refusal
    with pytest.raises(AttributeError, match="immutable"):
        del arch._space
    with pytest.raises(AttributeError):
        arch.new_attribute = 1  # type: ignore[attr-defined]  # the test expects a refusal
    assert arch == image_arch()


def test_architecture_views_are_copies_or_read_only() -> None:
    arch = image_arch()
    before = arch.to_json()
    macro = arch.macro
    macro["layers"].append(["c", 8])
    macro["new"] = 1
    assert arch.to_json() == before
    with pytest.raises(TypeError):
        arch.cells["x"] = conv_cell()  # type: ignore[index]  # read-only: the test expects a refusal
    assert list(arch.cells) == ["c"]


def test_architecture_does_not_alias_constructor_arguments() -> None:
    macro = {"skeleton": "cells", "stem_channels": 0, "layers": [["c", 4]]}
    cells = {"c": conv_cell()}
    arch = Architecture(space="test", cells=cells, macro=macro)
    before = arch.to_json()
    macro["layers"][0][1] = 99
    macro["x"] = 1
    cells["d"] = conv_cell()
    assert arch.to_json() == before
    assert list(arch.cells) == ["c"]


def test_replace_returns_a_new_architecture() -> None:
    arch = image_arch()
    other = arch.replace(space="elsewhere", macro={**arch.macro, "stem_channels": 8})
    assert other.space == "elsewhere" and other.macro["stem_channels"] == 8
    assert arch.space == "test" and arch.macro["stem_channels"] == 0
    assert arch.replace() == arch


@pytest.mark.parametrize("arch", EXAMPLES[:5], ids=EXAMPLE_IDS[:5])
def test_pickle_and_copy_round_trip(arch: Architecture) -> None:
    for clone in (pickle.loads(pickle.dumps(arch)), copy.copy(arch), copy.deepcopy(arch)):
        assert clone == arch
        assert clone.to_json() == arch.to_json()
        assert clone.canonical_hash() == arch.canonical_hash()


# -- equality and hash --------------------------------------------------------------------------


def test_equal_architectures_compare_and_hash_equal() -> None:
    a = image_arch()
    b = Architecture(space="test", cells={"c": conv_cell()},
                     macro={"layers": [["c", 4]], "stem_channels": 0, "skeleton": "cells"})  # other key order
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
    assert {a: 1}[b] == 1


def test_unequal_architectures() -> None:
    a = image_arch()
    assert a != image_arch(conv_cell(edges=((0, 1, "nor_conv_1x1"), (1, 2, "skip_connect"))))
    assert a != image_arch(stem_channels=8)
    assert a != a.replace(space="other")
    assert a != "not an architecture"
    assert a.__eq__(object()) is NotImplemented
    assert len({a, a.replace(space="other"), image_arch(stem_channels=8)}) == 3


def test_cell_lookup() -> None:
    arch = get_space("darts").named("DARTS_V2")
    assert arch.cell("reduce").reduction and not arch.cell("normal").reduction
    with pytest.raises(UnknownNameError, match=r"unknown cell 'norml'.*did you mean 'normal'"):
        arch.cell("norml")


def test_cell_views() -> None:
    cell = conv_cell(nodes=4, edges=((0, 1, "nor_conv_3x3"), (0, 2, "none"), (1, 2, "skip_connect"),
                                     (2, 3, "avg_pool_3x3")), output=(3,))
    assert cell.in_edges(2) == [(0, "none"), (1, "skip_connect")]
    assert cell.ops() == ["nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3"]
    assert sorted(cell.graph.edges(data="op")) == sorted(cell.edges)
    swapped = cell.with_edges([(s, d, "nor_conv_1x1") for s, d, _ in cell.edges])
    assert swapped.ops() == ["nor_conv_1x1"] * 4 and swapped.output == cell.output and cell.ops()[0] == "nor_conv_3x3"


# -- construction errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "match"), [
    ({"edges": ((0, 0, "skip_connect"), (0, 1, "x"), (1, 2, "x"))}, r"edge 0->0 is a self-loop"),
    ({"edges": ((0, 1, "a"), (0, 1, "b"), (1, 2, "c"))}, r"more than one edge 0->1"),
    ({"edges": ((0, 5, "skip_connect"),)}, r"dst 5, not a node id in 0\.\.2"),
    ({"edges": ((-1, 1, "skip_connect"),)}, r"src -1, not a node id"),
    ({"edges": ((0, 1),)}, r"an edge must be \[src, dst, op\]"),
    ({"edges": ((0, 1, ""),)}, r"edge 0->1 has op ''"),
    ({"edges": ((0, 1, 3),)}, r"edge 0->1 has op 3"),
    ({"combine": "summ"}, r"combine 'summ' is not one of sum, mean, concat \(did you mean 'sum'\?\)"),
    ({"output": ()}, r"output lists no node"),
    ({"output": (0,)}, r"output node 0 is not an intermediate node"),
    ({"output": (2, 2)}, r"output \[2, 2\] repeats a node"),
    ({"inputs": 0}, r"inputs must be an integer >= 1, got 0"),
    ({"nodes": 1}, r"nodes must be an integer >= 2, got 1"),
    ({"nodes": 3.0}, r"nodes must be an integer"),
    ({"fan_in": 0}, r"fan_in must be an integer >= 1"),
    ({"reduction": 1}, r"reduction must be true or false, got 1"),
    ({"family": 3}, r"family must be a string"),
])
def test_cell_construction_errors(overrides: dict, match: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=match):
        conv_cell(**overrides)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"space": "", "cells": {"c": conv_cell()}}, r"space must be a non-empty string"),
    ({"space": "x", "cells": {}}, r"needs at least one cell"),
    ({"space": "x", "cells": {"": conv_cell()}}, r"cell names must be non-empty strings"),
    ({"space": "x", "cells": {"c": {"family": "conv"}}}, r"cell 'c' is a dict, not a Cell"),
    ({"space": "x", "cells": {"c": conv_cell()}, "macro": {"f": {1, 2}}}, r"macro: value \{1, 2\}.*not JSON data"),
])
def test_architecture_construction_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidArchitectureError, match=match):
        Architecture(**kwargs)


# -- bad JSON ---------------------------------------------------------------------------------------


def test_malformed_json_reports_line_and_column() -> None:
    text = '{"space": "x",\n "cells": {]}'
    with pytest.raises(InvalidArchitectureError, match=r"malformed architecture JSON at line 2 column 12"):
        Architecture.from_json(text)
    with pytest.raises(InvalidArchitectureError, match=r"malformed architecture JSON at line 1 column 1"):
        Architecture.from_json("")


def test_json_that_is_not_text_or_not_an_object() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"must be text"):
        Architecture.from_json(None)  # type: ignore[arg-type]  # bad input on purpose
    with pytest.raises(InvalidArchitectureError, match=r"must be an object with keys .*, got list"):
        Architecture.from_json("[1, 2]")


def test_unknown_top_level_key_has_a_hint() -> None:
    data = image_arch().to_dict()
    data["spcae"] = data.pop("space")
    with pytest.raises(InvalidArchitectureError, match=r"architecture: unknown key 'spcae' \(did you mean 'space'\?\)"):
        Architecture.from_dict(data)
    data = image_arch().to_dict()
    data["zzz"] = 1
    with pytest.raises(InvalidArchitectureError, match=r"unknown key 'zzz'; allowed keys: format, space, cells, macro"):
        Architecture.from_json(json.dumps(data))


def test_unknown_cell_key_has_a_hint() -> None:
    data = image_arch().to_dict()
    data["cells"]["c"]["edgse"] = data["cells"]["c"].pop("edges")
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': unknown key 'edgse' \(did you mean 'edges'\?\)"):
        Architecture.from_json(json.dumps(data))


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: d.pop("space"), r"missing key 'space'"),
    (lambda d: d.pop("cells"), r"missing key 'cells'"),
    (lambda d: d.update(cells={}), r"'cells' must be a non-empty object"),
    (lambda d: d.update(cells=[1]), r"'cells' must be a non-empty object"),
    (lambda d: d.update(macro=[1]), r"'macro' must be an object"),
    (lambda d: d.update(format=2), r"format 2 is not supported; this version reads format 1"),
    (lambda d: d["cells"]["c"].pop("nodes"), r"cell 'c': missing key\(s\) nodes"),
    (lambda d: d["cells"].update(c=[1, 2]), r"cell 'c': expected an object"),
    (lambda d: d["cells"]["c"].update(edges="0-1"), r"cell 'c': edges and output must be lists"),
    (lambda d: d["cells"]["c"].update(edges=[[0, 1, "a"], [0, 1, "b"]]), r"cell 'c': more than one edge 0->1"),
    (lambda d: d["cells"]["c"].update(edges=[[0, 9, "a"]]), r"cell 'c': edge \(0, 9, 'a'\) has dst 9"),
    (lambda d: d["cells"]["c"].update(nodes="3"), r"cell 'c': nodes must be an integer"),
])
def test_structurally_bad_json_names_the_problem(mutate, match: str) -> None:
    data = image_arch().to_dict()
    mutate(data)
    with pytest.raises(InvalidArchitectureError, match=match):
        Architecture.from_json(json.dumps(data))


# -- validate() ----------------------------------------------------------------------------------


def test_validate_accepts_and_returns_self() -> None:
    arch = image_arch()
    assert arch.validate() is arch
    assert all(a.validate() is a for a in EXAMPLES)


def test_validate_names_a_cycle() -> None:
    cell = conv_cell(nodes=4, edges=((0, 1, "skip_connect"), (1, 2, "skip_connect"), (2, 3, "skip_connect"),
                                     (3, 1, "skip_connect")), output=(3,))
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': has a cycle 1 -> 2 -> 3 -> 1; a cell must be a DAG"):
        image_arch(cell).validate()
    two = conv_cell(edges=((0, 1, "skip_connect"), (1, 2, "skip_connect"), (2, 1, "skip_connect")))
    with pytest.raises(InvalidArchitectureError, match=r"cycle (1 -> 2 -> 1|2 -> 1 -> 2)"):
        image_arch(two).validate()


def test_validate_unknown_op_names_the_edge_and_suggests() -> None:
    cell = conv_cell(edges=((0, 1, "nor_conv_3x3"), (1, 2, "sep_conv_3x4")))
    with pytest.raises(InvalidArchitectureError) as info:
        image_arch(cell).validate()
    msg = str(info.value)
    assert "cell 'c'" in msg and "edge 1->2" in msg and "unknown conv op 'sep_conv_3x4'" in msg
    assert "did you mean 'sep_conv_3x3'" in msg and "known: none, skip_connect" in msg


def test_validate_unknown_op_of_another_family() -> None:
    cell = conv_cell(edges=((0, 1, "lstm"), (1, 2, "skip_connect")))
    with pytest.raises(InvalidArchitectureError, match=r"edge 0->1 has unknown conv op 'lstm'"):
        image_arch(cell).validate()


def test_validate_unknown_family_suggests() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': unknown op family 'cnv'.*did you mean 'conv'"):
        image_arch(conv_cell(family="cnv")).validate()


def test_validate_node_without_inputs() -> None:
    cell = conv_cell(edges=((0, 2, "skip_connect"),))
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': node 1 has no inputs"):
        image_arch(cell).validate()


def test_validate_dead_end_node() -> None:
    cell = conv_cell(edges=((0, 1, "nor_conv_3x3"), (0, 2, "skip_connect")))
    with pytest.raises(InvalidArchitectureError,
                       match=r"cell 'c': node 1 is a dead end: no path to the output nodes \[2\]"):
        image_arch(cell).validate()


def test_validate_input_node_with_incoming_edge() -> None:
    cell = conv_cell(inputs=2, nodes=4, output=(3,), edges=((0, 1, "skip_connect"), (0, 2, "skip_connect"),
                                                            (1, 3, "skip_connect"), (2, 3, "skip_connect")))
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': input node 1 has incoming edge 0->1"):
        image_arch(cell).validate()


def test_validate_fan_in() -> None:
    cell = conv_cell(fan_in=2)
    with pytest.raises(InvalidArchitectureError, match=r"cell 'c': node 1 has 1 inputs, the cell requires exactly 2"):
        image_arch(cell).validate()
    ok = conv_cell(fan_in=2, inputs=2, nodes=3, edges=((0, 2, "skip_connect"), (1, 2, "nor_conv_1x1")), output=(2,))
    assert ok.validate("ok") is None


def _sequence_arch(op: str, extra: dict[str, Cell] | None = None) -> Architecture:
    body = Cell(family="sequence", inputs=1, nodes=2, edges=((0, 1, op),), output=(1,))
    cells = {"body": body, **(extra or {})}
    return Architecture(space="test", cells=cells, macro={"skeleton": "sequence", "d_model": 8, "stack": ["body"]})


def test_validate_cell_reference() -> None:
    rnn = Cell(family="rnn", inputs=1, nodes=2, edges=((0, 1, "tanh"),), output=(1,), combine="mean", fan_in=1)
    assert _sequence_arch("cell:r", {"r": rnn}).validate()
    with pytest.raises(InvalidArchitectureError,
                       match=r"cell 'body': edge 0->1 runs 'cell:r', but .* no other rnn cell 'r'"):
        _sequence_arch("cell:r").validate()
    with pytest.raises(InvalidArchitectureError, match=r"no other rnn cell 'c'"):
        _sequence_arch("cell:c", {"c": conv_cell()}).validate()  # a conv cell is not an rnn cell
    with pytest.raises(InvalidArchitectureError, match=r"no other rnn cell 'body'"):
        _sequence_arch("cell:body").validate()
    conv_ref = conv_cell(edges=((0, 1, "cell:r"), (1, 2, "skip_connect")))
    with pytest.raises(InvalidArchitectureError, match=r"unknown conv op 'cell:r'"):  # only sequence cells refer
        image_arch().replace(cells={"c": conv_ref, "r": rnn}).validate()


def test_errors_are_nas_errors_and_value_errors() -> None:
    with pytest.raises(NASError):
        Architecture.from_json("{")
    with pytest.raises(ValueError):
        Architecture.from_json("{")


# -- canonical hash ------------------------------------------------------------------------------


def _relabel(cell: Cell, perm: dict[int, int]) -> Cell:
    mapping = {i: i for i in range(cell.inputs)} | perm
    return Cell(family=cell.family, inputs=cell.inputs, nodes=cell.nodes,
                edges=tuple((mapping[s], mapping[d], op) for s, d, op in cell.edges),
                output=tuple(mapping[o] for o in cell.output), combine=cell.combine, fan_in=cell.fan_in,
                reduction=cell.reduction)


def test_canonical_hash_is_a_stable_sha256() -> None:
    arch = get_space("darts").named("DARTS_V2")
    h = arch.canonical_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == arch.canonical_hash() == get_space("darts").named("DARTS_V2").canonical_hash()
    payload = json.dumps({"cells": {n: c.canonical_form(dict(arch.cells)) for n, c in arch.cells.items()},
                          "macro": arch.macro}, sort_keys=True)
    assert h == hashlib.sha256(payload.encode()).hexdigest()


@pytest.mark.parametrize("source", ["DARTS_V2", "DARTS_V1", "sample"])
def test_relabelling_darts_intermediate_nodes_keeps_the_hash(source: str) -> None:
    space = get_space("darts")
    arch = space.sample(np.random.default_rng(3)) if source == "sample" else space.named(source)
    for order in itertools.permutations(range(2, 6)):
        perm = dict(zip(range(2, 6), order))
        cells = {name: _relabel(cell, perm) for name, cell in arch.cells.items()}
        relabelled = arch.replace(cells=cells).validate()
        if order != (2, 3, 4, 5):
            assert relabelled != arch
            assert relabelled.cell("normal").output == tuple(order)
        assert relabelled.canonical_hash() == arch.canonical_hash()


def test_relabelling_changes_hash_when_not_consistent() -> None:
    arch = get_space("darts").named("DARTS_V2")
    normal = arch.cell("normal")
    # swap the ops of node 5's two edges: (0, skip_connect), (2, dil_conv_3x3) -> (0, dil_conv_3x3), (2, skip_connect)
    edges = [(s, d, {"skip_connect": "dil_conv_3x3", "dil_conv_3x3": "skip_connect"}[op]) if d == 5 else (s, d, op)
             for s, d, op in normal.edges]
    other = arch.replace(cells={"normal": normal.with_edges(edges), "reduce": arch.cell("reduce")})
    assert other.canonical_hash() != arch.canonical_hash()


def test_op_that_only_feeds_none_edges_does_not_change_the_hash() -> None:
    space = get_space("nb201", ops=["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])
    base = "|{}~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    hashes = {space.from_string(base.format(op)).canonical_hash() for op in space.ops}
    assert len(hashes) == 1
    # while node 1 feeds a live edge its op matters
    live = "|{}~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert len({space.from_string(live.format(op)).canonical_hash() for op in space.ops}) == len(space.ops)


def test_ops_after_a_node_whose_inputs_are_all_none_do_not_change_the_hash() -> None:
    space = get_space("nb201")
    base = "|none~0|+|nor_conv_3x3~0|{}~1|+|skip_connect~0|{}~1|nor_conv_1x1~2|"
    hashes = {space.from_string(base.format(a, b)).canonical_hash() for a in space.ops for b in space.ops}
    assert len(hashes) == 1


def test_identity_ops_and_zero_ops_are_seen_through() -> None:
    through_skip = conv_cell(edges=((0, 1, "skip_connect"), (1, 2, "nor_conv_3x3")))
    direct = conv_cell(nodes=2, edges=((0, 1, "nor_conv_3x3"),), output=(1,))
    assert image_arch(through_skip).canonical_hash() == image_arch(direct).canonical_hash()
    with_zero = conv_cell(edges=((0, 1, "nor_conv_1x1"), (0, 2, "nor_conv_3x3"), (1, 2, "none")))
    assert image_arch(with_zero).canonical_hash() == image_arch(direct).canonical_hash()
    # on a strided (reduction) edge skip_connect is a FactorizedReduce, not the identity
    strided = image_arch(conv_cell(reduction=True, edges=((0, 1, "skip_connect"), (1, 2, "nor_conv_3x3"))))
    strided_direct = image_arch(conv_cell(reduction=True, nodes=2, edges=((0, 1, "nor_conv_3x3"),), output=(1,)))
    assert strided.canonical_hash() != strided_direct.canonical_hash()


def test_sums_are_commutative_and_associative() -> None:
    a = conv_cell(nodes=4, output=(3,), edges=((0, 1, "nor_conv_1x1"), (0, 2, "nor_conv_3x3"), (1, 3, "skip_connect"),
                                               (2, 3, "skip_connect")))
    b = conv_cell(nodes=4, output=(2, 1), edges=((0, 1, "nor_conv_3x3"), (0, 2, "nor_conv_1x1")))
    c = conv_cell(nodes=4, output=(1, 2), edges=((0, 1, "nor_conv_3x3"), (0, 2, "nor_conv_1x1")))
    hashes = {image_arch(x).canonical_hash() for x in (a, b, c)}
    assert len(hashes) == 1
    assert len({image_arch(x) for x in (a, b, c)}) == 3


def test_different_ops_give_different_hashes() -> None:
    space = get_space("nb201")
    all_conv = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    arch = space.from_string(all_conv)
    neighbours = space.neighbours(arch)
    assert all(n.canonical_hash() != arch.canonical_hash() for n in neighbours)
    changed_not_to_none = [n for n in neighbours if "none" not in n.cell("cell").ops()]
    assert len(changed_not_to_none) == 18
    assert len({n.canonical_hash() for n in changed_not_to_none}) == 18
    # ... but the hash ignores weights: cutting 0->1 or 2->3 both leave conv(x) + conv(conv(x))
    cut_first = space.from_string(all_conv.replace("|nor_conv_3x3~0|+", "|none~0|+", 1))
    cut_last = space.from_string(all_conv.replace("nor_conv_3x3~2|", "none~2|"))
    assert space.to_string(cut_first).startswith("|none~0|+") and space.to_string(cut_last).endswith("|none~2|")
    assert cut_first.canonical_hash() == cut_last.canonical_hash()
    v1, v2 = get_space("darts").named("DARTS_V1"), get_space("darts").named("DARTS_V2")
    assert v1.canonical_hash() != v2.canonical_hash()


def test_combine_mode_enters_the_hash() -> None:
    base = dict(nodes=4, output=(1, 2), edges=((0, 1, "nor_conv_3x3"), (0, 2, "nor_conv_1x1")))
    hashes = {image_arch(conv_cell(combine=c, **base)).canonical_hash() for c in ("sum", "mean", "concat")}
    assert len(hashes) == 3


def test_different_macro_settings_give_different_hashes() -> None:
    decisions = [3, 1, 2, 0, 4, 3]
    small, wide = get_space("nb201", C=4, N=1), get_space("nb201", C=8, N=1)
    assert small.decode(decisions).canonical_hash() != wide.decode(decisions).canonical_hash()
    assert image_arch().canonical_hash() != image_arch(stem_channels=8).canonical_hash()
    v2 = get_space("darts", C=16).named("DARTS_V2")
    assert v2.canonical_hash() != get_space("darts", C=36, layers=20).named("DARTS_V2").canonical_hash()


def test_space_tag_is_not_part_of_the_hash() -> None:
    arch = image_arch()
    assert arch.replace(space="elsewhere").canonical_hash() == arch.canonical_hash()


def test_rnn_cell_ops_count_only_when_a_layer_runs_the_cell() -> None:
    space = get_space("rnn", steps=3, num_layers=2, d_model=8)
    names = space.decision_names()
    act = names.index("rnn_node2_activation")
    layers = [names.index("layer0"), names.index("layer1")]
    unused, used = [], []
    for value in range(space.decision_sizes()[act]):
        decisions = [0] * len(names)
        decisions[act] = value
        decisions[layers[0]] = space.layer_ops.index("lstm")
        decisions[layers[1]] = space.layer_ops.index("gru")
        unused.append(space.decode(decisions))
        decisions[layers[1]] = space.layer_ops.index("cell:rnn")
        used.append(space.decode(decisions))
    assert len(set(unused)) == len(unused) == 4  # different architectures ...
    assert len({a.canonical_hash() for a in unused}) == 1  # ... computing the same function
    assert len({a.canonical_hash() for a in used}) == len(used)
