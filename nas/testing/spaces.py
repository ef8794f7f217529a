"""The :class:`~search_spaces.SearchSpace` contract as a reusable pytest suite.

Subclass :class:`SpaceConformance` in a test module, set ``space`` to the registered name and ``options`` to
options that make its models tiny (or override :meth:`~SpaceConformance.names` and
:meth:`~SpaceConformance.options_for`), and pytest runs every check on it::

    class TestMySpace(SpaceConformance):
        space = "my_space"
        options = {"width": 4}

Covered: seeded sampling from the given generator only, members (with these options and with the defaults)
compiling, running forward and backward, the JSON round trip, mutation and neighbourhoods (one decision
apart), decisions and size, encode/decode with errors naming the bad position, membership (members of every
other registered space are rejected, also when re-tagged), rebuilding from ``options()``, and option errors
(unknown options with a close match, bad integers, bad lists of names).
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.graph.architecture import Architecture
from search_spaces import SearchSpace, get_space, list_spaces

__all__ = ["SpaceConformance", "forward_backward", "generator_forward_backward", "check_model"]


def forward_backward(space: SearchSpace, arch: Architecture, shape: tuple[int, ...], classes: int = 5) -> None:
    """Compile ``arch``, run a batch of two through it and back: finite outputs of the right shape, finite
    gradients, and a classifier bias that trains."""
    model = space.build_model(arch, shape, classes)
    assert isinstance(model, torch.nn.Module)
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    head = list(model.parameters())[-1]  # the classifier bias always trains
    assert head.grad is not None and head.grad.abs().sum() > 0


def generator_forward_backward(space: SearchSpace, arch: Architecture, shape: tuple[int, ...],
                               classes: int = 5) -> None:
    """Compile the generator ``arch`` for images of ``shape``, map two latent vectors to two finite images in
    ``[-1, 1]`` of that shape, and back: finite gradients, and the first layer (the latent projection) trains."""
    model = space.build_model(arch, shape, classes)
    assert isinstance(model, torch.nn.Module)
    z = torch.randn(2, int(getattr(model, "latent_dim")))  # noqa: B009  # an attribute mypy cannot see on nn.Module
    args = (z, torch.tensor([0, 1])) if getattr(model, "conditional", False) else (z,)
    out = model(*args)
    assert out.shape == (2, *shape)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def check_model(space: SearchSpace, arch: Architecture, shape: tuple[int, ...], classes: int = 5) -> None:
    """:func:`forward_backward` for classifier spaces, :func:`generator_forward_backward` for generator spaces
    (``space.model_kind``)."""
    check = generator_forward_backward if space.model_kind == "generator" else forward_backward
    check(space, arch, shape, classes)


def _int_options(name: str) -> list[str]:
    return [k for k, v in get_space(name).options().items() if isinstance(v, int) and not isinstance(v, bool)]


def _list_options(name: str) -> list[str]:
    return [k for k, v in get_space(name).options().items() if isinstance(v, list)]


class SpaceConformance:
    """The contract tests; subclass as ``Test...`` and set :attr:`space` (or override :meth:`names`)."""

    #: the registered name of the space under test
    space: ClassVar[str | None] = None
    #: options making the models of :attr:`space` tiny (the suite also builds it once with its defaults)
    options: ClassVar[dict[str, Any]] = {}
    #: the input shape used for each input kind
    input_shapes: ClassVar[dict[str, tuple[int, ...]]] = {"image": (3, 8, 8), "sequence": (6, 3), "tabular": (6,)}
    seeds: ClassVar[tuple[int, ...]] = (0, 1, 2)
    classes: ClassVar[int] = 5

    def names(self) -> list[str]:
        """The registered names of the spaces under test (hook; by default :attr:`space`)."""
        if self.space is None:
            raise TypeError(f"{type(self).__name__}: set the class attribute `space` to the registered name of "
                            "the space under test, or override `names()`")
        return [self.space]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Each test runs for every space of :meth:`names`; the option tests for each of its integer or
        list-of-names options (none: the test is skipped)."""
        select = {"test_bad_integer_options": _int_options, "test_bad_choice_options": _list_options}
        if metafunc.definition.originalname in select:
            pairs = [(n, k) for n in self.names() for k in select[metafunc.definition.originalname](n)]
            metafunc.parametrize(("name", "key"), pairs, ids=[f"{n}-{k}" for n, k in pairs])
        elif "name" in metafunc.fixturenames:
            metafunc.parametrize("name", self.names())

    def options_for(self, name: str) -> dict[str, Any]:
        """Small options for space ``name`` (hook; by default :attr:`options` for :attr:`space`, else none)."""
        return dict(self.options) if name == self.space else {}

    def small(self, name: str) -> SearchSpace:
        return get_space(name, **self.options_for(name))

    def samples(self, space: SearchSpace, n: int | None = None) -> list[Architecture]:
        return [space.sample(np.random.default_rng(seed)) for seed in range(len(self.seeds) if n is None else n)]

    def shape(self, space: SearchSpace) -> tuple[int, ...]:
        return self.input_shapes[space.input_kind]

    def foreign(self, name: str) -> list[tuple[str, Architecture]]:
        """A member of every other registered space."""
        return [(other, self.small(other).sample(np.random.default_rng(0))) for other in list_spaces()
                if other != name]

    # -- sampling --------------------------------------------------------------------------------------
    def test_sample_is_deterministic_and_valid(self, name: str) -> None:
        space = self.small(name)
        first, again = self.samples(space), self.samples(space)
        assert first == again
        assert [a.to_json() for a in first] == [a.to_json() for a in again]
        for arch in first:
            assert isinstance(arch, Architecture) and arch.space == name
            assert arch.validate() is arch
            assert space.contains(arch)
        assert len(set(self.samples(space, 8))) > 1

    def test_sample_draws_only_from_the_given_generator(self, name: str) -> None:
        space = self.small(name)
        np.random.seed(1)
        random.seed(1)
        a = space.sample(np.random.default_rng(7))
        np.random.seed(2)
        random.seed(2)
        b = space.sample(np.random.default_rng(7))
        assert a == b
        rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
        assert [space.sample(rng_a) for _ in range(3)] == [space.sample(rng_b) for _ in range(3)]

    # -- compilation -----------------------------------------------------------------------------------
    def test_members_compile_and_train(self, name: str) -> None:
        space = self.small(name)
        for arch in self.samples(space):
            check_model(space, arch, self.shape(space), self.classes)

    def test_default_options_compile_and_train(self, name: str) -> None:
        space = get_space(name)
        check_model(space, space.sample(np.random.default_rng(0)), self.shape(space), self.classes)

    # -- JSON ------------------------------------------------------------------------------------------
    def test_json_round_trip(self, name: str) -> None:
        space = self.small(name)
        for arch in self.samples(space):
            text = arch.to_json()
            back = Architecture.from_json(text)
            assert back == arch
            assert back.to_json() == text
            assert space.contains(back) and space.encode(back) == space.encode(arch)

    # -- mutation and neighbourhoods -------------------------------------------------------------------
    def test_mutate_returns_a_different_member(self, name: str) -> None:
        space = self.small(name)
        for seed, arch in enumerate(self.samples(space)):
            mutant = space.mutate(arch, np.random.default_rng(seed))
            assert mutant != arch
            assert space.contains(mutant)
            before, after = space.encode(arch), space.encode(mutant)
            assert sum(x != y for x, y in zip(before, after)) == 1
            assert space.mutate(arch, np.random.default_rng(seed)) == mutant  # deterministic

    def test_neighbours(self, name: str) -> None:
        space = self.small(name)
        arch = space.sample(np.random.default_rng(0))
        neighbours = space.neighbours(arch)
        assert len(neighbours) == sum(n - 1 for n in space.decision_sizes())
        assert len(set(neighbours)) == len(neighbours)
        assert arch not in neighbours
        original = space.encode(arch)
        for other in neighbours:
            assert space.contains(other)
            assert sum(x != y for x, y in zip(original, space.encode(other))) == 1

    # -- decisions -------------------------------------------------------------------------------------
    def test_size_and_decision_names(self, name: str) -> None:
        for space in (self.small(name), get_space(name)):
            sizes, names = space.decision_sizes(), space.decision_names()
            assert sizes and all(isinstance(n, int) and n >= 1 for n in sizes)
            assert space.size() == math.prod(sizes)
            assert len(names) == len(sizes) == len(set(names))
            assert all(isinstance(n, str) and n for n in names)

    def test_decision_choices_name_every_value(self, name: str) -> None:
        for space in (self.small(name), get_space(name)):
            choices = space.decision_choices()
            assert [len(c) for c in choices] == space.decision_sizes()
            for values in choices:
                assert all(isinstance(v, (str, int, float, bool)) for v in values)
                assert len(set(values)) == len(values)

    def test_encode_decode_round_trip(self, name: str) -> None:
        space = self.small(name)
        sizes = space.decision_sizes()
        for arch in self.samples(space):
            decisions = space.encode(arch)
            assert len(decisions) == len(sizes)
            assert all(isinstance(d, int) and 0 <= d < n for d, n in zip(decisions, sizes))
            assert space.decode(decisions) == arch
        rng = np.random.default_rng(11)
        for _ in range(5):
            decisions = [int(rng.integers(n)) for n in sizes]
            assert space.encode(space.decode(decisions)) == decisions
            assert space.decode(np.array(decisions)) == space.decode(decisions)  # type: ignore[arg-type]  # numpy ints
        assert space.encode(space.decode([0] * len(sizes))) == [0] * len(sizes)
        assert space.encode(space.decode([n - 1 for n in sizes])) == [n - 1 for n in sizes]

    def test_decode_rejects_bad_decisions_with_their_position(self, name: str) -> None:
        space = self.small(name)
        sizes, names = space.decision_sizes(), space.decision_names()
        good = [0] * len(sizes)
        for wrong in (good[:-1], [*good, 0], []):
            with pytest.raises(InvalidArchitectureError, match=rf"space '{name}' takes {len(sizes)} decisions, "
                                                                rf"got {len(wrong)}"):
                space.decode(wrong)
        for i in (0, len(sizes) - 1):
            for bad in (sizes[i], -1, True, 1.0, "0"):
                decisions: list[Any] = list(good)
                decisions[i] = bad
                with pytest.raises(InvalidArchitectureError) as info:
                    space.decode(decisions)
                msg = str(info.value)
                assert f"decision {i} ({names[i]}) = {bad!r}" in msg and f"outside 0..{sizes[i] - 1}" in msg

    # -- membership ------------------------------------------------------------------------------------
    def test_architectures_of_other_spaces_are_rejected(self, name: str) -> None:
        space = self.small(name)
        shape = self.shape(space)
        for other, arch in self.foreign(name):
            assert not space.contains(arch)
            for call in (lambda a=arch: space.build_model(a, shape, self.classes), lambda a=arch: space.encode(a),
                         lambda a=arch: space.neighbours(a),
                         lambda a=arch: space.mutate(a, np.random.default_rng(0))):
                with pytest.raises(InvalidArchitectureError) as info:
                    call()
                assert f"space {other!r}, not {name!r}" in str(info.value)

    def test_retagged_architectures_of_other_spaces_are_rejected(self, name: str) -> None:
        space = self.small(name)
        shape = self.shape(space)
        for _, arch in self.foreign(name):
            impostor = arch.replace(space=name)
            assert not space.contains(impostor)
            with pytest.raises(InvalidArchitectureError, match=rf"not a member of space '{name}'"):
                space.build_model(impostor, shape, self.classes)

    def test_changed_macro_or_options_leave_the_space(self, name: str) -> None:
        space = self.small(name)
        arch = space.sample(np.random.default_rng(0))
        extra = arch.replace(macro={**arch.macro, "extra": 1})
        assert not space.contains(extra)
        with pytest.raises(InvalidArchitectureError, match=r"cells or macro settings differ"):
            space.encode(extra)
        if self.options_for(name):  # a member with other options belongs to another instance of the space
            assert not get_space(name).contains(arch)
        with pytest.raises(InvalidArchitectureError, match=r"expected an Architecture, got str"):
            space.encode("not an architecture")  # type: ignore[arg-type]  # the wrong type is the point

    # -- construction ----------------------------------------------------------------------------------
    def test_options_rebuild_the_space(self, name: str) -> None:
        space = self.small(name)
        options = space.options()
        rebuilt = get_space(name, **options)
        assert rebuilt.options() == options
        assert self.samples(rebuilt) == self.samples(space)
        assert type(space).name == name == space.name
        assert space.input_kind in self.input_shapes
        assert type(space).__name__ in repr(space)

    def test_unknown_option_is_named(self, name: str) -> None:
        with pytest.raises(ConfigError) as info:
            get_space(name, no_such_option=1)
        msg = str(info.value)
        assert f"space {name!r} has no option 'no_such_option'" in msg
        assert all(opt in msg for opt in get_space(name).options())
        option = max(get_space(name).options(), key=len)
        with pytest.raises(ConfigError, match=rf"did you mean .*'{option}'"):
            get_space(name, **{option + option[-1]: 1})

    def test_bad_integer_options(self, name: str, key: str) -> None:
        for bad in (0, -3, True, "4", 2.0):
            with pytest.raises(ConfigError, match=rf"{name} option {key} = {bad!r}"):
                get_space(name, **{key: bad})

    def test_bad_choice_options(self, name: str, key: str) -> None:
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
