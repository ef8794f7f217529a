"""The report's figures, drawn with matplotlib's object API (no pyplot, no global state) and embedded as PNG.

Every function takes plain numbers and returns a :class:`~matplotlib.figure.Figure`; :func:`png_data_uri`
turns one into a ``data:`` URI for an ``<img>`` tag, so the report needs no file beside it.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

__all__ = ["png_data_uri", "pareto_front", "best_so_far", "best_so_far_figure", "tradeoff_figure", "bar_figure",
           "supernet_figure"]

BEST = "#d62728"
POINT = "#1f77b4"
FRONT = "#ff7f0e"


def png_data_uri(fig: Figure, dpi: int = 100) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (the figure is not kept)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def best_so_far(scores: Sequence[float | None]) -> list[float]:
    """Running maximum of ``scores`` in order; ``None`` (a trial without a score) keeps the previous best
    (``nan`` before the first score)."""
    out: list[float] = []
    best = float("nan")
    for s in scores:
        if s is not None and (np.isnan(best) or s > best):
            best = float(s)
        out.append(best)
    return out


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates (lower or equal cost and higher or equal score, one of
    them strictly), ordered by cost. Of points equal in both, the first is kept."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i], i))
    front: list[int] = []
    best = -np.inf
    for i in order:
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front


def best_so_far_figure(scores: Sequence[float | None], seconds: Sequence[float], score_label: str) -> Figure:
    """Two panels: the best score so far against the number of finished trials and against wall time.
    ``scores`` and ``seconds`` are per finished trial in completion order (``None`` for a trial without score)."""
    fig = Figure(figsize=(10, 3.4), dpi=100)
    axes = fig.subplots(1, 2)
    best = best_so_far(scores)
    n = np.arange(1, len(scores) + 1)
    done = [i for i, s in enumerate(scores) if s is not None]
    done_scores = [s for s in scores if s is not None]
    for ax, x, xlabel in ((axes[0], n, "finished trials"), (axes[1], np.asarray(seconds), "wall time (s)")):
        ax.scatter([x[i] for i in done], done_scores, s=12, color=POINT, alpha=0.45,
                   label="trial score")
        ax.step(x, best, where="post", color=BEST, linewidth=2, label="best so far")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(score_label)
        ax.grid(alpha=0.3)
    _fit_ylim(axes, done_scores)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _fit_ylim(axes: Iterable[Axes], values: Sequence[float]) -> None:
    """Show the upper part of the score range (where the best trials are) when a few scores are far below."""
    if len(values) < 4:
        return
    lo, hi = float(np.percentile(values, 10)), float(max(values))
    if hi > lo:
        pad = 0.08 * (hi - lo)
        for ax in axes:
            ax.set_ylim(lo - pad, hi + 2 * pad)  # room for labels at the top


def tradeoff_figure(panels: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[str]]],
                    score_label: str) -> Figure:
    """One panel per cost, each ``(cost name, costs, scores, labels)`` with one entry per trial: every trial as
    score against cost, the Pareto front (higher score, lower cost) marked and joined, and each non-empty label
    (e.g. ``#1`` for the best trials) written next to its point. A cost spanning more than 20x is on a log axis."""
    fig = Figure(figsize=(4.6 * len(panels) + 0.6, 3.8), dpi=100)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    all_scores: list[float] = []
    for ax, (name, costs, scores, labels) in zip(axes, panels):
        all_scores += list(scores)
        ax.scatter(costs, scores, s=14, color=POINT, alpha=0.5, label="trial")
        front = pareto_front(costs, scores)
        ax.step([costs[i] for i in front], [scores[i] for i in front], where="post", color=FRONT, linewidth=1.2)
        ax.scatter([costs[i] for i in front], [scores[i] for i in front], s=40, facecolors="none",
                   edgecolors=FRONT, linewidths=1.6, label=f"Pareto front ({len(front)})")
        marked = _merged_labels(costs, scores, labels)
        if marked:
            ax.scatter([x for x, _ in marked], [y for _, y in marked], s=22, marker="*", color=BEST, zorder=3,
                       label="best trials")
        for j, ((x, y), text) in enumerate(sorted(marked.items())):  # staggered so that close labels do not collide
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 3 + 8 * (j % 3)), fontsize=7, color=BEST)
        positive = [c for c in costs if c > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_xscale("log")
        elif positive and max(positive) >= 1e4:  # counts (parameters, FLOPs): 20k, 1.5M
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.margins(x=0.1, y=0.08)
        ax.set_xlabel(name)
        ax.set_ylabel(score_label)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    _fit_ylim(axes, all_scores)
    fig.tight_layout()
    return fig


def _merged_labels(xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]) -> dict[tuple[float, float], str]:
    """Non-empty labels by point; labels of points at the same place are joined (``#1,#2``)."""
    merged: dict[tuple[float, float], list[str]] = {}
    for x, y, label in zip(xs, ys, labels):
        if label:
            merged.setdefault((x, y), []).append(label)
    return {point: ",".join(texts) for point, texts in merged.items()}


def bar_figure(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str,
               title: str) -> Figure:
    """Horizontal bars, one group per label (top to bottom in the given order), one bar per series."""
    height = 0.8 / max(len(series), 1)
    fig = Figure(figsize=(6.2, 0.9 + 0.28 * len(labels) * max(1, len(series)) ** 0.5), dpi=100)
    ax = fig.subplots()
    y = np.arange(len(labels))[::-1]
    colours = (BEST, POINT, FRONT)
    for k, (name, values) in enumerate(series):
        ax.barh(y + (len(series) - 1 - 2 * k) * height / 2, values, height=height, color=colours[k % 3],
                label=name, alpha=0.85)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def supernet_figure(history: Sequence[dict[str, float]], alphas: Mapping[str, Sequence[Sequence[float]]],
                    slots: Mapping[str, Sequence[str]], threshold: float) -> Figure:
    """A one-shot search: accuracies per epoch, the collapse signals (parameter-free share of the derived cell,
    normalised entropy of the op weights) per epoch against the guard's threshold, and the final op weights
    ``softmax(alpha)`` of every slot (rows: edges, columns: ops)."""
    epochs = [h["epoch"] + 1 for h in history]
    fig = Figure(figsize=(12, 3.4 + 0.25 * sum(len(a) for a in alphas.values()) / max(len(alphas), 1)), dpi=100)
    grid = fig.add_gridspec(1, 2 + len(alphas), width_ratios=[1.2, 1.2] + [1.0] * len(alphas))
    ax = fig.add_subplot(grid[0, 0])
    ax.plot(epochs, [h["train_acc"] for h in history], color=POINT, label="weights half (train)")
    ax.plot(epochs, [h["search_val_acc"] for h in history], color=BEST, label="architecture half")
    ax.set_xlabel("epoch")
    ax.set_ylabel("supernet accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(grid[0, 1])
    ax.plot(epochs, [h["param_free_share"] for h in history], color=BEST, label="parameter-free share")
    ax.plot(epochs, [h["entropy"] for h in history], color=POINT, label="op-weight entropy")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="guard threshold")
    warned = [h["epoch"] + 1 for h in history if "warning" in h]
    if warned:
        ax.scatter(warned, [1.02] * len(warned), marker="v", color=FRONT, s=18, label="collapse warning")
    ax.set_ylim(-0.02, 1.06)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    for k, (name, values) in enumerate(alphas.items()):
        a = np.asarray(values, dtype=np.float64)
        p = np.exp(a - a.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        ax = fig.add_subplot(grid[0, 2 + k])
        ax.imshow(p, aspect="auto", cmap="Reds", vmin=float(p.min()), vmax=max(float(p.max()), float(p.min()) + 1e-9))
        if p.size <= 64:  # small enough to print the weights
            for (r, c), v in np.ndenumerate(p):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v > (p.min() + p.max()) / 2 else "black")
        ops = list(slots.get(name, [str(i) for i in range(a.shape[1])]))
        ax.set_xticks(range(len(ops)), ops, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(a.shape[0]), [str(i) for i in range(a.shape[0])], fontsize=7)
        ax.set_ylabel("edge (row)", fontsize=8)
        ax.set_title(f"{name}: softmax(alpha)", fontsize=9)
    fig.tight_layout()
    return fig
