"""nasgraph: neural architecture search on graph-encoded cells.

The public API. Heavy pieces (torch, the compiler, the search loop) are imported on first use, so ``import nas``
stays light.
"""

from __future__ import annotations

from typing import Any

from nas.core.errors import ConfigError, InvalidArchitectureError, NASError, ShapeError, UnknownNameError
from nas.core.version import __version__
from nas.graph.architecture import Architecture, Cell

__all__ = [
    "Architecture",
    "Cell",
    "build_model",
    "references",
    "NASError",
    "InvalidArchitectureError",
    "UnknownNameError",
    "ShapeError",
    "ConfigError",
    "load_model",
    "load_experiment",
    "search",
    "train_reference",
    "Experiment",
    "load_config",
    "register_strategy",
    "register_space",
    "register_task",
    "register_metric",
    "register_evaluator",
    "register_op",
    "__version__",
]

#: the public registration functions, by name -> the module defining them (imported on first use)
_REGISTRATION = {
    "register_strategy": "strategies.registry",
    "register_space": "search_spaces.registry",
    "register_task": "nas.evaluation.tasks",
    "register_metric": "nas.evaluation.metrics",
    "register_evaluator": "nas.evaluation.evaluators",
    "register_op": "nas.graph.ops",
}


def __getattr__(name: str) -> Any:
    if name == "build_model":
        # lazy: the compiler loads torch (1,439 modules against 470); `import nas` stays torch-free
        from nas.graph.compiler import build_model

        return build_model
    if name in _REGISTRATION:
        import importlib

        return getattr(importlib.import_module(_REGISTRATION[name]), name)
    if name in ("load_model", "load_experiment"):
        import importlib

        return getattr(importlib.import_module("nas.outputs.loading"), name)
    if name in ("search", "load_config", "train_reference"):
        import importlib

        return getattr(importlib.import_module("nas.runtime.api"), name)
    if name == "Experiment":
        import importlib

        return importlib.import_module("nas.runtime.experiment").Experiment
    if name == "references":
        # not `from nas import references`: that looks the attribute up on this module first and recurses
        import importlib

        return importlib.import_module("nas.graph.references")
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
