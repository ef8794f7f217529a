"""``experiments/benchmarks/_code_version.py``: the commit a benchmark ran and the library files modified since,
named whole (a real git repository in a temporary directory)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from _experiments import load_benchmark


@pytest.fixture(scope="module")
def code_version_module() -> ModuleType:
    return load_benchmark("_code_version.py")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    for name in ("nas/evaluation/training.py", "strategies/random.py", "docs/notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_clean_library(code_version_module: ModuleType, repo: Path) -> None:
    (repo / "docs" / "notes.md").write_text("changed\n")  # outside the library: not reported
    version = code_version_module.code_version(repo)
    assert version.startswith("commit ") and version.endswith("library (`nas/`, `strategies/`, `search_spaces/`) "
                                                              "unmodified")


def test_modified_files_named_whole(code_version_module: ModuleType, repo: Path) -> None:
    (repo / "nas" / "evaluation" / "training.py").write_text("x = 2\n")  # " M path": the line starts with a space
    (repo / "strategies" / "new.py").write_text("y = 1\n")  # "?? path"
    version = code_version_module.code_version(repo)
    assert version.endswith("with uncommitted changes to `nas/evaluation/training.py`, `strategies/new.py`"), version


def test_outside_a_checkout(code_version_module: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # git looks no higher for a repository
    assert code_version_module.code_version(tmp_path) == "unknown (not a git checkout)"
