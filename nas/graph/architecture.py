"""Graph-encoded architectures: plain, immutable, JSON-serialisable data.

An :class:`Architecture` is one or more named :class:`Cell` s plus macro settings (the skeleton the
compiler stacks the cells into). A cell is a DAG: nodes ``0 .. inputs-1`` are its inputs, every other
node sums the results of its incoming edges, and each edge ``(src, dst, op)`` applies the op named
``op`` from the cell's op family (see :mod:`nas.graph.ops`). The cell's output combines its ``output``
nodes by ``sum``, ``mean`` or ``concat`` (channel concatenation).

``canonical_hash()`` identifies architectures that compute the same function: it is invariant to
relabelling intermediate nodes, drops what cannot reach the output, treats ``zero`` ops and ops on
zero values as zero, ``identity`` ops (on stride-1 edges) as the identity, and node sums as
associative and commutative.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import networkx as nx

from nas.core.checks import is_int
from nas.core.errors import InvalidArchitectureError, UnknownNameError, did_you_mean

__all__ = ["Cell", "Architecture", "COMBINES", "FORMAT_VERSION", "FrozenMacro", "freeze_macro", "BUILDER_KEY",
           "DECISIONS_KEY", "INACTIVE_KEY", "KWARGS_KEY"]

FORMAT_VERSION = 1
COMBINES = ("sum", "mean", "concat")
#: macro keys of a define-by-run (builder) architecture, which has no cells (see :mod:`nas.graph.builder`)
BUILDER_KEY, DECISIONS_KEY, INACTIVE_KEY, KWARGS_KEY = "builder", "decisions", "inactive", "kwargs"
CELL_REF_PREFIX = "cell:"  # a sequence op that runs another (rnn) cell of the same architecture
_CELL_KEYS = ("family", "inputs", "nodes", "edges", "output", "combine", "fan_in", "reduction")
_ARCH_KEYS = ("format", "space", "cells", "macro")

Edge = tuple[int, int, str]


def _freeze(value: Any, where: str) -> Any:
    """JSON-like value -> hashable equivalent (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, where) for v in value)
    if isinstance(value, Mapping):
        return _FrozenMap(sorted((str(k), _freeze(v, where)) for k, v in value.items()))
    raise InvalidArchitectureError(
        f"{where}: value {value!r} of type {type(value).__name__} is not JSON data; use numbers, strings, lists"
    )


class _FrozenMap(tuple):
    """A frozen JSON object: sorted ``(key, value)`` pairs that thaw back into a dict."""


class FrozenMacro(tuple):
    """Macro settings already frozen by :func:`freeze_macro`; spaces build one per space and pass it to every
    architecture they create, which skips re-freezing (decoding is on the hot path of every strategy)."""


def freeze_macro(macro: Mapping[str, Any]) -> FrozenMacro:
    """Freeze macro settings once for reuse in many :class:`Architecture` constructions."""
    return FrozenMacro(_freeze(dict(macro), "macro"))


def _names_builder(frozen: FrozenMacro) -> bool:
    return any(key == BUILDER_KEY for key, _ in frozen)


def _active_macro(macro: dict[str, Any]) -> dict[str, Any]:
    """Macro settings as they determine the function: a builder architecture's ``inactive`` decisions (values
    the other choices leave unasked, see :mod:`nas.graph.builder`) are dropped."""
    inactive = macro.pop(INACTIVE_KEY, None)
    if BUILDER_KEY in macro and isinstance(inactive, list) and isinstance(macro.get(DECISIONS_KEY), dict):
        macro[DECISIONS_KEY] = {k: v for k, v in macro[DECISIONS_KEY].items() if k not in inactive}
    elif inactive is not None:
        macro[INACTIVE_KEY] = inactive
    return macro


def _thaw(value: Any) -> Any:
    if isinstance(value, _FrozenMap):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise InvalidArchitectureError(
                f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}; allowed keys: {', '.join(allowed)}")


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if not is_int(value) or value < minimum:
        raise InvalidArchitectureError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class Cell:
    """One cell DAG. Structural sanity (types, node ids in range) is checked on construction;
    semantic validity (acyclic, ops known, every node used) by :meth:`validate`.

    Attributes:
        family: op family of the edges (``conv``, ``sequence`` or ``rnn``).
        inputs: number of input nodes (ids ``0 .. inputs-1``).
        nodes: total number of nodes, inputs included.
        edges: ``(src, dst, op)`` triples, kept sorted by ``(dst, src)``; at most one edge per pair.
        output: the nodes combined into the cell's output.
        combine: ``sum``, ``mean`` or ``concat``.
        fan_in: if set, every non-input node must have exactly this many incoming edges.
        reduction: edges leaving input nodes are strided (the cell halves the resolution).
    """

    family: str
    inputs: int
    nodes: int
    edges: tuple[Edge, ...]
    output: tuple[int, ...]
    combine: str = "sum"
    fan_in: int | None = None
    reduction: bool = False

    def __post_init__(self) -> None:
        where = "cell"
        if not isinstance(self.family, str):
            raise InvalidArchitectureError(f"{where}: family must be a string, got {self.family!r}")
        _int(self.inputs, f"{where}: inputs", 1)
        _int(self.nodes, f"{where}: nodes", self.inputs + 1)
        if self.fan_in is not None:
            _int(self.fan_in, f"{where}: fan_in", 1)
        if not isinstance(self.reduction, bool):
            raise InvalidArchitectureError(f"{where}: reduction must be true or false, got {self.reduction!r}")
        edges: list[Edge] = []
        seen: set[tuple[int, int]] = set()
        for item in self.edges:
            if not isinstance(item, (list, tuple)) or len(item) != 3:
                raise InvalidArchitectureError(f"{where}: an edge must be [src, dst, op], got {item!r}")
            src, dst, op = item
            for name, v in (("src", src), ("dst", dst)):
                if not is_int(v) or not 0 <= v < self.nodes:
                    raise InvalidArchitectureError(
                        f"{where}: edge {item!r} has {name} {v!r}, not a node id in 0..{self.nodes - 1}"
                    )
            if not isinstance(op, str) or not op:
                raise InvalidArchitectureError(f"{where}: edge {src}->{dst} has op {op!r}; an op is a non-empty name")
            if src == dst:
                raise InvalidArchitectureError(f"{where}: edge {src}->{dst} is a self-loop (a cycle of length 1)")
            if (src, dst) in seen:
                raise InvalidArchitectureError(f"{where}: more than one edge {src}->{dst}; keep one edge per pair")
            seen.add((src, dst))
            edges.append((src, dst, op))
        object.__setattr__(self, "edges", tuple(sorted(edges, key=lambda e: (e[1], e[0]))))
        output = tuple(self.output)
        if not output:
            raise InvalidArchitectureError(f"{where}: output lists no node")
        for node in output:
            if not is_int(node) or not self.inputs <= node < self.nodes:
                raise InvalidArchitectureError(
                    f"{where}: output node {node!r} is not an intermediate node id in {self.inputs}..{self.nodes - 1}"
                )
        if len(set(output)) != len(output):
            raise InvalidArchitectureError(f"{where}: output {list(output)} repeats a node")
        object.__setattr__(self, "output", output)
        if self.combine not in COMBINES:
            raise InvalidArchitectureError(
                f"{where}: combine {self.combine!r} is not one of {', '.join(COMBINES)}"
                + did_you_mean(self.combine, COMBINES)
            )

    # -- views -------------------------------------------------------------------------------
    @cached_property
    def graph(self) -> nx.DiGraph:
        """The cell as a networkx DiGraph; edges carry the attribute ``op``. Do not mutate it."""
        g = nx.DiGraph()
        g.add_nodes_from(range(self.nodes))
        g.add_edges_from((s, d, {"op": op}) for s, d, op in self.edges)
        return g

    def in_edges(self, node: int) -> list[tuple[int, str]]:
        """``(src, op)`` of the edges entering ``node``, by ascending ``src``."""
        return [(s, op) for s, d, op in self.edges if d == node]

    def ops(self) -> list[str]:
        return [op for _, _, op in self.edges]

    def with_edges(self, edges: Iterable[Edge]) -> Cell:
        """A copy with other edges (everything else kept)."""
        return Cell(self.family, self.inputs, self.nodes, tuple(edges), self.output, self.combine,
                    self.fan_in, self.reduction)

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "inputs": self.inputs,
            "nodes": self.nodes,
            "edges": [list(e) for e in self.edges],
            "output": list(self.output),
            "combine": self.combine,
            "fan_in": self.fan_in,
            "reduction": self.reduction,
        }

    @classmethod
    def from_dict(cls, data: Any, name: str = "?") -> Cell:
        where = f"cell {name!r}"
        if not isinstance(data, Mapping):
            raise InvalidArchitectureError(f"{where}: expected an object with keys {', '.join(_CELL_KEYS)}")
        _check_keys(data, _CELL_KEYS, where)
        missing = [k for k in ("family", "inputs", "nodes", "edges", "output") if k not in data]
        if missing:
            raise InvalidArchitectureError(f"{where}: missing key(s) {', '.join(missing)}")
        if not isinstance(data["edges"], list) or not isinstance(data["output"], list):
            raise InvalidArchitectureError(f"{where}: edges and output must be lists")
        try:
            return cls(
                family=data["family"],
                inputs=data["inputs"],
                nodes=data["nodes"],
                edges=tuple(tuple(e) if isinstance(e, list) else e for e in data["edges"]),
                output=tuple(data["output"]),
                combine=data.get("combine", "sum"),
                fan_in=data.get("fan_in"),
                reduction=data.get("reduction", False),
            )
        except InvalidArchitectureError as err:
            raise InvalidArchitectureError(str(err).replace("cell:", f"{where}:", 1)) from None

    # -- validation ----------------------------------------------------------------------------
    def validate(self, name: str = "?", cell_names: Mapping[str, Cell] | None = None) -> None:
        """Raise :class:`InvalidArchitectureError` naming the cell, node or edge at fault: unknown family
        or op, a cycle, an input node with inputs, a node with no or the wrong number of inputs, a node
        unreachable from the inputs, or a dead end that reaches no output node."""
        # lazy: the op tables load torch (1,437 modules against 472); `import nas` and `nas --help` stay torch-free
        from nas.graph.ops import OP_TABLES

        where = f"cell {name!r}"
        try:
            table = OP_TABLES.get(self.family)
        except UnknownNameError as err:
            raise InvalidArchitectureError(f"{where}: {err}") from None
        for src, dst, op in self.edges:
            if op.startswith(CELL_REF_PREFIX) and self.family == "sequence":
                ref = op[len(CELL_REF_PREFIX):]
                target = (cell_names or {}).get(ref)
                if target is None or target.family != "rnn" or ref == name:
                    raise InvalidArchitectureError(
                        f"{where}: edge {src}->{dst} runs {op!r}, but the architecture has no other rnn cell {ref!r}"
                    )
                continue
            if op not in table:
                raise InvalidArchitectureError(
                    f"{where}: edge {src}->{dst} has unknown {self.family} op {op!r}"
                    + did_you_mean(op, table.names())
                    + f"; known: {', '.join(table.names())}"
                )
        g = self.graph
        if not nx.is_directed_acyclic_graph(g):
            cycle = nx.find_cycle(g)
            path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
            raise InvalidArchitectureError(f"{where}: has a cycle {path}; a cell must be a DAG")
        for node in range(self.inputs):
            preds = list(g.predecessors(node))
            if preds:
                raise InvalidArchitectureError(
                    f"{where}: input node {node} has incoming edge {preds[0]}->{node}; inputs take no edges"
                )
        for node in range(self.inputs, self.nodes):
            deg = g.in_degree(node)
            if deg == 0:
                raise InvalidArchitectureError(f"{where}: node {node} has no inputs (wrong number of inputs: 0)")
            if self.fan_in is not None and deg != self.fan_in:
                raise InvalidArchitectureError(
                    f"{where}: node {node} has {deg} inputs, the cell requires exactly {self.fan_in} (fan_in)"
                )
        reachable: set[int] = set(range(self.inputs))
        for node in range(self.inputs):
            reachable |= nx.descendants(g, node)
        for node in range(self.inputs, self.nodes):
            if node not in reachable:
                raise InvalidArchitectureError(f"{where}: node {node} is unreachable from the input nodes")
        useful: set[int] = set(self.output)
        for node in self.output:
            useful |= nx.ancestors(g, node)
        for node in range(self.inputs, self.nodes):
            if node not in useful:
                raise InvalidArchitectureError(
                    f"{where}: node {node} is a dead end: no path to the output nodes {list(self.output)}"
                )

    # -- canonical form --------------------------------------------------------------------------
    def canonical_form(self, cells: Mapping[str, Cell] | None = None) -> str:
        """A string equal for cells computing the same expression (see the module docstring).
        ``cells`` resolves ``cell:NAME`` ops, whose referenced cell is inlined into the form."""
        # lazy: the op tables load torch (1,437 modules against 472); `import nas` and `nas --help` stay torch-free
        from nas.graph.ops import OP_TABLES

        table = OP_TABLES.get(self.family)
        terms: dict[int, list[str]] = {i: [f"in{i}"] for i in range(self.inputs)}
        for node in nx.topological_sort(self.graph):
            if node < self.inputs:
                continue
            acc: list[str] = []
            for src, op in self.in_edges(node):
                spec = table.get(op) if op in table else None
                if spec is not None and spec.zero:
                    continue
                src_terms = terms[src]
                if not src_terms:  # any op applied to zero gives zero
                    continue
                strided = self.reduction and src < self.inputs
                if spec is not None and spec.identity and not strided:
                    acc.extend(src_terms)
                else:
                    tag = f"{op}/s2" if strided else op
                    if op.startswith(CELL_REF_PREFIX) and cells and op[len(CELL_REF_PREFIX):] in cells:
                        tag = "cell[" + cells[op[len(CELL_REF_PREFIX):]].canonical_form() + "]"
                    acc.append(f"{tag}({'+'.join(sorted(src_terms))})")
            terms[node] = sorted(acc)
        if self.combine == "sum":
            merged = sorted(t for node in self.output for t in terms[node])
            body = "+".join(merged) or "0"
        else:  # concat / mean: a multiset of per-node values (a zero node still counts)
            parts = sorted("+".join(terms[node]) or "0" for node in self.output)
            body = f"{self.combine}[{','.join(parts)}]"
        return f"{self.family}|{self.inputs}|{'r' if self.reduction else 'n'}|{body}"


class Architecture:
    """Immutable plain data: named cells and macro settings, tagged with the space it belongs to.

    ``Architecture.from_json(a.to_json()) == a`` and the JSON text round-trips exactly.
    """

    __slots__ = ("_cells", "_hash", "_json", "_macro", "_space")
    # the slots, set once in __init__ through object.__setattr__ (the hash lazily, by canonical_hash; the compact
    # JSON text lazily, by to_json: checkpoints, the store and pickling ask for it many times per architecture)
    _space: str
    _cells: tuple[tuple[str, Cell], ...]
    _macro: tuple[tuple[str, Any], ...]
    _hash: str | None
    _json: str | None

    def __init__(self, *, space: str, cells: Mapping[str, Cell],
                 macro: Mapping[str, Any] | FrozenMacro | None = None) -> None:
        if not isinstance(space, str) or not space:
            raise InvalidArchitectureError(f"space must be a non-empty string, got {space!r}")
        frozen = macro if isinstance(macro, FrozenMacro) else freeze_macro(macro or {})
        if not isinstance(cells, Mapping) or (not cells and not _names_builder(frozen)):
            raise InvalidArchitectureError("an architecture needs at least one cell (or a macro 'builder': a "
                                           "define-by-run model, see nas.graph.builder)")
        for name, cell in cells.items():
            if not isinstance(name, str) or not name:
                raise InvalidArchitectureError(f"cell names must be non-empty strings, got {name!r}")
            if not isinstance(cell, Cell):
                raise InvalidArchitectureError(f"cell {name!r} is a {type(cell).__name__}, not a Cell")
        object.__setattr__(self, "_space", space)
        object.__setattr__(self, "_cells", tuple(sorted(cells.items())))
        object.__setattr__(self, "_macro", tuple(frozen))
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "_json", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Architecture is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Architecture is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle and copy would restore the slots one by one through __setattr__; rebuild from JSON instead, through
        # a module-level function: cloudpickle (Ray) pickles a bound classmethod by value, the whole function's code
        # with every trial sent to a worker, but a module-level function by reference
        return (_from_json, (type(self), self.to_json()))

    @property
    def space(self) -> str:
        return self._space

    @property
    def cells(self) -> Mapping[str, Cell]:
        return MappingProxyType(dict(self._cells))

    @property
    def macro(self) -> dict[str, Any]:
        """Macro settings as plain JSON data (a fresh copy: changing it changes nothing here)."""
        return {k: _thaw(v) for k, v in self._macro}

    def cell(self, name: str) -> Cell:
        for key, cell in self._cells:
            if key == name:
                return cell
        raise UnknownNameError("cell", name, [k for k, _ in self._cells])

    def replace(self, *, space: str | None = None, cells: Mapping[str, Cell] | None = None,
                macro: Mapping[str, Any] | None = None) -> Architecture:
        """A copy with some parts replaced."""
        return Architecture(
            space=self._space if space is None else space,
            cells=self.cells if cells is None else cells,
            macro=self.macro if macro is None else macro,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return (self._space, self._cells, self._macro) == (other._space, other._cells, other._macro)

    def __hash__(self) -> int:
        return hash((self._space, self._cells, self._macro))

    def __repr__(self) -> str:
        ops = "; ".join(f"{name}: " + ",".join(f"{s}>{d}:{op}" for s, d, op in c.edges) for name, c in self._cells)
        return f"Architecture(space={self._space!r}, {ops})"

    # -- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "space": self._space,
            "cells": {name: cell.to_dict() for name, cell in self._cells},
            "macro": self.macro,
        }

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON text (sorted keys); the compact text (``indent=None``) is made once and kept."""
        if indent is not None:
            return json.dumps(self.to_dict(), sort_keys=True, indent=indent)
        text = self._json
        if text is None:
            text = json.dumps(self.to_dict(), sort_keys=True)
            object.__setattr__(self, "_json", text)
        return text

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        if not isinstance(data, Mapping):
            raise InvalidArchitectureError(
                f"architecture JSON must be an object with keys {', '.join(_ARCH_KEYS)}, got {type(data).__name__}"
            )
        _check_keys(data, _ARCH_KEYS, "architecture")
        version = data.get("format", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InvalidArchitectureError(
                f"architecture format {version!r} is not supported; this version reads format {FORMAT_VERSION}"
            )
        for key in ("space", "cells"):
            if key not in data:
                raise InvalidArchitectureError(f"architecture: missing key {key!r}")
        macro = data.get("macro", {})
        if not isinstance(macro, Mapping):
            raise InvalidArchitectureError(f"architecture: 'macro' must be an object, got {macro!r}")
        if not isinstance(data["cells"], Mapping) or (not data["cells"] and BUILDER_KEY not in macro):
            raise InvalidArchitectureError("architecture: 'cells' must be a non-empty object of named cells")
        cells = {name: Cell.from_dict(c, name) for name, c in data["cells"].items()}
        return cls(space=data["space"], cells=cells, macro=macro)

    @classmethod
    def from_json(cls, text: str | bytes) -> Architecture:
        """Parse JSON text; malformed text raises :class:`InvalidArchitectureError` with line and column."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidArchitectureError(
                f"malformed architecture JSON at line {err.lineno} column {err.colno}: {err.msg}"
            ) from None
        except (TypeError, UnicodeDecodeError) as err:
            raise InvalidArchitectureError(f"architecture JSON must be text: {err}") from None
        return cls.from_dict(data)

    # -- semantics ---------------------------------------------------------------------------------
    def validate(self) -> Architecture:
        """Check every cell (see :meth:`Cell.validate`); returns self so calls can chain."""
        cells = dict(self._cells)
        for name, cell in self._cells:
            cell.validate(name, cells)
        return self

    def canonical_hash(self) -> str:
        """Hex SHA-256 of the canonical form: equal for architectures computing the same function.

        The space tag is provenance and does not enter the hash; macro settings and every cell's
        canonical form do.
        """
        digest = self._hash
        if digest is None:
            cells = dict(self._cells)
            payload = {
                # rnn cells run only inside the sequence cells that reference them, where they are inlined
                "cells": {name: cell.canonical_form(cells) for name, cell in self._cells if cell.family != "rnn"},
                "macro": _active_macro(self.macro),
            }
            text = json.dumps(payload, sort_keys=True)
            digest = hashlib.sha256(text.encode()).hexdigest()
            object.__setattr__(self, "_hash", digest)
        return digest


def _from_json(cls: type[Architecture], text: str) -> Architecture:
    """``cls.from_json(text)``: what an :class:`Architecture` pickles to (see ``Architecture.__reduce__``)."""
    return cls.from_json(text)
