"""Tasks named by a Python function: ``evaluator.task: "package.module:function"``.

The function returns ``(x, y)`` numpy arrays (images ``(N, C, H, W)``, sequences ``(N, T, F)``, tabular ``(N, F)``;
``y`` class labels ``(N,)`` or regression targets ``(N,)`` / ``(N, targets)``); :func:`nas.evaluation.tasks.load_task`
splits, standardises and checks them exactly as it does the ``npz`` task. Task options that ``load_task`` does not
take are passed to the function as keyword arguments. The module is imported by
:func:`nas.core.references.import_reference` (``module_dir``, the folder of the experiment's config filled in by the
config loader, goes on ``sys.path``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from nas.core.errors import ConfigError, did_you_mean
from nas.core.references import import_reference, is_reference

__all__ = ["is_function_task", "import_function", "check_function_args"]



def is_function_task(name: str) -> bool:
    """Whether a task name is a ``package.module:function`` reference (registered task names hold no ``:``)."""
    return is_reference(name)


def import_function(spec: str, module_dir: str | None = None) -> Callable[..., Any]:
    """The function ``spec`` (``package.module:function``) names, imported by
    :func:`nas.core.references.import_reference` with ``module_dir`` as the folder beside the config;
    :class:`ConfigError` saying why when the name is malformed, the module cannot be imported (or raises on
    import), or the attribute is missing or not callable."""
    return import_reference(spec, field="evaluator.task", folders=[module_dir] if module_dir else [],
                            expect="a function returning (x, y)")


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
