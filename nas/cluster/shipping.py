"""The code a Ray cluster needs, shipped with a Ray runtime environment (``py_modules``).

A cluster's nodes need Ray, Python and the third-party packages (torch, numpy, ...) of the driver's versions; this
package and the user's own modules they get from the driver: Ray uploads each listed package directory (or
single-file module) to the cluster once, content-addressed, and puts it on the ``sys.path`` of every worker the
search starts. ``execution.ship_code`` decides when (:func:`should_ship`): ``auto`` ships when the search
connects to an existing cluster (``execution.address``, or a multi-node cluster the caller connected to);
``always`` also on a local cluster; ``never`` leaves it to the nodes (the package installed on each).

Shipped: the packages ``nas``, ``search_spaces`` and ``strategies``; the modules that define the experiment's
components when they are the user's (:func:`user_modules`: a task, evaluator, space or strategy registered
from a module outside the installed packages, e.g. ``my_tasks.py`` beside the config); the modules named in
``execution.py_modules``. ``execution.runtime_env`` is a Ray runtime environment of the user's (``pip``,
``env_vars``, ...), merged with ours (its ``py_modules`` and ``excludes`` added to ours) and passed to Ray as is.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["SHIP_CODE", "FRAMEWORK", "RUNTIME_ENV_FIELDS", "should_ship", "module_path", "user_modules",
           "check_py_modules", "check_runtime_env", "code_runtime_env", "uploaded"]

#: the values of ``execution.ship_code``
SHIP_CODE = ("auto", "always", "never")
#: this framework's top-level packages, shipped whole
FRAMEWORK = ("nas", "search_spaces", "strategies")
#: the fields of a Ray runtime environment a user may give (``ray.runtime_env.RuntimeEnv``, public ones)
RUNTIME_ENV_FIELDS = ("conda", "config", "container", "env_vars", "excludes", "image_uri", "java_jars", "pip",
                      "py_executable", "py_modules", "uv", "worker_process_setup_hook", "working_dir")
#: files no worker needs
EXCLUDES = ("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def should_ship(mode: str, *, address: str | None, joined_nodes: int | None) -> bool:
    """Whether to ship the code: ``mode`` is ``execution.ship_code``; ``address`` the cluster the search connects
    to (None: a local cluster it starts); ``joined_nodes`` the live nodes of a cluster the caller had already
    connected to (None: the search connects itself)."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return address is not None or (joined_nodes is not None and joined_nodes > 1)


def module_path(module: ModuleType) -> Path | None:
    """The directory of a package (a single ``__path__``) or the file of a single-file module; None for a
    namespace package split over several directories, or a built-in module."""
    paths = list(getattr(module, "__path__", []) or [])
    if paths:
        return Path(paths[0]) if len(paths) == 1 else None
    file = getattr(module, "__file__", None)
    return Path(file) if file and file.endswith(".py") else None


def _installed(path: Path) -> bool:
    """Whether ``path`` lies in the standard library or an installed-packages directory (the cluster's business)."""
    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots) or "site-packages" in resolved.parts


def user_modules(objects: Iterable[Any]) -> list[Path]:
    """The user's modules that define ``objects`` (classes, functions or instances: the experiment's task
    loader, evaluator, space, strategy): the top-level package (or single-file module) of each, when it is not
    ours, not ``__main__`` (Ray pickles what it defines by value) and not installed in the Python environment."""
    found: dict[str, Path] = {}
    for obj in objects:
        name = getattr(obj, "__module__", None) or type(obj).__module__
        top = name.partition(".")[0]
        if top in FRAMEWORK or top in ("__main__", "builtins") or top in found:
            continue
        module = sys.modules.get(top)
        path = module_path(module) if module is not None else None
        if path is not None and not _installed(path):
            found[top] = path
    return list(found.values())


def check_py_modules(items: Sequence[Any], field: str = "execution.py_modules") -> list[Path]:
    """The paths of ``items`` (importable module names, or local package directories / ``.py`` files);
    :class:`ConfigError` naming the entry and the fix for one that is neither."""
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{field} = {items!r}: expected a list of module names or local paths")
    paths = []
    for i, item in enumerate(items):
        where = f"{field}[{i}] = {item!r}"
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{where}: expected a module name (my_tasks) or a local path (plugins/my_tasks.py)")
        path = Path(item).expanduser()
        if path.is_dir() or (path.is_file() and path.suffix == ".py"):
            paths.append(path.resolve())
            continue
        try:
            spec = importlib.util.find_spec(item) if item.replace(".", "").replace("_", "").isalnum() else None
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if len(locations) == 1:
            paths.append(Path(locations[0]))
        elif origin and origin.endswith(".py"):
            paths.append(Path(origin))
        else:
            raise ConfigError(f"{where}: neither a module importable here (as `import {item}`) nor a package "
                              "directory or .py file; give the name of a module on the driver's sys.path or its "
                              "path")
    return paths


def check_runtime_env(env: Any, field: str = "execution.runtime_env") -> dict[str, Any]:
    """``env`` checked as a Ray runtime environment of the user's: a mapping of known fields, ``env_vars`` a
    mapping of strings, ``py_modules`` and ``excludes`` lists; :class:`ConfigError` naming the field otherwise.
    Ray checks the values of the other fields when the search connects."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ConfigError(f"{field} = {env!r}: expected a mapping of Ray runtime-environment fields, e.g. "
                          "{pip: [einops==0.8.0], env_vars: {OMP_NUM_THREADS: '1'}}")
    for key, value in env.items():
        if key not in RUNTIME_ENV_FIELDS:
            raise ConfigError(f"{field}.{key}: not a Ray runtime-environment field" + did_you_mean(str(key),
                              RUNTIME_ENV_FIELDS) + f"; fields: {', '.join(RUNTIME_ENV_FIELDS)}")
        if key == "env_vars" and (not isinstance(value, Mapping)
                                  or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
            raise ConfigError(f"{field}.env_vars = {value!r}: expected a mapping of names to strings (quote "
                              "numbers: '1')")
        if key in ("py_modules", "excludes") and (not isinstance(value, list)
                                                 or not all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{field}.{key} = {value!r}: expected a list of strings")
    return dict(env)


def code_runtime_env(ship: bool, modules: Sequence[Path] = (), user_env: Mapping[str, Any] | None = None
                     ) -> dict[str, Any] | None:
    """The runtime environment the search's workers run in: when ``ship``, the framework's packages, then
    ``modules`` (the user's), then the user's own ``py_modules``; the user's other fields as given (``user_env``,
    checked by :func:`check_runtime_env`). None when there is nothing to set."""
    env = dict(user_env or {})
    if ship:
        ours = [module_path(importlib.import_module(name)) for name in FRAMEWORK]
        listed = [str(p) for p in [*ours, *modules] if p is not None]
        env["py_modules"] = list(dict.fromkeys([*listed, *env.get("py_modules", [])]))
        env["excludes"] = list(dict.fromkeys([*EXCLUDES, *env.get("excludes", [])]))
    return env or None


def uploaded(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with its local ``py_modules`` and ``working_dir`` uploaded to the connected Ray cluster and
    replaced by their content-addressed URIs, which an actor's or task's own runtime environment may name (Ray
    takes local paths in the runtime environment given to ``ray.init`` only): for a search on a cluster the
    caller connected to. Ray uploads a package once; the same content later is found, not sent again. Uses
    Ray's own upload step (``ray._private.runtime_env``, what ``ray.init`` runs), as no public API offers it;
    :class:`ConfigError` saying what to do instead when that fails."""
    import tempfile

    import ray

    try:
        from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
        from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

        node = getattr(ray._private.worker.global_worker, "node", None)
        scratch = node.get_runtime_env_dir_path() if node is not None else tempfile.mkdtemp(prefix="nas-env-")
        env = upload_py_modules_if_needed(dict(env), include_gitignore=True, scratch_dir=scratch)
        env = upload_working_dir_if_needed(env, include_gitignore=True, scratch_dir=scratch)
    except (ImportError, AttributeError, TypeError) as err:
        raise ConfigError(f"execution.ship_code: cannot upload the code to a Ray cluster this process connected to "
                          f"before the search ({type(err).__name__}: {err}); let the search connect "
                          "(execution.address, without calling ray.init first), or install the package on every "
                          "node and set execution.ship_code: never") from None
    env.pop("excludes", None)  # applied by the upload
    return env
