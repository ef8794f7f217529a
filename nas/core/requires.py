"""Optional packages, imported on first use with an error naming the extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from nas.core.errors import ConfigError

__all__ = ["require"]


def require(module: str, what: str, extra: str) -> ModuleType:
    """``importlib.import_module(module)``; when it is not installed, a :class:`ConfigError` saying ``what`` needs
    it and to install the optional ``extra`` (``pip install 'nasgraph[extra]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.split(".")[0]
        raise ConfigError(f"{what} needs the package {package!r}, which is not installed ({err}); install the "
                          f"optional extra: pip install 'nasgraph[{extra}]'") from None
