"""The quickstart config ships inside the package (``nas/runtime/quickstart.yaml``, the only copy): ``nas demo``
runs it and ``nas demo --print-config`` prints it, also from an installed package used outside a checkout."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.runtime.api import QUICKSTART, load_quickstart, quickstart_yaml
from nas.runtime.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ROOT / "nas" / "runtime" / QUICKSTART


def test_print_config_prints_the_packaged_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not read from the working directory
    assert main(["demo", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert printed == PACKAGED.read_text(encoding="utf-8") == quickstart_yaml()
    assert printed.startswith("# The quickstart:")
    cfg = parse_config(yaml.safe_load(printed))
    assert cfg == load_quickstart()
    assert (cfg.name, cfg.space.name, cfg.strategy.name, cfg.evaluator.task) == ("quickstart", "nb201", "evolution",
                                                                                "digits")
    assert (cfg.budget.max_trials, cfg.execution.executor, cfg.execution.workers) == (40, "ray", 2)
    assert not list(tmp_path.iterdir())


def test_the_packaged_config_is_the_only_copy() -> None:
    """No second copy to drift (the checkout's config folder once held one)."""
    copies = [p.relative_to(ROOT) for folder in ("nas", "search_spaces", "strategies", "experiments", "docs")
              for p in (ROOT / folder).rglob(QUICKSTART)]
    assert copies == [Path("nas/runtime/quickstart.yaml")]


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building the package needs setuptools")
def test_an_installed_package_finds_its_quickstart_outside_a_checkout(tmp_path: Path) -> None:
    """Install (pip --target, offline) from a copy of the sources, then use it from an unrelated directory."""
    source, target, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("nas", "search_spaces", "strategies"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(target), str(source)], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr[-2000:]
    assert (target / "nas" / "runtime" / QUICKSTART).read_bytes() == PACKAGED.read_bytes()

    def run(*args: str) -> str:
        result = subprocess.run([sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    assert run("-m", "nas.cli", "demo", "--print-config") == PACKAGED.read_text(encoding="utf-8")
    assert "--print-config" in run("-m", "nas.cli", "demo", "--help")
    loaded = run("-c", "import nas; from nas.runtime.api import load_quickstart; c = load_quickstart(); "
                       "print(nas.__file__); print(c.name, c.budget.max_trials, c.evaluator.task)").splitlines()
    assert Path(loaded[0]).is_relative_to(target) and loaded[1] == "quickstart 40 digits"
    assert not list(elsewhere.iterdir())
