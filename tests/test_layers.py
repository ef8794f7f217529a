"""The import rule of ``make lint`` is real: the contracts in ``setup.cfg`` (run by ``lint-imports``) and the
imports-at-top check (``tests/check_imports.py``) pass on the code base and fail on a planted forbidden import.

Each check runs on a copy of the three packages, so a planted import never touches the working tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from check_imports import ROOT, library_packages, scan

#: Contracts that hold on the code base today: all of them.
HOLDING = ("layers", "strategies", "evaluation")


def _copy_library(dest: Path) -> Path:
    """The library's packages and ``setup.cfg`` copied under ``dest`` (no data files, no caches)."""
    for package in library_packages():
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.xz"))
    shutil.copy(ROOT / "setup.cfg", dest / "setup.cfg")
    return dest


def _plant(file: Path, line: str, *, after: str) -> None:
    """Insert ``line`` into ``file`` right after the first line starting with ``after``."""
    lines = file.read_text().splitlines(keepends=True)
    at = next(i for i, text in enumerate(lines) if text.startswith(after))
    lines.insert(at + 1, line + "\n")
    file.write_text("".join(lines))


def _lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages under ``root`` with the contracts of ``root/setup.cfg``."""
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    args = [sys.executable, "-c", command, "--no-cache", "--no-logo", "setup.cfg"]
    for contract in contracts:
        args += ["--contract", contract]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_contracts_that_hold_today_pass_on_the_code_base(tmp_path: Path) -> None:
    run = _lint_imports(_copy_library(tmp_path), *HOLDING)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Contracts: {len(HOLDING)} kept, 0 broken." in run.stdout


def test_contracts_fail_on_planted_forbidden_imports(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    _plant(root / "strategies" / "random.py", "import nas.runtime.experiment", after="from __future__")
    _plant(root / "nas" / "evaluation" / "measure.py", "from search_spaces import get_space  # noqa: F401",
           after="from __future__")
    _plant(root / "nas" / "core" / "registry.py", "import nas.outputs.export", after="from __future__")

    run = _lint_imports(root)

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Strategies never import evaluation, storage or runtime BROKEN" in run.stdout
    assert "strategies.random -> nas.runtime.experiment" in run.stdout
    assert "Evaluation never imports search spaces, strategies, storage or runtime BROKEN" in run.stdout
    assert "nas.evaluation.measure -> search_spaces" in run.stdout
    assert "Layers (a lower layer never imports a higher one) BROKEN" in run.stdout
    assert "nas.core is not allowed to import nas.outputs" in run.stdout
    assert "nas.core.registry -> nas.outputs.export" in run.stdout


def test_imports_sit_at_module_top_unless_a_reason_is_stated() -> None:
    late, problems = scan()
    assert problems == []
    assert any(item.internal and item.reason for item in late)  # the justified sites are seen, not skipped


def test_import_check_fails_on_a_planted_function_level_import(tmp_path: Path) -> None:
    root = _copy_library(tmp_path)
    random = root / "strategies" / "random.py"
    random.write_text(random.read_text() + "\n\ndef _late():\n    from nas.trials.trial import Trial\n\n"
                      "    return Trial\n\n\ndef _stated():\n    from nas.core.errors import NASError  # lazy: "
                      "a stated reason\n\n    return NASError\n\n\ndef _root():\n    from nas import Architecture"
                      "\n\n    return Architecture\n")
    measure = root / "nas" / "evaluation" / "measure.py"
    measure.write_text(measure.read_text() + "\n\ndef _again():\n    import torch\n\n    return torch\n")

    late, problems = scan(root)

    assert len([p for p in problems if p.startswith("strategies/random.py:")]) == 3
    assert any("`nas.trials.trial` is imported inside a function" in p for p in problems)
    assert any("imports the root package `nas`" in p for p in problems)
    assert not any("nas.core.errors" in p for p in problems)
    assert [item.reason for item in late if item.module == "nas.core.errors" and item.path.startswith("strat")] \
        == ["a stated reason"]
    assert any(p.startswith("nas/evaluation/measure.py:") and "`torch` is imported at the top already" in p
               for p in problems)



def test_every_type_ignore_says_why() -> None:
    """``# type: ignore[code]  # why``: a code, and a reason after it (mypy reports the ones no longer needed)."""
    pattern = re.compile(r"#\s*type:\s*ignore(?P<code>\[[\w,\s-]+\])?(?P<rest>.*)$")
    bare = []
    for folder in (*library_packages(), "tests", "experiments"):
        for file in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(file.read_text().splitlines(), start=1):
                match = pattern.search(line)
                if match and not (match["code"] and re.match(r"\s+#\s*\S", match["rest"])):
                    bare.append(f"{file.relative_to(ROOT)}:{number}")
    assert bare == []
