"""Drawings of architecture cells: nodes as circles in topological order, ops as labelled, coloured edges.

Edges between neighbouring nodes are straight; longer edges arc above (even spans) or below (odd spans) the
line of nodes, higher the longer they are, so every op label sits at its own place. Input nodes read ``in0``,
``in1``; output nodes are filled orange and the caption says how they are combined. ``none`` edges are drawn
dashed and grey. Works for every cell family (conv, sequence, rnn), so for every space.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.path import Path

from nas.graph.architecture import Architecture, Cell

__all__ = ["draw_cell", "draw_architecture", "node_positions"]

SPACING = 1.45  # data units (= inches at the figure size chosen below) between neighbouring nodes
RADIUS = 0.24
_PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
            "#ff7f0e", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")
_NONE_COLOUR = "#b0b0b0"


def node_positions(cell: Cell) -> dict[int, float]:
    """x position of every node: its index in a topological order (ties broken by node id) times SPACING."""
    order = nx.lexicographical_topological_sort(cell.graph)
    return {node: i * SPACING for i, node in enumerate(order)}


def _arc_height(span: int) -> float:
    """Signed apex height of an edge jumping over ``span`` positions: 0 for neighbours, then alternately
    above and below, growing with the span."""
    if span <= 1:
        return 0.0
    return (0.25 + 0.3 * (span // 2 if span % 2 == 0 else (span - 1) // 2)) * (1 if span % 2 == 0 else -1)


def _colours(ops: list[str]) -> dict[str, str]:
    names = sorted({op for op in ops if op != "none"})
    out = {op: _PALETTE[i % len(_PALETTE)] for i, op in enumerate(names)}
    out["none"] = _NONE_COLOUR
    return out


def _extent(cell: Cell) -> tuple[float, float, float]:
    """(width, lowest y, highest y) of a drawing in data units."""
    pos = node_positions(cell)
    heights = [_arc_height(round(abs(pos[d] - pos[s]) / SPACING)) for s, d, _ in cell.edges] or [0.0]
    return max(pos.values()) + 2 * RADIUS, min(min(heights), 0.0) - 0.45, max(max(heights), 0.0) + 0.35


def draw_cell(ax: Axes, cell: Cell, title: str) -> None:
    """Draw ``cell`` on the matplotlib axes ``ax`` (equal aspect, no frame), with ``title`` above it and the
    output rule (``output: concat(2, 3, 4, 5)``) below."""
    pos = node_positions(cell)
    colours = _colours(cell.ops())
    for src, dst, op in cell.edges:
        _draw_edge(ax, pos[src], pos[dst], op, colours[op])
    outputs = set(cell.output)
    for node, x in pos.items():
        is_input = node < cell.inputs
        face = "#e8eef7" if is_input else ("#ffcf8f" if node in outputs else "white")
        ax.add_patch(Circle((x, 0.0), RADIUS, facecolor=face, edgecolor="#333333", linewidth=1.2, zorder=3))
        ax.text(x, 0.0, f"in{node}" if is_input else str(node), ha="center", va="center", fontsize=8, zorder=4)
    width, low, high = _extent(cell)
    ax.set_xlim(-RADIUS - 0.3, width - RADIUS + 0.3)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9, pad=2)
    rule = f"output: {cell.combine}({', '.join(str(n) for n in cell.output)})"
    ax.text(width / 2 - RADIUS, low + 0.05, rule, ha="center", va="bottom", fontsize=7.5, color="#555555")


def _draw_edge(ax: Axes, x0: float, x1: float, op: str, colour: str) -> None:
    span = round(abs(x1 - x0) / SPACING)
    h = _arc_height(span)
    p0, p1 = np.array([x0, 0.0]), np.array([x1, 0.0])
    control = np.array([(x0 + x1) / 2, 2 * h])  # quadratic Bezier: the apex sits at height h
    start = p0 + RADIUS * _unit(control - p0) if h else p0 + RADIUS * _unit(p1 - p0)
    end = p1 + RADIUS * _unit(control - p1) if h else p1 - RADIUS * _unit(p1 - p0)
    path = Path([start, control, end], [Path.MOVETO, Path.CURVE3, Path.CURVE3]) if h else Path([start, end])
    dashed = op == "none"
    ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=9, color=colour,
                                 linewidth=0.9 if dashed else 1.4, linestyle="--" if dashed else "-", zorder=1))
    mid = 0.25 * start + 0.5 * control + 0.25 * end
    ax.text(mid[0], mid[1], op, ha="center", va="center", fontsize=7, color=colour, zorder=2,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.9})


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n else v


def _title(name: str, cell: Cell) -> str:
    extra = ", reduction" if cell.reduction else ""
    return f"{name} ({cell.family} cell{extra})"


def draw_architecture(arch: Architecture) -> Figure:
    """One figure with every cell of ``arch`` side by side, each as wide as its node count needs
    (``sequence`` cells that run an ``rnn`` cell show it as an edge ``cell:NAME``; the rnn cell is drawn too)."""
    cells = list(arch.cells.items())
    extents = [_extent(c) for _, c in cells]
    widths = [w + 0.6 for w, _, _ in extents]
    height = max(hi - lo for _, lo, hi in extents) + 0.45
    fig = Figure(figsize=(max(sum(widths), 3.0), height), dpi=100)
    grid = fig.add_gridspec(1, len(cells), width_ratios=widths, wspace=0.08, left=0.01, right=0.99, bottom=0.02,
                            top=1 - 0.3 / height)
    for i, (name, cell) in enumerate(cells):
        draw_cell(fig.add_subplot(grid[0, i]), cell, _title(name, cell))
    return fig
