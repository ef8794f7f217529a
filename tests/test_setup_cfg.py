"""setup.cfg: every runtime requirement has a lower bound, each package is listed once, and the ``all`` extra is
exactly the union of the optional extras (``test`` holds development tools and stays out of it)."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def test_requirements_have_lower_bounds_and_appear_once() -> None:
    options = read_configuration(ROOT / "setup.cfg")["options"]
    runtime = options["install_requires"]
    assert all(">=" in r for r in runtime), runtime
    names = [_name(r) for r in runtime] + [_name(r) for extra, reqs in options["extras_require"].items()
                                          if extra != "all" for r in reqs]
    assert names.count("scipy") == 1 and "ray" in names
    assert len([n for n in names if n != "torch"]) == len({n for n in names if n != "torch"}), names
    export = options["extras_require"]["export"]
    assert "torch>=2.5" in export  # the ONNX exporters take dynamo=..., a keyword of torch 2.5


def test_all_is_the_union_of_the_optional_extras() -> None:
    extras = read_configuration(ROOT / "setup.cfg")["options"]["extras_require"]
    union = {r for extra, reqs in extras.items() if extra not in ("all", "test") for r in reqs}
    assert set(extras["all"]) == union and len(extras["all"]) == len(union)
    assert {"data", "cifar", "export"} <= set(extras)
