"""Op library: one :class:`OpTable` per family (``conv``, ``sequence``, ``rnn``).

``get_op_table(family)`` returns a family's table; ``OP_TABLES`` maps every family to its table.
"""

from __future__ import annotations

from nas.core.registry import Registry
from nas.graph.ops.base import OpSpec, OpTable
from nas.graph.ops.conv import CONV_OPS
from nas.graph.ops.recurrent import RNN_ACTIVATIONS
from nas.graph.ops.sequence import SEQUENCE_OPS

__all__ = ["OpSpec", "OpTable", "CONV_OPS", "SEQUENCE_OPS", "RNN_ACTIVATIONS", "OP_TABLES", "get_op_table"]

OP_TABLES: Registry[OpTable] = Registry("op family")
for _table in (CONV_OPS, SEQUENCE_OPS, RNN_ACTIVATIONS):
    OP_TABLES.register(_table.family, _table)


def get_op_table(family: str) -> OpTable:
    """The op table of ``family``; unknown families raise with the known ones and a close match."""
    return OP_TABLES.get(family)
