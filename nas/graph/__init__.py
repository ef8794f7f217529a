"""The graph IR: :class:`Architecture` and :class:`Cell` as plain data (this package's top level imports no
torch), the op tables (:mod:`nas.graph.ops`), the cell modules and the compiler (:mod:`nas.graph.compiler`)."""

from nas.graph.architecture import Architecture, Cell

__all__ = ["Architecture", "Cell"]
