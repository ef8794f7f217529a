"""The :class:`SearchSpace` contract, with defaults built on a fixed list of categorical decisions.

A space subclass states ``decision_sizes()``, ``decision_names()``, ``decode(decisions)`` and
``_encode(arch)``; sampling, mutation, neighbours, membership and size follow from those. ``decode`` must
be injective, so ``size()`` is the product of the decision sizes and is exact.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import nn

from nas.core.errors import ConfigError, InvalidArchitectureError
from nas.graph.architecture import Architecture
from nas.graph.compiler import build_model
from search_spaces.slots import SupernetSpec

__all__ = ["SearchSpace", "SpaceCompiler", "dense_edges", "MAX_DEPTH", "MAX_NODES", "MAX_WIDTH"]

#: Upper bounds of the size options of the shipped spaces, refused at config time beyond them (a space builds its
#: layers eagerly: ``N: 2**63`` would allocate for minutes, then fail). Far above any published setting (NAS-Bench-201
#: N = 5, C = 16; DARTS 20 layers of 4 steps, C = 36): cells or layers stacked in a network ...
MAX_DEPTH = 256
#: ... intermediate nodes of a cell (the decisions grow with their square) ...
MAX_NODES = 32
#: ... and channels or model width.
MAX_WIDTH = 16384


def dense_edges(nodes: int) -> list[tuple[int, int]]:
    """Edges of a fully connected DAG over ``nodes`` nodes in NAS-Bench-201 string order:
    ``(0,1), (0,2), (1,2), (0,3), (1,3), (2,3), ...`` (by destination, then source)."""
    return [(src, dst) for dst in range(1, nodes) for src in range(dst)]


@dataclass(frozen=True)
class SpaceCompiler:
    """What an evaluator is handed to compile the candidates of a space, instead of the space itself.

    ``compiler(arch, input_shape, num_classes)`` is :func:`nas.graph.compiler.build_model`: the architecture's own
    validity (cells, macro settings, input shape) is checked, membership of the space is not (the strategy checks
    that once, when it proposes a trial). ``name`` and ``input_kind`` are the space's, for the task kind check and
    its message. Plain data, so it pickles to Ray workers.
    """

    name: str
    input_kind: str

    def __call__(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        return build_model(arch, input_shape, num_classes)


class SearchSpace(ABC):
    """A set of architectures addressed by a fixed list of categorical decisions.

    Contract: ``decode`` maps every in-range decision list to a distinct, valid member;
    ``encode(decode(d)) == d``; ``sample``/``mutate`` draw only from the ``numpy.random.Generator``
    they are given; ``build_model`` compiles members and rejects anything else with a clear error.
    """

    name: ClassVar[str]
    #: ``"image"`` (input ``(C, H, W)``) or ``"sequence"`` (input ``(T, C)``).
    input_kind: ClassVar[str]
    #: what members compile to: ``"classifier"`` (``input_shape`` -> ``num_classes`` logits) or ``"generator"``
    #: (latent vectors ``(N, model.latent_dim)`` -> images of ``input_shape``; trained by the GAN trainer).
    model_kind: ClassVar[str] = "classifier"

    # -- what a space states -------------------------------------------------------------------
    @abstractmethod
    def decision_sizes(self) -> list[int]:
        """Number of choices of each decision."""

    @abstractmethod
    def decision_names(self) -> list[str]:
        """A readable, unique name per decision (used as parameter names by Optuna and reports)."""

    def decision_choices(self) -> list[list[str | int | float | bool]]:
        """What each value of every decision stands for, by decision (``decision_choices()[i][v]`` for value ``v``
        of decision ``i``): op names, input nodes, option values, as JSON scalars unique within a decision, so
        that trackers (an Optuna study mirror, TensorBoard, MLflow) show choices by name. The default is the
        indices ``0 .. n-1``; spaces override it."""
        return [list(range(n)) for n in self.decision_sizes()]

    @abstractmethod
    def _decode(self, decisions: list[int]) -> Architecture:
        """Decisions (already range-checked) -> architecture."""

    @abstractmethod
    def _encode(self, arch: Architecture) -> list[int]:
        """Architecture of this space -> decisions; may raise on a non-member."""

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """The constructor options, as JSON data (``get_space(name, **options)`` rebuilds the space)."""

    # -- derived behaviour ---------------------------------------------------------------------
    def decode(self, decisions: Sequence[int]) -> Architecture:
        """The member addressed by ``decisions``; out-of-range or mis-sized lists raise with the position."""
        sizes = self.decision_sizes()
        values = list(decisions)
        if len(values) != len(sizes):
            raise InvalidArchitectureError(
                f"space {self.name!r} takes {len(sizes)} decisions, got {len(values)}"
            )
        names = self.decision_names()
        for i, (v, n) in enumerate(zip(values, sizes)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
                raise InvalidArchitectureError(
                    f"space {self.name!r}: decision {i} ({names[i]}) = {v!r} is outside 0..{n - 1}"
                )
        return self._decode([int(v) for v in values])

    def encode(self, arch: Architecture) -> list[int]:
        """The decisions of a member; raises :class:`InvalidArchitectureError` for anything else."""
        self.check(arch)
        return self._encode(arch)

    def check(self, arch: Architecture) -> None:
        """Raise :class:`InvalidArchitectureError` saying why ``arch`` is not a member of this space."""
        if not isinstance(arch, Architecture):
            raise InvalidArchitectureError(f"expected an Architecture, got {type(arch).__name__}")
        if arch.space != self.name:
            raise InvalidArchitectureError(
                f"architecture belongs to space {arch.space!r}, not {self.name!r}; "
                f"use get_space({arch.space!r}) for it"
            )
        try:
            decisions = self._encode(arch)
        except InvalidArchitectureError:
            raise
        except (KeyError, ValueError, IndexError, TypeError, LookupError) as err:
            raise InvalidArchitectureError(f"architecture is not a member of space {self.name!r}: {err}") from None
        if self.decode(decisions) != arch:
            raise InvalidArchitectureError(
                f"architecture is not a member of space {self.name!r} with options {self.options()}: "
                "its cells or macro settings differ from the member with the same decisions"
            )

    def contains(self, arch: Architecture) -> bool:
        """True when ``arch`` is a member of this space (with these options)."""
        try:
            self.check(arch)
        except InvalidArchitectureError:
            return False
        return True

    def size(self) -> int:
        """Exact number of members (decode is injective)."""
        return math.prod(self.decision_sizes())

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random member, drawn from ``rng`` only."""
        return self._decode([int(rng.integers(n)) for n in self.decision_sizes()])

    def mutate(self, arch: Architecture, rng: np.random.Generator, attempts: int = 16) -> Architecture:
        """A member that differs from ``arch`` in one decision. Prefers one that computes a different
        function (different ``canonical_hash``); after ``attempts`` tries, returns a merely different one."""
        decisions = self.encode(arch)
        sizes = self.decision_sizes()
        mutable = [i for i, n in enumerate(sizes) if n > 1]
        if not mutable:
            raise InvalidArchitectureError(f"space {self.name!r} has a single member; nothing to mutate")
        original = arch.canonical_hash()
        candidate = arch
        for _ in range(attempts):
            i = mutable[int(rng.integers(len(mutable)))]
            new = list(decisions)
            new[i] = (decisions[i] + 1 + int(rng.integers(sizes[i] - 1))) % sizes[i]
            candidate = self._decode(new)
            if candidate.canonical_hash() != original:
                break
        return candidate

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every member that differs from ``arch`` in exactly one decision, in decision order."""
        decisions = self.encode(arch)
        out = []
        for i, n in enumerate(self.decision_sizes()):
            for v in range(n):
                if v != decisions[i]:
                    new = list(decisions)
                    new[i] = v
                    out.append(self._decode(new))
        return out

    # -- one-shot search (spaces that support it override these) ---------------------------------
    #: the cells whose edges a supernet searches (the collapse guard measures their parameter-free share)
    searched_cells: ClassVar[tuple[str, ...]] = ()

    def supernet_spec(self) -> SupernetSpec:
        """The continuous relaxation of this space as data: the template compiled by the members' skeleton and
        the slots searched (see :mod:`search_spaces.slots`); ``nas.oneshot.supernet.build_supernet(space, ...)``
        compiles it. Spaces without one raise :class:`ConfigError`."""
        raise ConfigError(f"space {self.name!r} has no supernet; one-shot strategies search nb201, darts and "
                          "transformer")

    def derive(self, alphas: Mapping[str, Any]) -> Architecture:
        """The member that the architecture parameters ``alphas`` (plain arrays ``{slot: (rows, ops)}``, plus
        ``"<slot>.edges"`` with edge normalisation, as from ``Supernet.alpha_arrays()``) choose: the strongest
        op of every choice."""
        raise ConfigError(f"space {self.name!r} has no supernet to derive from")

    def _alpha_rows(self, alphas: Mapping[str, Any], slot: str, shape: tuple[int, int]) -> np.ndarray:
        """``alphas[slot]`` as a float array of ``shape``, or a clear error."""
        if slot not in alphas:
            raise InvalidArchitectureError(f"space {self.name!r}: alphas lack slot {slot!r}; got {sorted(alphas)}")
        a = np.asarray(alphas[slot], dtype=np.float64)
        if a.shape != shape or not np.all(np.isfinite(a)):
            raise InvalidArchitectureError(f"space {self.name!r}: alphas[{slot!r}] must be a finite {shape} array, "
                                           f"got shape {a.shape}")
        return a

    def compiler(self) -> SpaceCompiler:
        """Compiles members without checking membership (see :class:`SpaceCompiler`); evaluators hold this."""
        return SpaceCompiler(name=self.name, input_kind=self.input_kind)

    def build_model(self, arch: Architecture, input_shape: Sequence[int], num_classes: int) -> nn.Module:
        """Compile a member into a fresh ``nn.Module`` for ``input_shape`` (batch excluded); anything else raises
        :class:`InvalidArchitectureError`."""
        self.check(arch)
        return self.compiler()(arch, input_shape, num_classes)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"
