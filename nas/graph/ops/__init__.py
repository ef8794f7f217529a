"""Op library: one :class:`OpTable` per family (``conv``, ``sequence``, ``rnn``, ``gen``).

``get_op_table(family)`` returns a family's table; ``OP_TABLES`` maps every family to its table.
:func:`register_op` adds an op to a family: architectures naming it in a cell of that family then validate
and compile (a new space can offer it; the built-in spaces keep their published op sets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from torch import nn

from nas.core.registry import Registry
from nas.graph.ops.base import OpSpec, OpTable
from nas.graph.ops.conv import CONV_OPS
from nas.graph.ops.generator import GEN_OPS
from nas.graph.ops.recurrent import RNN_ACTIVATIONS
from nas.graph.ops.sequence import SEQUENCE_OPS

__all__ = ["OpSpec", "OpTable", "CONV_OPS", "SEQUENCE_OPS", "RNN_ACTIVATIONS", "GEN_OPS", "OP_TABLES", "get_op_table",
           "register_op"]

Factory = Callable[..., nn.Module]

OP_TABLES: Registry[OpTable] = Registry("op family")
for _table in (CONV_OPS, SEQUENCE_OPS, RNN_ACTIVATIONS, GEN_OPS):
    OP_TABLES.register(_table.family, _table)


def get_op_table(family: str) -> OpTable:
    """The op table of ``family``; unknown families raise with the known ones and a close match."""
    return OP_TABLES.get(family)


@overload
def register_op(family: str, name: str, factory: None = None, *, zero: bool = False, identity: bool = False,
                parameter_free: bool = False) -> Callable[[Factory], Factory]: ...


@overload
def register_op(family: str, name: str, factory: Factory, *, zero: bool = False, identity: bool = False,
                parameter_free: bool = False) -> Factory: ...


def register_op(family: str, name: str, factory: Factory | None = None, *, zero: bool = False,
                identity: bool = False, parameter_free: bool = False) -> Any:
    """Add op ``name`` to ``family``'s table: ``factory`` takes the family's arguments (``conv``:
    ``(C_in, C_out, stride, affine)``, ``sequence``: ``(d_model, seq_len)``, ``rnn``: none) and returns an
    ``nn.Module``; without ``factory``, a decorator doing that (it returns the factory unchanged). The flags
    are those of :meth:`OpTable.add`. Unknown families and taken names raise."""
    table = get_op_table(family)
    if factory is None:
        return lambda fn: table.add(name, fn, zero=zero, identity=identity, parameter_free=parameter_free)
    return table.add(name, factory, zero=zero, identity=identity, parameter_free=parameter_free)
