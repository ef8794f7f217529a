"""One way to turn a user's ``"package.module:function"`` reference into the object it names.

Task functions (``evaluator.task``), define-by-run builders (``space.options.builder``) and any other option that
names user code go through :func:`import_reference`, so they share one folder rule and one set of messages:

- the reference is ``package.module:attr`` (``attr`` may be dotted: ``module:Class.method``);
- the module is imported from ``sys.path``; each folder of ``folders`` (the config's folder, filled in by the config
  loader) is put in front of ``sys.path`` first, once, and **left there**, so that a module beside the config can
  import its siblings later, at call time, as it would when run as a script;
- every failure is a :class:`~nas.core.errors.ConfigError` that names the option, the reference, what went wrong
  (a missing module, a module that raised on import with the user's line, a missing attribute with the close
  matches, an object that is not callable) and the fix.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Iterable
from typing import Any

from nas.core.errors import ConfigError, did_you_mean

__all__ = ["REFERENCE", "is_reference", "import_reference", "module_file", "user_error_line"]

REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_FRAMEWORK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_reference(name: object) -> bool:
    """Whether ``name`` looks like a ``package.module:function`` reference (registered names hold no ``:``)."""
    return isinstance(name, str) and ":" in name


def module_file(ref: str, folder: str | os.PathLike[str]) -> str | None:
    """The file in ``folder`` that the module of ``ref`` would import from (``top.py`` or ``top/__init__.py``,
    ``top`` the first part of the dotted module name), or ``None``."""
    top = os.path.join(os.fspath(folder), ref.split(":")[0].split(".")[0])
    for candidate in (top + ".py", os.path.join(top, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def user_error_line(err: BaseException, skip_dirs: Iterable[str] = ()) -> str:
    """``Type: message (at file.py:LINE in function: source line)`` for the innermost frame of the traceback that
    is not in this framework, in ``skip_dirs`` (e.g. torch's folder) or in the import machinery: the user's line."""
    frames = traceback.extract_tb(err.__traceback__)
    skipped = (_FRAMEWORK, *skip_dirs)
    user = [f for f in frames if not f.filename.startswith(skipped) and not f.filename.startswith("<frozen")]
    text = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
    if user:
        f = user[-1]
        text += f" (at {os.path.basename(f.filename)}:{f.lineno} in {f.name}: {(f.line or '').strip()})"
    return text


def import_reference(ref: object, *, field: str, folders: Iterable[str | os.PathLike[str]] = (),
                     expect: str = "a function") -> Any:
    """The callable ``ref`` names, imported as the module docstring says. ``field`` is the option's name in
    messages (``"evaluator.task"``) and ``expect`` what the object should be (``"a function returning (x, y)"``).
    Raises :class:`ConfigError` on a malformed reference, an unimportable module, a module that raises on import, a
    missing attribute or an object that is not callable."""
    if not isinstance(ref, str) or not REFERENCE.match(ref):
        raise ConfigError(f"{field} = {ref!r}: name it as 'package.module:function' ({expect} in a module "
                          "importable from sys.path or the config's folder)")
    paths = [os.path.abspath(os.fspath(f)) for f in folders if f]
    for folder in reversed(paths):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, attr = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and not (module_name == err.name or module_name.startswith(err.name + ".")):
            raise ConfigError(f"{field} = {ref!r}: importing module {module_name!r} raised "
                              f"{user_error_line(err)}; install {err.name!r} or remove the import") from None
        where = ", ".join([*paths, "sys.path"])
        raise ConfigError(f"{field} = {ref!r}: module {module_name!r} cannot be imported ({err}); put it on "
                          f"sys.path (PYTHONPATH) or next to the config (searched {where})") from None
    except Exception as err:  # the user's module raised on import
        raise ConfigError(f"{field} = {ref!r}: importing module {module_name!r} raised {user_error_line(err)}") \
            from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n)))
            raise ConfigError(f"{field} = {ref!r}: module {module_name!r} has no function {attr!r}"
                              + did_you_mean(part, names) + f"; its functions: {', '.join(names) or 'none'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{field} = {ref!r}: {attr!r} in {module_name!r} is an object of type "
                          f"{type(obj).__name__}, not {expect}")
    return obj
