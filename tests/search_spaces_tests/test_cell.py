"""The YAML cell space: every skeleton passes the space contract, a hybrid conv + attention cell compiles and trains,
and ops outside the skeleton's family or table are refused with the family they belong to."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from nas.core.errors import ConfigError
from nas.runtime.config import parse_config
from nas.testing.spaces import SpaceConformance, forward_backward
from search_spaces import get_space

HYBRID = {"skeleton": "sequence", "nodes": 3, "ops": ["skip_connect", "conv1d_3", "mhsa_2", "ffn"], "C": 8, "N": 1}


class TestDartsSkeleton(SpaceConformance):
    space = "cell"
    options: ClassVar[dict[str, Any]] = {"skeleton": "darts", "C": 4, "N": 3, "nodes": 2}


class TestSequenceSkeleton(SpaceConformance):
    space = "cell"
    options: ClassVar[dict[str, Any]] = HYBRID


def test_hybrid_cell_mixes_conv_and_attention() -> None:
    space = get_space("cell", **HYBRID)
    assert space.input_kind == "sequence" and space.size() == 4**6 * 3
    archs = [space.sample(np.random.default_rng(s)) for s in range(40)]
    ops = {op for a in archs for _, _, op in a.cell("cell").edges}
    assert {"conv1d_3", "mhsa_2"} <= ops
    both = next(a for a in archs if {"conv1d_3", "mhsa_2"} <= set(a.cell("cell").ops()))
    forward_backward(space, both, (6, 3))


def test_nb201_skeleton_with_default_nodes_is_nb201() -> None:
    cell, nb201 = get_space("cell", C=4, N=1), get_space("nb201", C=4, N=1)
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    for _ in range(3):
        a, b = cell.sample(rng_a), nb201.sample(rng_b)
        assert a.replace(space="nb201") == b and a.canonical_hash() == b.canonical_hash()


@pytest.mark.parametrize(("options", "match"), [
    ({"ops": ["skip_connect", "mhsa_2"]}, r"cell option ops = .*: 'mhsa_2' is a sequence op; skeleton 'nb201'"),
    ({"skeleton": "sequence", "ops": ["nor_conv_3x3"]}, r"'nor_conv_3x3' is a conv op; skeleton 'sequence' takes"),
    ({"ops": ["nor_conv_3x3", "nor_conv_9x9"]}, r"'nor_conv_9x9' is not one of .*did you mean"),
    ({"skeleton": "resnet"}, r"cell option skeleton = 'resnet': choose from nb201, darts, sequence"),
    ({"skeleton": "darts", "N": 2}, r"cell option N = 2: must be an integer >= 3"),
    ({"skeleton": "sequence", "C": 6, "ops": ["mhsa_4", "ffn"]}, r"cell option C = 6: must be divisible"),
])
def test_bad_cell_options_are_named(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_space("cell", **options)


def test_cell_space_from_yaml_data() -> None:
    cfg = parse_config({"name": "hybrid", "space": {"name": "cell", "options": HYBRID},
                        "strategy": {"name": "random"}, "evaluator": {"name": "train", "task": "mnist1d"},
                        "execution": {"executor": "local", "workers": 1}})
    assert cfg.space.options["ops"] == HYBRID["ops"]
    with pytest.raises(ConfigError, match=r"space.options.ops.*'mhsa_2' is a sequence op"):
        parse_config({"name": "bad", "space": {"name": "cell", "options": {"ops": ["mhsa_2"]}},
                      "strategy": {"name": "random"}, "evaluator": {"name": "train", "task": "digits"},
                      "execution": {"executor": "local", "workers": 1}})
