"""Tasks named by a Python function: ``evaluator.task: "package.module:function"``.

The function returns ``(x, y)`` numpy arrays (images ``(N, C, H, W)``, sequences ``(N, T, F)``, tabular ``(N, F)``;
``y`` class labels ``(N,)`` or regression targets ``(N,)`` / ``(N, targets)``); :func:`nas.evaluation.tasks.load_task`
splits, standardises and checks them exactly as it does the ``npz`` task. Task options that ``load_task`` does not
take are passed to the function as keyword arguments. The module is imported from ``sys.path`` first, then from
``module_dir`` (the folder of the experiment's config, filled in by the config loader).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["is_function_task", "import_function", "check_function_args"]

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_function_task(name: str) -> bool:
    """Whether a task name is a ``package.module:function`` reference (registered task names hold no ``:``)."""
    return isinstance(name, str) and ":" in name


def _module_file(module: str, module_dir: str) -> Path | None:
    top = Path(module_dir) / module.split(".")[0]
    for candidate in (top.with_suffix(".py"), top / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_function(spec: str, module_dir: str | None = None) -> Callable[..., Any]:
    """The function ``spec`` (``package.module:function``) names; :class:`ConfigError` saying why when the name is
    malformed, the module cannot be imported (or raises on import), or the attribute is missing or not callable."""
    if not _SPEC.match(spec):
        raise ConfigError(f"evaluator.task = {spec!r}: a task function is named 'package.module:function' "
                          "(a module importable from sys.path or the config's folder, then a function in it)")
    module_name, func_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if module_dir is None or err.name != module_name.split(".")[0] or _module_file(module_name, module_dir) is None:
            where = f" or in {module_dir}" if module_dir else ""
            raise ConfigError(f"evaluator.task = {spec!r}: module {module_name!r} cannot be imported ({err}); put "
                              f"it on sys.path (PYTHONPATH){where} next to the config") from None
        sys.path.insert(0, str(Path(module_dir).resolve()))
        try:
            module = importlib.import_module(module_name)
        except Exception as inner:
            raise ConfigError(f"evaluator.task = {spec!r}: importing module {module_name!r} from {module_dir} "
                              f"failed with {type(inner).__name__}: {inner}") from None
        finally:
            sys.path.remove(str(Path(module_dir).resolve()))
    except Exception as err:  # the user's module raised on import
        raise ConfigError(f"evaluator.task = {spec!r}: importing module {module_name!r} failed with "
                          f"{type(err).__name__}: {err}") from None
    func = getattr(module, func_name, None)
    if func is None:
        public = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise ConfigError(f"evaluator.task = {spec!r}: module {module_name!r} has no function {func_name!r}"
                          + did_you_mean(func_name, public))
    if not callable(func):
        raise ConfigError(f"evaluator.task = {spec!r}: {func_name!r} in {module_name!r} is a "
                          f"{type(func).__name__}, not a function returning (x, y)")
    return func


def check_function_args(spec: str, func: Callable[..., Any], args: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Refuse task options ``func`` cannot take as keyword arguments (naming the option, the close match among
    ``func``'s parameters and ``known`` load options, and the fix)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    try:
        signature.bind(**args)
    except TypeError as err:
        params = [p for p in signature.parameters if p not in ("self", "cls")]
        bad = next((k for k in args if k not in signature.parameters), None)
        hint = did_you_mean(bad, [*params, *known]) if bad else ""
        raise ConfigError(f"evaluator.task_options: {spec} cannot take {dict(args)} as keyword arguments ({err})"
                          + hint + f"; task options are {', '.join(known)} plus the function's parameters "
                          f"({', '.join(params) or 'none'})") from None
