"""The installed package: self-contained sources, the public API, the ``nas`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nas
from nas.cli import main
from nas.core.errors import NASError
from nas.graph.architecture import Architecture
from search_spaces import get_space, list_spaces

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nas", "search_spaces", "strategies")
# spelled in pieces so that this test file does not itself contain the paths it forbids
FORBIDDEN = (b"../" + b"shared", b"shared/" + b"benchmarks")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_package_sources_do_not_reach_outside_the_package() -> None:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    assert len(files) >= 20 and any(p.name == "architecture.py" for p in files)
    offending = [f"{p.relative_to(ROOT)}: {s.decode()}" for p in files for s in FORBIDDEN if s in p.read_bytes()]
    assert not offending, f"package files refer to the repository's shared folder: {offending}"


def test_every_public_name_exists() -> None:
    assert nas.__all__
    for name in nas.__all__:
        assert getattr(nas, name) is not None, name
    from nas import references
    from nas.graph import compiler

    assert nas.build_model is compiler.build_model
    assert nas.references is references
    assert nas.Architecture is Architecture
    assert isinstance(nas.__version__, str) and nas.__version__.count(".") == 2
    for error in ("InvalidArchitectureError", "UnknownNameError", "ShapeError", "ConfigError"):
        assert issubclass(getattr(nas, error), NASError)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        nas.no_such_name  # noqa: B018


def test_public_names_import_in_a_fresh_interpreter() -> None:
    """Lazily imported names must work before anything else imported their modules."""
    code = ("import nas; missing = [n for n in nas.__all__ if getattr(nas, n, None) is None]; "
            "from nas import references, build_model; "
            "print(missing, references.list_references()[0], build_model.__name__)")
    result = _run("-c", code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[] lenet5 build_model"


def test_cli_spaces_json() -> None:
    result = _run("-m", "nas.cli", "spaces", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list_spaces()
    for row in rows:
        space = get_space(row["name"])
        assert row["size"] == space.size()
        assert row["decisions"] == len(space.decision_sizes())
        assert row["input"] == space.input_kind
        assert row["options"] == space.options()


def test_cli_spaces_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == len(list_spaces())
    assert all(line.split()[0] == name for line, name in zip(lines, list_spaces()))
    assert "1.562e+04 members" in out


def test_cli_references() -> None:
    result = _run("-m", "nas.cli", "references")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.strip().splitlines()]
    assert rows[0] == ["lenet5", "image", "zoo"] and ["transformer", "sequence", "cells"] in rows
    assert len(rows) == len(nas.graph.references.list_references())


def test_cli_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "nb201", "--seed", "3"]) == 0
    arch = Architecture.from_json(capsys.readouterr().out)
    assert arch == get_space("nb201").sample(np.random.default_rng(3))


def test_cli_unknown_space_exits_2_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "nb20"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: unknown search space 'nb20'")
    assert "did you mean 'nb201'?" in captured.err


def test_cli_usage_errors() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
