"""A space's supernet described as data (no torch): the template it compiles and the slots it searches.

A space that supports one-shot search returns a :class:`SupernetSpec` from ``space.supernet_spec()``:

* ``template``: a member-like :class:`~nas.graph.architecture.Architecture` whose searched cells hold every edge
  of their slot (the op on each edge is a placeholder) and whose macro settings name the skeleton;
* ``slots``: one :class:`Slot` per searched choice. A *cell slot* is named like a cell of the template and
  has one row per edge ``(src, dst)`` of that cell; a *macro slot* names the macro setting it chooses
  (``macro``, e.g. ``pos_encoding``) and has one row. ``ops`` are the candidate op names (macro values).

:func:`nas.oneshot.supernet.build_supernet` compiles a spec into a supernet whose architecture parameters are
``alphas[slot]`` of shape ``(rows, len(ops))`` (plus ``"<slot>.edges"``, one weight per row, with edge
normalisation); ``space.derive(alphas)`` turns such plain arrays back into a member, with no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from nas.core.errors import InvalidArchitectureError
from nas.graph.architecture import Architecture

__all__ = ["Slot", "SupernetSpec", "EDGES", "edge_weights"]

#: suffix of the edge-normalisation parameters of a cell slot in ``alpha_arrays()`` (``"<slot>.edges"``)
EDGES = ".edges"


@dataclass(frozen=True)
class Slot:
    """One searched choice: candidate op names and either, for a cell slot, the ``(src, dst)`` edge of each
    row, or, for a macro slot, the macro setting it chooses (``macro``; one row)."""

    ops: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ((0, 0),)
    macro: str | None = None

    @property
    def rows(self) -> int:
        return len(self.edges)


@dataclass(frozen=True)
class SupernetSpec:
    """What a space's supernet compiles (``template``) and searches (``slots``, by name, in parameter order).
    Construction checks that every cell slot matches the edges of its template cell and every macro slot
    names a macro setting of the template."""

    template: Architecture
    slots: Mapping[str, Slot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", dict(self.slots))
        for name, slot in self.slots.items():
            if not slot.ops:
                raise InvalidArchitectureError(f"supernet slot {name!r} has no candidate ops")
            if slot.macro is not None:
                if slot.macro not in self.template.macro or slot.rows != 1:
                    raise InvalidArchitectureError(
                        f"supernet slot {name!r} chooses macro setting {slot.macro!r}; the template's settings are "
                        f"{sorted(self.template.macro)} and a macro slot has one row")
                continue
            if name not in self.template.cells:
                raise InvalidArchitectureError(f"supernet slot {name!r} names no cell of the template; its cells are "
                                               f"{sorted(self.template.cells)} (or set macro= for a macro slot)")
            held = sorted((s, d) for s, d, _ in self.template.cells[name].edges)
            if held != sorted(slot.edges) or len(set(slot.edges)) != slot.rows:
                raise InvalidArchitectureError(f"supernet slot {name!r} lists edges {list(slot.edges)}; its template "
                                               f"cell holds {held} (one row per edge, each once)")

    @property
    def cell_slots(self) -> dict[str, Slot]:
        """The slots that search the edges of a template cell."""
        return {name: slot for name, slot in self.slots.items() if slot.macro is None}


def edge_weights(betas: np.ndarray, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Numpy twin of the supernet's edge normalisation: ``betas`` softmax-normalised over the edges with the
    same destination node."""
    b = np.asarray(betas, dtype=np.float64).reshape(-1)
    out = np.zeros_like(b)
    for dst in sorted({d for _, d in edges}):
        rows = [i for i, (_, d) in enumerate(edges) if d == dst]
        e = np.exp(b[rows] - b[rows].max())
        out[rows] = e / e.sum()
    return out

