"""The NAS-Bench-201 cell string (the text form of a 4-node cell that the benchmark table is keyed by) and the five
ops the benchmark trained."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["nb201_string", "NB201_OPS"]

#: The ops of NAS-Bench-201's cells, in its order; its table holds results for cells of these only.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def nb201_string(edges: Mapping[tuple[int, int], str]) -> str:
    """The NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of a cell given as
    ``{(src, dst): op}`` over the 6 edges of its 4 nodes (no other check: callers validate)."""
    return "+".join("|" + "|".join(f"{edges[(s, d)]}~{s}" for s in range(d)) + "|" for d in range(1, 4))
