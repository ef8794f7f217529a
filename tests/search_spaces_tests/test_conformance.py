"""The SearchSpace contract, checked for every registered space (new spaces are covered automatically).

Each space is exercised with the small options below (fast models); a space without an entry runs with
its defaults. The defaults are also compiled once per space.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, InvalidArchitectureError, UnknownNameError
from nas.graph.architecture import Architecture
from search_spaces import SearchSpace, get_space, list_spaces

#: Options that make each space's models tiny. Add an entry for a new space to keep the suite fast.
SMALL_OPTIONS: dict[str, dict[str, Any]] = {
    "nb201": {"C": 4, "N": 1},
    "darts": {"C": 4, "layers": 3},
    "rnn": {"steps": 3, "num_layers": 2, "d_model": 8},
    "transformer": {"d_model": 8, "num_cells": 1},
}
INPUT_SHAPES = {"image": (3, 8, 8), "sequence": (6, 3)}
SPACES = list_spaces()
SEEDS = (0, 1, 2)
CLASSES = 5


def small(name: str) -> SearchSpace:
    return get_space(name, **SMALL_OPTIONS.get(name, {}))


def samples(space: SearchSpace, n: int = len(SEEDS)) -> list[Architecture]:
    return [space.sample(np.random.default_rng(seed)) for seed in range(n)]


def forward_backward(space: SearchSpace, arch: Architecture) -> None:
    shape = INPUT_SHAPES[space.input_kind]
    model = space.build_model(arch, shape, CLASSES)
    assert isinstance(model, torch.nn.Module)
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, CLASSES)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    head = list(model.parameters())[-1]  # the classifier bias always trains
    assert head.grad is not None and head.grad.abs().sum() > 0


def foreign(name: str) -> list[tuple[str, Architecture]]:
    """A member of every other space."""
    return [(other, small(other).sample(np.random.default_rng(0))) for other in SPACES if other != name]


def test_small_options_cover_known_spaces() -> None:
    assert {"nb201", "darts", "rnn", "transformer"} <= set(SPACES)
    assert set(SMALL_OPTIONS) <= set(SPACES)


# -- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_sample_is_deterministic_and_valid(name: str) -> None:
    space = small(name)
    first, again = samples(space), samples(space)
    assert first == again
    assert [a.to_json() for a in first] == [a.to_json() for a in again]
    for arch in first:
        assert isinstance(arch, Architecture) and arch.space == name
        assert arch.validate() is arch
        assert space.contains(arch)
    assert len(set(samples(space, 8))) > 1


@pytest.mark.parametrize("name", SPACES)
def test_sample_draws_only_from_the_given_generator(name: str) -> None:
    space = small(name)
    np.random.seed(1)
    random.seed(1)
    a = space.sample(np.random.default_rng(7))
    np.random.seed(2)
    random.seed(2)
    b = space.sample(np.random.default_rng(7))
    assert a == b
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert [space.sample(rng_a) for _ in range(3)] == [space.sample(rng_b) for _ in range(3)]


# -- compilation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_members_compile_and_train(name: str) -> None:
    space = small(name)
    for arch in samples(space):
        forward_backward(space, arch)


@pytest.mark.parametrize("name", SPACES)
def test_default_options_compile_and_train(name: str) -> None:
    space = get_space(name)
    forward_backward(space, space.sample(np.random.default_rng(0)))


# -- JSON ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_json_round_trip(name: str) -> None:
    space = small(name)
    for arch in samples(space):
        text = arch.to_json()
        back = Architecture.from_json(text)
        assert back == arch
        assert back.to_json() == text
        assert space.contains(back) and space.encode(back) == space.encode(arch)


# -- mutation and neighbourhoods --------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_mutate_returns_a_different_member(name: str) -> None:
    space = small(name)
    for seed, arch in enumerate(samples(space)):
        mutant = space.mutate(arch, np.random.default_rng(seed))
        assert mutant != arch
        assert space.contains(mutant)
        before, after = space.encode(arch), space.encode(mutant)
        assert sum(x != y for x, y in zip(before, after)) == 1
        assert space.mutate(arch, np.random.default_rng(seed)) == mutant  # deterministic


@pytest.mark.parametrize("name", SPACES)
def test_neighbours(name: str) -> None:
    space = small(name)
    arch = space.sample(np.random.default_rng(0))
    neighbours = space.neighbours(arch)
    assert len(neighbours) == sum(n - 1 for n in space.decision_sizes())
    assert len(set(neighbours)) == len(neighbours)
    assert arch not in neighbours
    original = space.encode(arch)
    for other in neighbours:
        assert space.contains(other)
        assert sum(x != y for x, y in zip(original, space.encode(other))) == 1


# -- decisions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_size_and_decision_names(name: str) -> None:
    for space in (small(name), get_space(name)):
        sizes, names = space.decision_sizes(), space.decision_names()
        assert sizes and all(isinstance(n, int) and n >= 1 for n in sizes)
        assert space.size() == math.prod(sizes)
        assert len(names) == len(sizes) == len(set(names))
        assert all(isinstance(n, str) and n for n in names)


@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_round_trip(name: str) -> None:
    space = small(name)
    sizes = space.decision_sizes()
    for arch in samples(space):
        decisions = space.encode(arch)
        assert len(decisions) == len(sizes)
        assert all(isinstance(d, int) and 0 <= d < n for d, n in zip(decisions, sizes))
        assert space.decode(decisions) == arch
    rng = np.random.default_rng(11)
    for _ in range(5):
        decisions = [int(rng.integers(n)) for n in sizes]
        assert space.encode(space.decode(decisions)) == decisions
        assert space.decode(np.array(decisions)) == space.decode(decisions)  # numpy integers are fine
    assert space.encode(space.decode([0] * len(sizes))) == [0] * len(sizes)
    assert space.encode(space.decode([n - 1 for n in sizes])) == [n - 1 for n in sizes]


@pytest.mark.parametrize("name", SPACES)
def test_decode_rejects_bad_decisions_with_their_position(name: str) -> None:
    space = small(name)
    sizes, names = space.decision_sizes(), space.decision_names()
    good = [0] * len(sizes)
    for wrong in (good[:-1], [*good, 0], []):
        with pytest.raises(InvalidArchitectureError, match=rf"space '{name}' takes {len(sizes)} decisions, "
                                                            rf"got {len(wrong)}"):
            space.decode(wrong)
    for i in (0, len(sizes) - 1):
        for bad in (sizes[i], -1, True, 1.0, "0"):
            decisions = list(good)
            decisions[i] = bad
            with pytest.raises(InvalidArchitectureError) as info:
                space.decode(decisions)
            msg = str(info.value)
            assert f"decision {i} ({names[i]}) = {bad!r}" in msg and f"outside 0..{sizes[i] - 1}" in msg


# -- membership --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_architectures_of_other_spaces_are_rejected(name: str) -> None:
    space = small(name)
    shape = INPUT_SHAPES[space.input_kind]
    for other, arch in foreign(name):
        assert not space.contains(arch)
        for call in (lambda a=arch: space.build_model(a, shape, CLASSES), lambda a=arch: space.encode(a),
                     lambda a=arch: space.neighbours(a), lambda a=arch: space.mutate(a, np.random.default_rng(0))):
            with pytest.raises(InvalidArchitectureError) as info:
                call()
            assert f"space {other!r}, not {name!r}" in str(info.value)


@pytest.mark.parametrize("name", SPACES)
def test_retagged_architectures_of_other_spaces_are_rejected(name: str) -> None:
    space = small(name)
    shape = INPUT_SHAPES[space.input_kind]
    for _, arch in foreign(name):
        impostor = arch.replace(space=name)
        assert not space.contains(impostor)
        with pytest.raises(InvalidArchitectureError, match=rf"not a member of space '{name}'"):
            space.build_model(impostor, shape, CLASSES)


@pytest.mark.parametrize("name", SPACES)
def test_changed_macro_or_options_leave_the_space(name: str) -> None:
    space = small(name)
    arch = space.sample(np.random.default_rng(0))
    extra = arch.replace(macro={**arch.macro, "extra": 1})
    assert not space.contains(extra)
    with pytest.raises(InvalidArchitectureError, match=r"cells or macro settings differ"):
        space.encode(extra)
    if SMALL_OPTIONS.get(name):  # a member with other options belongs to another instance of the space
        assert not get_space(name).contains(arch)
    with pytest.raises(InvalidArchitectureError, match=r"expected an Architecture, got str"):
        space.encode("not an architecture")  # type: ignore[arg-type]  # on purpose


# -- construction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_options_rebuild_the_space(name: str) -> None:
    space = small(name)
    options = space.options()
    rebuilt = get_space(name, **options)
    assert rebuilt.options() == options
    assert samples(rebuilt) == samples(space)
    assert type(space).name == name == space.name
    assert space.input_kind in INPUT_SHAPES
    assert type(space).__name__ in repr(space)


def test_unknown_space_suggests_a_close_match() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown search space 'nb20'.*did you mean 'nb201'") as info:
        get_space("nb20")
    assert info.value.hint == "nb201"
    assert all(name in str(info.value) for name in SPACES)


@pytest.mark.parametrize("name", SPACES)
def test_unknown_option_is_named(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        get_space(name, no_such_option=1)
    msg = str(info.value)
    assert f"space {name!r} has no option 'no_such_option'" in msg
    assert all(opt in msg for opt in get_space(name).options())
    option = max(get_space(name).options(), key=len)
    with pytest.raises(ConfigError, match=rf"did you mean .*'{option}'"):
        get_space(name, **{option + option[-1]: 1})


def _int_options(name: str) -> list[str]:
    return [k for k, v in get_space(name).options().items() if isinstance(v, int) and not isinstance(v, bool)]


def _list_options(name: str) -> list[str]:
    return [k for k, v in get_space(name).options().items() if isinstance(v, list)]


INT_OPTIONS = [(name, key) for name in SPACES for key in _int_options(name)]
LIST_OPTIONS = [(name, key) for name in SPACES for key in _list_options(name)]


@pytest.mark.parametrize(("name", "key"), INT_OPTIONS, ids=[f"{n}-{k}" for n, k in INT_OPTIONS])
def test_bad_integer_options(name: str, key: str) -> None:
    for bad in (0, -3, True, "4", 2.0):
        with pytest.raises(ConfigError, match=rf"{name} option {key} = {bad!r}"):
            get_space(name, **{key: bad})


@pytest.mark.parametrize(("name", "key"), LIST_OPTIONS, ids=[f"{n}-{k}" for n, k in LIST_OPTIONS])
def test_bad_choice_options(name: str, key: str) -> None:
    default = get_space(name).options()[key]
    with pytest.raises(ConfigError, match=rf"{name} option {key}: 'no_such_op' is not one of"):
        get_space(name, **{key: [*default, "no_such_op"]})
    typo = default[-1] + "x"
    with pytest.raises(ConfigError, match=rf"{typo!r} is not one of .*did you mean {default[-1]!r}"):
        get_space(name, **{key: [default[0], typo]})
    with pytest.raises(ConfigError, match=rf"{name} option {key} is empty"):
        get_space(name, **{key: []})
    with pytest.raises(ConfigError, match=rf"{name} option {key} = .* repeats a name"):
        get_space(name, **{key: [default[0], default[0]]})
    assert get_space(name, **{key: default[:2]}).options()[key] == default[:2]


@pytest.mark.parametrize(("name", "options", "match"), [
    ("darts", {"layers": 2}, r"darts option layers = 2: must be an integer >= 3"),
    ("rnn", {"d_model": 7}, r"rnn option d_model = 7: bidirectional layers need an even width"),
    ("rnn", {"pool": "max"}, r"rnn option pool = 'max': expected 'mean' or 'last'"),
    ("transformer", {"d_model": 6}, r"transformer option d_model = 6: must be divisible by every head count"),
    ("transformer", {"pool": "first"}, r"transformer option pool = 'first'"),
    ("transformer", {"nodes": 1}, r"transformer option nodes = 1: must be an integer >= 2"),
    ("transformer", {"ops": ["skip_connect", "pe_learned"]}, r"'pe_learned' is not one of"),
])
def test_space_specific_bad_options(name: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_space(name, **options)
