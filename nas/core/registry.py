"""One registry style for every plug point: a name -> object map with close-match errors (the pattern of
timm's model registry) and, optionally, discovery of installed plugins through entry points.

Built-ins register at import with :meth:`Registry.register` (``REG.register(name, item)``, or
``@REG.register(name)`` as a decorator). A registry made with ``group="nasgraph.strategies"`` also offers
every entry point of that group installed in the environment, under the entry point's name. Discovery is
lazy: ``importlib.metadata`` is consulted the first time a name is not found, or a listing is asked for, so
importing the framework stays cheap; a plugin module is imported only when its name is used (or listed
with :meth:`Registry.entries`).

A plugin that fails to import, or whose object is refused by the registry's check, raises
:class:`PluginError` naming the entry point, its distribution and the error when the name is used;
listings still work and mark it broken. A plugin may not take a name that is already registered: the
registered object keeps the name, and the plugin is refused with a :class:`PluginWarning` and shown as
refused in listings.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, overload

from nas.core.errors import NASError, UnknownNameError

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - the registered item passing through a decorator unchanged
B = TypeVar("B", bound=type)

__all__ = ["Registry", "Entry", "RegistrationError", "PluginError", "PluginWarning", "subclass_check", "register_named"]


class RegistrationError(NASError, ValueError):
    """A name registered twice, or an object the registry does not accept."""


class PluginError(NASError):
    """An installed plugin (entry point) that cannot be used: it fails to import, its object is refused by
    the registry's check, or two distributions offer the same name."""


class PluginWarning(UserWarning):
    """An installed plugin that is ignored (its name is already taken)."""


@dataclass(frozen=True)
class Entry:
    """One name of a registry as listings show it.

    ``plugin`` is the distribution that provides it (``"name version"``), None for objects registered in
    this process (the built-ins); ``error`` says why a plugin cannot be used, None when it can.
    """

    name: str
    plugin: str | None = None
    error: str | None = None


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


class Registry(Generic[T]):
    """Maps names to objects (factories, classes, specs).

    Args:
        kind: what the items are, for messages (``"strategy"``, ``"search space"``).
        group: the entry-point group whose installed plugins this registry offers; None for none.
        check: ``check(name, obj) -> item`` validates (and may convert) every object before it is
            registered or taken from a plugin; it raises ``TypeError`` or ``ValueError`` saying what is
            wrong, which becomes a :class:`RegistrationError` (or :class:`PluginError`).

    Lookups of unknown names raise :class:`UnknownNameError` listing the known names and the closest.
    """

    def __init__(self, kind: str, *, group: str | None = None,
                 check: Callable[[str, Any], T] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._check = check
        self._items: dict[str, T] = {}
        self._plugins: dict[str, list[EntryPoint]] | None = None  # None until discovered
        self._refused: dict[str, str] = {}  # plugin names refused because they clash with a registered one
        self._origin: set[str] = set()  # names of plugins loaded into _items

    # -- registration ------------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[I], I]: ...

    @overload
    def register(self, name: str, item: I) -> I: ...

    def register(self, name: str, item: Any = ...) -> Any:
        """Add ``item`` under ``name`` and return it; without ``item``, a decorator doing that. A name can be
        registered once, and not over an installed plugin's name."""
        if item is ...:
            return lambda obj: self.register(name, obj)
        if not isinstance(name, str) or not name:
            raise RegistrationError(f"{self.kind} name {name!r}: must be a non-empty string")
        if name in self._items:
            raise RegistrationError(f"{self.kind} {name!r} is already registered; choose another name")
        if self._plugins is not None and name in self._plugins:
            raise RegistrationError(f"{self.kind} {name!r} is already provided by the plugin "
                                    f"{self._describe(self._plugins[name][0])}; choose another name")
        self._items[name] = self._checked(name, item, RegistrationError)
        return item

    def unregister(self, name: str) -> None:
        """Remove an in-process registration (a notebook re-running a cell, a test cleaning up); installed
        plugins cannot be removed this way."""
        if name not in self._items or name in self._origin:
            raise UnknownNameError(f"{self.kind} registered in this process", name,
                                   [n for n in self._items if n not in self._origin])
        del self._items[name]

    def _checked(self, name: str, obj: Any, error: type[NASError], where: str = "") -> T:
        if self._check is None:
            return obj  # an unchecked registry takes any object as T
        try:
            return self._check(name, obj)
        except (TypeError, ValueError) as err:
            raise error(f"{self.kind} {name!r}{where}: {err}") from None

    # -- lookup ------------------------------------------------------------------------------------
    def get(self, name: str) -> T:
        """The item registered as ``name``, loading it from its plugin if need be."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            pass
        if isinstance(name, str) and name in self._discover():
            return self._load(name)
        raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        """Names registered in-process, in registration order, then the names of installed plugins, sorted."""
        plugins = self._discover()
        return [*(n for n in self._items if n not in plugins), *sorted(plugins)]

    def plugin(self, name: str) -> str | None:
        """The distribution (``"name version"``) providing ``name``; None when it was registered in-process."""
        if name in self._items and name not in self._origin:
            return None
        eps = self._discover().get(name)
        return ", ".join(_distribution(ep) for ep in eps) if eps else None

    def entries(self) -> list[Entry]:
        """Every name with where it comes from, for listings: in-process names first, then plugins, each
        loaded (a broken one is marked with its error), then plugins refused because their name is taken."""
        plugins = self._discover()
        out = [Entry(name) for name in self._items if name not in plugins]
        for name in sorted(plugins):
            try:
                self._load(name)
            except PluginError as err:
                out.append(Entry(name, self.plugin(name), str(err)))
            else:
                out.append(Entry(name, self.plugin(name)))
        out += [Entry(name, dist, f"refused: {self.kind} {name!r} is already registered; rename the entry point")
                for name, dist in sorted(self._refused.items())]
        return out

    def __contains__(self, name: object) -> bool:
        if name in self._items:
            return True
        return isinstance(name, str) and name in self._discover()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # -- plugins -----------------------------------------------------------------------------------
    def _describe(self, ep: EntryPoint) -> str:
        return f"'{ep.name} = {ep.value}' (group {self.group}) from {_distribution(ep)}"

    def _discover(self) -> dict[str, list[EntryPoint]]:
        """The group's entry points by name, read once; names clashing with a registered one are refused."""
        if self._plugins is None:
            self._plugins = {}
            if self.group is not None:
                for ep in entry_points(group=self.group):
                    if ep.name in self._items:
                        self._refused[ep.name] = _distribution(ep)
                        warnings.warn(f"the {self.kind} plugin {self._describe(ep)} is ignored: {self.kind} "
                                      f"{ep.name!r} is already registered; rename the entry point",
                                      PluginWarning, stacklevel=3)
                        continue
                    self._plugins.setdefault(ep.name, []).append(ep)
        return self._plugins

    def _load(self, name: str) -> T:
        if name in self._items:
            return self._items[name]
        eps = self._discover()[name]
        if len(eps) > 1:
            raise PluginError(f"{self.kind} {name!r} is offered by several plugins: "
                              f"{'; '.join(self._describe(ep) for ep in eps)}; uninstall all but one")
        (ep,) = eps
        try:
            obj = ep.load()
        except Exception as err:
            raise PluginError(f"the {self.kind} plugin {self._describe(ep)} failed to load: "
                              f"{type(err).__name__}: {err}; fix or uninstall {_distribution(ep)}") from err
        item = self._checked(name, obj, PluginError, f" (plugin {self._describe(ep)})")
        self._items[name] = item
        self._origin.add(name)
        return item


# -- registries of classes named by their ``name`` attribute (strategies, spaces, evaluators) ------------------
def subclass_check(base: type, where: str) -> Callable[[str, Any], Any]:
    """A ``check`` for :class:`Registry` accepting concrete subclasses of ``base`` (spelt ``where`` in
    messages) whose class attribute ``name`` is the name they are registered, or their entry point named,
    under."""

    def check(name: str, cls: Any) -> Any:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"expected a subclass of {where}, got {cls!r}")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise TypeError(f"{cls.__qualname__} is abstract (it does not implement {missing})")
        declared = getattr(cls, "name", None)
        if declared != name:
            raise ValueError(f"{cls.__qualname__}.name is {declared!r}; it must be {name!r}, the name it is "
                             "registered (or its entry point named) under")
        return cls

    return check


def register_named(registry: Registry[Any], cls: B, function: str) -> B:
    """Register ``cls`` in ``registry`` under its class attribute ``name`` and return it unchanged (the body of
    the public class decorators such as ``register_strategy``, named ``function`` in messages)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str):
        raise RegistrationError(f"{function}({getattr(cls, '__qualname__', cls)!r}): the class needs a string "
                                f"class attribute `name` (the name configs use), got {name!r}")
    registry.register(name, cls)
    return cls
