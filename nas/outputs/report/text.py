"""Text views of an experiment's best trials: one-line cell summaries and the terminal top-K table.

Shared by ``nas status`` (terminal) and the HTML report (its top-K table), so both describe a cell the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nas.graph.architecture import BUILDER_KEY, DECISIONS_KEY, INACTIVE_KEY, Architecture, Cell

__all__ = ["abbreviate_op", "cell_summary", "format_metric", "format_top_table", "top_columns", "TOP_COLUMNS"]

# (pattern, replacement) applied in order; the first that matches wins
_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    (r"^skip_connect$", "skip"),
    (r"^nor_conv_(\d)x\1$", r"c\1"),
    (r"^conv_(\d)x\1$", r"conv\1"),
    (r"^sep_conv_(\d)x\1$", r"sep\1"),
    (r"^dil_conv_(\d)x\1$", r"dil\1"),
    (r"^(max|avg)_pool_(\d)x\2$", r"\1\2"),
    (r"^mhsa_(\d+)$", r"att\1"),
    (r"^conv1d_(\d+)$", r"c1d\1"),
    (r"^factorized_reduce$", "fr"),
    (r"^conv_7x1_1x7$", "c7x1"),
    (r"^identity$", "id"),
    (r"^sigmoid$", "sig"),
)


def abbreviate_op(op: str) -> str:
    """A short name for an op (``nor_conv_3x3`` -> ``c3``, ``sep_conv_5x5`` -> ``sep5``); unknown ops unchanged."""
    for pattern, repl in _ABBREVIATIONS:
        if re.match(pattern, op):
            return re.sub(pattern, repl, op)
    return op


def _cell_text(cell: Cell) -> str:
    """``1=c1(0) 2=skip(0)+c3(1)``: each non-input node with the ops feeding it; ``none`` edges left out."""
    parts = []
    for node in range(cell.inputs, cell.nodes):
        ins = [f"{abbreviate_op(op)}({src})" for src, op in cell.in_edges(node) if op != "none"]
        parts.append(f"{node}=" + ("+".join(ins) if ins else "0"))
    return " ".join(parts)


def cell_summary(arch: Architecture) -> str:
    """One line describing every cell of ``arch`` plus the macro choices a search can make.

    Contract: a non-input node ``n`` fed by ``op`` from node ``s`` reads ``n=op(s)``; several inputs are joined
    by ``+``; a node fed only by ``none`` edges reads ``n=0``. Cells are separated by `` | `` and prefixed with
    their name when the architecture has more than one; a define-by-run model shows its active decisions
    (``depth=2 width_1=64``); a positional encoding other than ``none`` and searched
    training hyperparameters (macro ``hparams``) follow at the end.
    """
    cells = arch.cells
    texts = [(f"{name}: " if len(cells) > 1 else "") + _cell_text(cell) for name, cell in cells.items()]
    macro = arch.macro
    decisions = macro.get(DECISIONS_KEY)
    if BUILDER_KEY in macro and isinstance(decisions, Mapping):  # a define-by-run model: its active decisions
        inactive = macro.get(INACTIVE_KEY) or []
        texts.append(" ".join(f"{k}={v}" for k, v in decisions.items() if k not in inactive) or "fixed model")
    pe = macro.get("pos_encoding")
    if isinstance(pe, str) and pe != "none":
        texts.append(pe)
    hparams = macro.get("hparams")
    if isinstance(hparams, Mapping) and hparams:
        texts.append(" ".join(f"{k}={v}" for k, v in sorted(hparams.items())))
    return " | ".join(texts)


def format_metric(value: Any, kind: str) -> str:
    """A metric for display: ``count`` (params: ``33,714``), ``flops`` (``1.2M``), ``acc`` (``98.14``),
    ``ms`` (``1.23``), ``s`` (``4.1``), ``int``, ``score`` (like ``acc``, ``1.5e+30`` when huge, as proxy
    scores are); missing or non-finite values become ``-``."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "flops":
        for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{unit}"
        return f"{value:.0f}"
    if kind == "int":
        return f"{value:.0f}"
    if kind == "s":
        return f"{value:.1f}"
    if kind == "score" and abs(value) >= 1e5:
        return f"{value:.3g}"
    return f"{value:.2f}"


#: Columns of the top-K tables: (header, metric key or "score", display kind).
TOP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("score", "score", "score"),
    ("test", "test_acc", "acc"),
    ("test f1", "test_f1_macro", "score"),
    ("test auroc", "test_auroc", "score"),
    ("test rmse", "test_rmse", "score"),
    ("fid", "fid", "score"),
    ("density", "density", "score"),
    ("coverage", "coverage", "score"),
    ("test mae", "test_mae", "score"),
    ("test r2", "test_r2", "score"),
    ("params", "params", "count"),
    ("FLOPs", "flops", "flops"),
    ("lat ms", "latency_ms", "ms"),
    ("epochs", "epochs", "int"),
    ("train s", "train_seconds", "s"),
)


def score_metric(trials: Sequence[Any]) -> tuple[str, str] | None:
    """``(metric, direction)`` of the score, as the train evaluator records it in a result's ``info`` (the first
    trial saying so); None when no trial says (other evaluators, or results of an older version: accuracy)."""
    for t in trials:
        info = getattr(t, "info", None) or {}
        if "metric" in info and info.get("direction") in ("max", "min"):
            return str(info["metric"]), str(info["direction"])
    return None


def score_header(trials: Sequence[Any], default: str = "val") -> str:
    """Short header of the score column: ``default`` for accuracy (or when unknown), the metric's name when it is
    maximised, ``-name`` when it is minimised (the score is then the negated metric)."""
    metric = score_metric(trials)
    if metric is None or metric[0] == "accuracy":
        return default
    return metric[0] if metric[1] == "max" else f"-{metric[0]}"


def _value(trial: Any, key: str) -> Any:
    return trial.score if key == "score" else trial.metrics.get(key)


def top_columns(rows: Sequence[Any], score_header: str = "score") -> list[tuple[str, str, str]]:
    """The :data:`TOP_COLUMNS` with a value in at least one of ``rows``, the score column headed ``score_header``."""
    return [(score_header if key == "score" else header, key, kind) for header, key, kind in TOP_COLUMNS
            if any(format_metric(_value(t, key), kind) != "-" for t in rows)]


def format_top_table(ranked: Sequence[Any], top: int = 5, width: int | None = None,
                     score_header: str = "score") -> str:
    """The best ``top`` of ``ranked`` (store trials, best first) as a fixed-width text table with a one-line
    :func:`cell_summary` per trial. Columns with no value in any shown row are left out. ``width`` cuts each
    line to that many characters (ending in ``...``); ``None`` keeps whole lines."""
    if not ranked:
        return "no completed trial"
    rows = list(ranked[:top])
    columns = top_columns(rows, score_header)
    header = f"{'rank':>4} {'trial':>5} " + " ".join(f"{h:>{_WIDTHS[k]}}" for h, k, _ in columns) + "  cell"
    lines = [header]
    for i, t in enumerate(rows, start=1):
        values = " ".join(f"{format_metric(_value(t, k), kind):>{_WIDTHS[k]}}" for _, k, kind in columns)
        lines.append(f"{i:>4} {t.id:>5} {values}  {cell_summary(t.arch)}")
    if width is not None:
        lines = [line if len(line) <= width else line[: max(width - 3, 0)] + "..." for line in lines]
    return "\n".join(lines)


_WIDTHS = {"score": 7, "test_acc": 7, "test_f1_macro": 7, "test_auroc": 10, "test_rmse": 9, "test_mae": 8,
           "test_r2": 7, "params": 10, "flops": 7, "latency_ms": 7, "epochs": 6, "train_seconds": 7,
           "fid": 8, "density": 7, "coverage": 8}
