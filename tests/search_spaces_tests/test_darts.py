"""The DARTS CNN space: size, decision layout, published genotypes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from nas.core.errors import InvalidArchitectureError, UnknownNameError
from search_spaces import get_space
from search_spaces.darts import DARTS_OPS, GENOTYPES


def per_node(pairs: list[tuple[str, int]]) -> list[Counter]:
    return [Counter(pairs[i:i + 2]) for i in range(0, len(pairs), 2)]


def test_size_of_the_default_space() -> None:
    space = get_space("darts")
    assert space.size() == (180 * 7**8) ** 2
    assert space.decision_sizes() == [1, 7, 7, 3, 7, 7, 6, 7, 7, 10, 7, 7] * 2
    assert space.decision_names()[:3] == ["normal_node2_inputs", "normal_node2_op_a", "normal_node2_op_b"]
    assert space.decision_names()[-1] == "reduce_node5_op_b"


@pytest.mark.parametrize(("options", "size"), [
    ({"steps": 2}, (1 * 3 * 7**4) ** 2),
    ({"steps": 5}, (1 * 3 * 6 * 10 * 15 * 7**10) ** 2),
    ({"ops": ["max_pool_3x3", "skip_connect", "sep_conv_3x3"]}, (180 * 3**8) ** 2),
    ({"ops": list(DARTS_OPS)}, (180 * 8**8) ** 2),
])
def test_size_formula(options: dict, size: int) -> None:
    assert get_space("darts", **options).size() == size


def test_none_is_not_a_discrete_choice_by_default() -> None:
    assert DARTS_OPS[0] == "none"
    assert get_space("darts").options()["ops"] == list(DARTS_OPS[1:])


def test_members_are_darts_cells() -> None:
    arch = get_space("darts").sample(np.random.default_rng(0))
    assert sorted(arch.cells) == ["normal", "reduce"]
    for name, cell in arch.cells.items():
        assert cell.family == "conv" and cell.inputs == 2 and cell.nodes == 6
        assert cell.output == (2, 3, 4, 5) and cell.combine == "concat" and cell.fan_in == 2
        assert cell.reduction == (name == "reduce")
        for node in range(2, 6):
            (a, _), (b, _) = cell.in_edges(node)
            assert 0 <= a < b < node
    assert arch.macro == {"skeleton": "darts", "C": 16, "layers": 8, "stem_multiplier": 3}


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_published_genotypes_load_and_round_trip(name: str) -> None:
    space = get_space("darts")
    arch = space.named(name)
    assert arch.validate() is arch and space.contains(arch)
    genotype = space.to_genotype(arch)
    for cell in ("normal", "reduce"):
        assert per_node(genotype[cell]) == per_node(GENOTYPES[name][cell])
    assert space.from_genotype(genotype) == arch
    # the order of the two pairs within a node does not matter
    swapped = {cell: [p for i in range(0, 8, 2) for p in reversed(pairs[i:i + 2])]
               for cell, pairs in GENOTYPES[name].items()}
    assert space.from_genotype(swapped) == arch


def test_darts_v2_normal_cell_edges() -> None:
    normal = get_space("darts").named("DARTS_V2").cell("normal")
    assert normal.edges == (
        (0, 2, "sep_conv_3x3"), (1, 2, "sep_conv_3x3"),
        (0, 3, "sep_conv_3x3"), (1, 3, "sep_conv_3x3"),
        (0, 4, "skip_connect"), (1, 4, "sep_conv_3x3"),
        (0, 5, "skip_connect"), (2, 5, "dil_conv_3x3"),
    )


def test_genotypes_differ() -> None:
    space = get_space("darts")
    assert space.named("DARTS_V1") != space.named("DARTS_V2")
    assert space.named("DARTS_V1").canonical_hash() != space.named("DARTS_V2").canonical_hash()


def _genotype(**changes: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    return {**{k: list(v) for k, v in GENOTYPES["DARTS_V2"].items()}, **changes}


def test_genotype_with_repeated_inputs() -> None:
    normal = list(GENOTYPES["DARTS_V2"]["normal"])
    normal[2:4] = [("sep_conv_3x3", 1), ("skip_connect", 1)]
    with pytest.raises(InvalidArchitectureError, match=r"genotype 'normal' node 3 takes inputs 1 and 1; "
                                                       r"expected two distinct nodes among 0\.\.2"):
        get_space("darts").from_genotype(_genotype(normal=normal))


def test_genotype_with_an_input_from_a_later_node() -> None:
    reduce = list(GENOTYPES["DARTS_V2"]["reduce"])
    reduce[0:2] = [("max_pool_3x3", 0), ("max_pool_3x3", 2)]
    with pytest.raises(InvalidArchitectureError, match=r"genotype 'reduce' node 2 takes inputs 0 and 2"):
        get_space("darts").from_genotype(_genotype(reduce=reduce))


@pytest.mark.parametrize("op", ["conv_3x3", "sep_conv_3x4", "none"])
def test_genotype_with_an_unknown_op(op: str) -> None:
    normal = list(GENOTYPES["DARTS_V2"]["normal"])
    normal[7] = (op, 2)
    with pytest.raises(InvalidArchitectureError,
                       match=rf"genotype 'normal' node 5: op '{op}' is not in this space's ops"):
        get_space("darts").from_genotype(_genotype(normal=normal))


def test_none_ops_load_when_the_space_has_them() -> None:
    space = get_space("darts", C=4, layers=3, ops=list(DARTS_OPS))
    normal = list(GENOTYPES["DARTS_V2"]["normal"])
    normal[7] = ("none", 2)
    arch = space.from_genotype(_genotype(normal=normal))
    assert space.contains(arch)
    out = space.build_model(arch, (3, 8, 8), 10)(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 10)


def test_genotype_with_the_wrong_number_of_pairs() -> None:
    with pytest.raises(InvalidArchitectureError, match=r"genotype 'normal' has 7 \(op, input\) pairs; expected 8"):
        get_space("darts").from_genotype(_genotype(normal=GENOTYPES["DARTS_V2"]["normal"][:7]))
    with pytest.raises(InvalidArchitectureError, match=r"genotype 'reduce' has 0 \(op, input\) pairs"):
        get_space("darts").from_genotype({"normal": GENOTYPES["DARTS_V2"]["normal"]})
    with pytest.raises(InvalidArchitectureError, match=r"has 8 \(op, input\) pairs; expected 6"):
        get_space("darts", steps=3).named("DARTS_V2")


def test_unknown_genotype_name() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown DARTS genotype 'DARTS_V3'.*did you mean"):
        get_space("darts").named("DARTS_V3")


def test_to_genotype_rejects_non_members() -> None:
    arch = get_space("darts").named("DARTS_V2")
    with pytest.raises(InvalidArchitectureError, match=r"not a member of space 'darts'"):
        get_space("darts", C=36).to_genotype(arch)
