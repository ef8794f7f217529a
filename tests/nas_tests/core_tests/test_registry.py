"""The one registry style: registration (also as a decorator), close-match lookups, and lazy discovery of
installed plugins through entry points, with broken, clashing and refused plugins reported clearly.

Plugins here are real distributions: a ``*.dist-info`` folder with an ``entry_points.txt`` and a module,
written to a temporary folder put on ``sys.path``; nothing about ``importlib.metadata`` is mocked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nas.core.errors import NASError, UnknownNameError
from nas.core.registry import (
    Entry,
    PluginError,
    PluginWarning,
    RegistrationError,
    Registry,
    register_named,
    subclass_check,
)


def install(root: Path, dist: str, group: str, entries: dict[str, str], modules: dict[str, str] | None = None,
            version: str = "1.0") -> None:
    """Write distribution ``dist`` with ``entries`` in ``group`` and the given module sources under ``root``."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def group(tmp_path: Path) -> str:
    return f"nasgraph.test_{tmp_path.name}"  # a group no other test (or installed package) uses


@pytest.fixture
def module(tmp_path: Path) -> str:
    return f"plugin_{tmp_path.name}"  # a fresh module name: sys.modules holds nothing under it


# -- registration and lookup -------------------------------------------------------------------------------
def test_register_get_and_list_in_registration_order() -> None:
    reg: Registry[int] = Registry("number")
    assert reg.register("two", 2) == 2
    assert reg.register("one")(1) == 1  # the decorator form returns the item unchanged
    assert reg.get("one") == 1 and reg.names() == ["two", "one"]
    assert "one" in reg and "three" not in reg and list(reg) == ["two", "one"] and len(reg) == 2
    assert reg.entries() == [Entry("two"), Entry("one")] and reg.plugin("two") is None


def test_unknown_names_raise_with_the_known_ones_and_the_closest() -> None:
    reg: Registry[int] = Registry("number")
    reg.register("seven", 7)
    with pytest.raises(UnknownNameError, match=r"unknown number 'sevn'; known: seven \(did you mean 'seven'\?\)"):
        reg.get("sevn")
    with pytest.raises(UnknownNameError):
        reg.get(["not", "hashable"])  # type: ignore[arg-type]  # a config may hold anything


def test_a_name_is_registered_once_and_must_be_a_string() -> None:
    reg: Registry[int] = Registry("number")
    reg.register("one", 1)
    with pytest.raises(RegistrationError, match="number 'one' is already registered; choose another name"):
        reg.register("one", 11)
    with pytest.raises(RegistrationError, match="number name ''"):
        reg.register("", 0)
    assert issubclass(RegistrationError, NASError) and issubclass(RegistrationError, ValueError)
    assert reg.get("one") == 1


def test_unregister_removes_an_in_process_name() -> None:
    reg: Registry[int] = Registry("number")
    reg.register("one", 1)
    reg.unregister("one")
    assert "one" not in reg
    reg.register("one", 2)  # a notebook re-running its cell
    assert reg.get("one") == 2
    with pytest.raises(UnknownNameError):
        reg.unregister("two")


class Base:
    name = "base"


class Good(Base):
    name = "good"


def test_the_check_refuses_objects_with_a_reason() -> None:
    reg: Registry[type[Base]] = Registry("widget", check=subclass_check(Base, "tests.Base"))
    assert register_named(reg, Good, "register_widget") is Good
    with pytest.raises(RegistrationError, match=r"widget 'int': expected a subclass of tests.Base, got <class 'int'>"):
        reg.register("int", int)
    with pytest.raises(RegistrationError, match=r"Good.name is 'good'; it must be 'other'"):
        reg.register("other", Good)
    nameless = type("Nameless", (Base,), {"name": None})
    with pytest.raises(RegistrationError, match=r"register_widget\('Nameless'\): the class needs a string class "
                                                r"attribute `name`"):
        register_named(reg, nameless, "register_widget")
    assert reg.names() == ["good"]


# -- plugins -------------------------------------------------------------------------------------------------
def test_plugins_are_discovered_lazily_and_imported_only_when_used(site: Path, group: str, module: str) -> None:
    reg: Registry[int] = Registry("number", group=group)
    reg.register("one", 1)
    # installed after the registry was made but before its first miss: still found (discovery is lazy)
    install(site, "nasgraph-numbers", group, {"forty_two": f"{module}:VALUE"}, {module: "VALUE = 42\n"})
    assert reg.get("one") == 1  # a hit needs no discovery
    assert reg.names() == ["one", "forty_two"]
    assert module not in sys.modules  # listing names imports nothing
    assert reg.plugin("forty_two") == "nasgraph-numbers 1.0" and reg.plugin("one") is None
    assert reg.get("forty_two") == 42 and module in sys.modules
    assert "forty_two" in reg and reg.names() == ["one", "forty_two"]
    assert reg.entries() == [Entry("one"), Entry("forty_two", "nasgraph-numbers 1.0")]
    with pytest.raises(RegistrationError, match="number 'forty_two' is already registered"):
        reg.register("forty_two", 0)


def test_an_in_process_name_cannot_take_a_plugin_name(site: Path, group: str, module: str) -> None:
    install(site, "nasgraph-numbers", group, {"seven": f"{module}:SEVEN"}, {module: "SEVEN = 7\n"})
    reg: Registry[int] = Registry("number", group=group)
    assert reg.names() == ["seven"]
    with pytest.raises(RegistrationError, match=rf"number 'seven' is already provided by the plugin 'seven = "
                                                rf"{module}:SEVEN' \(group {group}\) from nasgraph-numbers 1.0"):
        reg.register("seven", 8)


def test_a_broken_plugin_is_listed_as_such_and_named_when_used(site: Path, group: str, module: str) -> None:
    install(site, "nasgraph-broken", group, {"broken": f"{module}:VALUE", "fine": f"{module}_ok:VALUE"},
            {module: "import no_such_package_anywhere\nVALUE = 1\n", f"{module}_ok": "VALUE = 2\n"}, version="0.3")
    reg: Registry[int] = Registry("number", group=group)
    assert reg.names() == ["broken", "fine"]
    with pytest.raises(PluginError) as info:
        reg.get("broken")
    msg = str(info.value)
    assert f"the number plugin 'broken = {module}:VALUE' (group {group}) from nasgraph-broken 0.3 failed to load" in msg
    assert "ModuleNotFoundError: No module named 'no_such_package_anywhere'" in msg
    assert "fix or uninstall nasgraph-broken 0.3" in msg
    entries = reg.entries()
    assert entries[1] == Entry("fine", "nasgraph-broken 0.3")
    assert entries[0].name == "broken" and entries[0].plugin == "nasgraph-broken 0.3" and "failed to load" in (
        entries[0].error or "")
    assert reg.get("fine") == 2


def test_a_plugin_object_refused_by_the_check_is_a_plugin_error(site: Path, group: str, module: str) -> None:
    install(site, "nasgraph-widgets", group, {"odd": f"{module}:Odd"},
            {module: f"from {__name__} import Base\nclass Odd(Base):\n    name = 'even'\n"})
    reg: Registry[type[Base]] = Registry("widget", group=group, check=subclass_check(Base, "tests.Base"))
    with pytest.raises(PluginError, match=r"widget 'odd' \(plugin 'odd = .*from nasgraph-widgets 1.0\): "
                                          r"Odd.name is 'even'; it must be 'odd'"):
        reg.get("odd")


def test_a_plugin_clashing_with_a_registered_name_is_refused(site: Path, group: str, module: str) -> None:
    install(site, "nasgraph-impostor", group, {"one": f"{module}:VALUE"}, {module: "VALUE = 'impostor'\n"})
    reg: Registry[int] = Registry("number", group=group)
    reg.register("one", 1)
    with pytest.warns(PluginWarning, match=rf"the number plugin 'one = {module}:VALUE' .* from nasgraph-impostor "
                                           r"1.0 is ignored: number 'one' is already registered; rename"):
        assert reg.names() == ["one"]
    assert reg.get("one") == 1
    assert reg.entries() == [Entry("one"), Entry("one", "nasgraph-impostor 1.0",
                                                 "refused: number 'one' is already registered; rename the entry point")]


def test_a_name_offered_by_two_distributions_is_refused_when_used(site: Path, group: str, module: str) -> None:
    install(site, "nasgraph-a", group, {"twin": f"{module}:A"}, {module: "A = 1\nB = 2\n"})
    install(site, "nasgraph-b", group, {"twin": f"{module}:B"})
    reg: Registry[int] = Registry("number", group=group)
    assert reg.names() == ["twin"]
    with pytest.raises(PluginError, match=r"number 'twin' is offered by several plugins: .*nasgraph-(a|b) 1.0; "
                                          r".*nasgraph-(a|b) 1.0; uninstall all but one"):
        reg.get("twin")
