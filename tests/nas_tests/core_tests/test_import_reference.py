"""``import_reference``: one resolver for every ``package.module:function`` option (task functions, builders)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nas.core.errors import ConfigError
from nas.core.references import import_reference, is_reference, module_file


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "ref_mod_a.py").write_text("import ref_mod_b\n\ndef load():\n    return ref_mod_b.VALUE\n\n"
                                          "class K:\n    @staticmethod\n    def make():\n        return 7\n\nX = 3\n")
    (tmp_path / "ref_mod_b.py").write_text("VALUE = 41\n")
    (tmp_path / "ref_mod_raises.py").write_text("x = 1\nraise RuntimeError('boom at import')\n")
    (tmp_path / "ref_mod_dep.py").write_text("import no_such_dependency_xyz\n")
    yield tmp_path
    for name in ("ref_mod_a", "ref_mod_b", "ref_mod_raises", "ref_mod_dep"):
        sys.modules.pop(name, None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_a_module_beside_the_config_imports_with_its_siblings_and_its_folder_stays(folder: Path) -> None:
    fn = import_reference("ref_mod_a:load", field="evaluator.task", folders=[folder])
    assert fn() == 41
    assert str(folder) in sys.path  # the folder rule: left on sys.path for imports the module makes later
    assert import_reference("ref_mod_a:K.make", field="builder", folders=[folder])() == 7
    assert module_file("ref_mod_a:load", folder) == str(folder / "ref_mod_a.py")
    assert module_file("elsewhere:load", folder) is None
    assert is_reference("a.b:c") and not is_reference("digits") and not is_reference(3)


@pytest.mark.parametrize(("ref", "message"), [
    ("nocolon", r"evaluator.task = 'nocolon': name it as 'package.module:function'"),
    ("no_such_mod_xyz:f", r"module 'no_such_mod_xyz' cannot be imported.* \(PYTHONPATH\) or next to the config"),
    ("ref_mod_raises:f", r"importing module 'ref_mod_raises' raised RuntimeError: boom at import "
                         r"\(at ref_mod_raises.py:2 in <module>"),
    ("ref_mod_dep:f", r"raised ModuleNotFoundError.*install 'no_such_dependency_xyz' or remove the import"),
    ("ref_mod_a:lod", r"has no function 'lod' \(did you mean 'load'\?\)"),
    ("ref_mod_a:X", r"'X' in 'ref_mod_a' is an object of type int, not a function"),
])
def test_every_failure_names_the_field_the_reference_and_the_fix(folder: Path, ref: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        import_reference(ref, field="evaluator.task", folders=[folder])
