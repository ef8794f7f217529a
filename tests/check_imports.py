"""Imports sit at the top of a module unless an import-time cost is measured (the import rule's second half; the
first half, the layers, is checked by ``lint-imports`` from the contracts in ``setup.cfg``).

Checked over the library (the ``root_packages`` of ``[importlinter]`` in ``setup.cfg``):

* an import of the library's own modules inside a function or method must state why, in a comment on the import
  statement or on the line right above it: ``# lazy: <the measured reason>`` (e.g. "``nas --help`` stays
  torch-free: 0.2 s instead of 1.5 s"), or be listed in :data:`ALLOWED` with that reason. An import that only
  breaks a cycle is not a reason: the layers leave no cycle to break.
* an import of a heavy third-party package (:data:`HEAVY`) inside a function is how a heavy backend is loaded
  lazily, so it is allowed, unless the module already imports that package at its top, where it only adds noise.
* no library module imports the root package ``nas`` (its lazy re-exports reach every layer): import from the
  module that defines the name.

Run ``python tests/check_imports.py`` (``make lint`` does): one line per problem and exit status 1, or 0.
``--list`` prints every function-level import of an internal or heavy module with its verdict.
"""

from __future__ import annotations

import ast
import configparser
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Third-party packages whose import is costly enough to defer (cumulative import time on the reference machine).
HEAVY = frozenset({"torch", "torchvision", "ray", "optuna", "matplotlib", "sklearn", "scipy", "pandas", "onnx",
                   "onnxruntime", "onnxscript", "mlxtend", "mnist1d", "aeon", "pyarrow", "captum",
                   "shap"})

#: Function-level internal imports allowed without a comment: (file, imported module or "*") -> the measured reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("nas/cli.py", "*"): "each command imports only what it runs: `nas --help` imports 470 modules in 0.19 s "
                         "with neither torch nor ray; `nas search` needs both (1.5 s for torch alone)",
}

MARK = "# lazy:"


@dataclass(frozen=True)
class LateImport:
    """One import statement inside a function: where, what, and the reason given for it (or None)."""

    path: str
    line: int
    module: str
    internal: bool
    reason: str | None


def library_packages(setup_cfg: Path = ROOT / "setup.cfg") -> tuple[str, ...]:
    """The library's root packages, read from ``[importlinter] root_packages`` (written once, there)."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    return tuple(parser["importlinter"]["root_packages"].split())


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Absolute names of the modules ``node`` imports (relative imports resolved against ``package``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        return [".".join([*base, node.module] if node.module else base)]
    return [node.module or ""]


def _reason(lines: list[str], node: ast.stmt) -> str | None:
    """The text after ``# lazy:`` on the statement's lines or on a comment line right above it."""
    candidates = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
    above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
    if above.startswith("#"):
        candidates.insert(0, above)
    for text in candidates:
        if MARK in text:
            return text.split(MARK, 1)[1].strip() or None
    return None


def _walk(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it sits inside a function (``if TYPE_CHECKING:`` blocks never run)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        elif isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            yield from _walk(ast.Module(body=child.orelse, type_ignores=[]), in_function)
        else:
            yield from _walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                                                     | ast.Lambda))


def scan(root: Path = ROOT, packages: tuple[str, ...] | None = None) -> tuple[list[LateImport], list[str]]:
    """The function-level imports of internal or heavy modules under ``root``, and the problems found."""
    packages = packages or library_packages(root / "setup.cfg")
    late: list[LateImport] = []
    problems: list[str] = []
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            dotted = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            source = file.read_text()
            lines = source.splitlines()
            is_package = file.name == "__init__.py"
            top_heavy: set[str] = set()
            found: list[tuple[ast.Import | ast.ImportFrom, str]] = []
            for node, in_function in _walk(ast.parse(source, rel)):
                for module in _imported(node, dotted if is_package else dotted.rpartition(".")[0]):
                    head = module.split(".")[0]
                    if module == "nas" and rel != "nas/__init__.py" and _reason(lines, node) is None:
                        problems.append(f"{rel}:{node.lineno}: imports the root package `nas`; import the name "
                                        "from the module that defines it")
                    if not in_function:
                        if head in HEAVY:
                            top_heavy.add(head)
                    elif head in packages or head in HEAVY:
                        found.append((node, module))
            for node, module in found:
                head = module.split(".")[0]
                item = LateImport(rel, node.lineno, module, head in packages, _reason(lines, node))
                late.append(item)
                if not item.internal:
                    if head in top_heavy:
                        problems.append(f"{rel}:{node.lineno}: `{module}` is imported at the top already; "
                                        "drop this import")
                elif item.reason is None and not (
                        (rel, module) in ALLOWED or (rel, "*") in ALLOWED):
                    problems.append(f"{rel}:{node.lineno}: `{module}` is imported inside a function; move it to "
                                    f"the top of the module, or state the measured import-time cost as "
                                    f"`{MARK} <reason>` on the import")
    return late, problems


def main(argv: list[str]) -> int:
    late, problems = scan()
    if "--list" in argv:
        for item in late:
            verdict = ("heavy, deferred" if not item.internal else item.reason
                       or ALLOWED.get((item.path, item.module)) or ALLOWED.get((item.path, "*"))
                       or "UNJUSTIFIED")
            print(f"{item.path}:{item.line}: {item.module}: {verdict}")
        print(f"{len(late)} function-level imports ({sum(i.internal for i in late)} internal)")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
