"""Shared test setup: one intra-op thread and a fixed torch seed for every test, no MLflow tracking URI from the
environment, and a check that the tests wrote nothing into the source tree.

The models under test are tiny; on small CI machines torch's thread pool costs far more than it saves
(a 2x1x8x8 ResNet-20 forward pass takes ~1 s with 2 threads and a few ms with 1).

A test that creates files must create them under its ``tmp_path`` (and ``monkeypatch.chdir(tmp_path)`` when the
code under test writes relative to the working directory): at the end of the session, a file or folder that git
did not see at its start (untracked or ignored, caches aside) fails the run, naming it.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

torch.set_num_threads(1)

_SOURCE = Path(__file__).resolve().parent.parent
#: what tools leave in a checkout, not the tests
_CACHES = ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".import_linter_cache", ".hypothesis",
           ".coverage", ".pyc")
_NEW_FILES = pytest.StashKey[frozenset[str]]()


def _untracked() -> frozenset[str] | None:
    """The untracked and ignored paths git reports in the source tree (ignored folders as one entry), caches
    aside; None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(_SOURCE), "status", "--porcelain", "--ignored=matching",
                              "--untracked-files=all"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return frozenset(line[3:] for line in out.stdout.splitlines()
                     if line[:2] in ("??", "!!") and not any(cache in line for cache in _CACHES))


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the main process (xdist workers run in the same tree)
        found = _untracked()
        if found is not None:
            session.config.stash[_NEW_FILES] = found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the tests left a new file or folder in the source tree."""
    before = session.config.stash.get(_NEW_FILES, None)
    after = _untracked() if before is not None else None
    if before is None or after is None or not after - before:
        return
    new = sorted(after - before)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = (f"the tests wrote into the source tree {_SOURCE.name}/: {', '.join(new[:20])}"
            f"{' ...' if len(new) > 20 else ''}; a test must write under its tmp_path (monkeypatch.chdir(tmp_path) "
            "when the code writes relative to the working directory)")
    if reporter is not None:
        reporter.write_line(f"\nERROR: {text}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="module")
def tmp_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty working directory for a whole test module, its module-scoped fixtures included (use it with
    ``pytestmark = pytest.mark.usefixtures("tmp_cwd")`` where the code under test may write relative to the working
    directory, as a tracker can); the previous one is restored after the module."""
    with pytest.MonkeyPatch.context() as patch:
        path = tmp_path_factory.mktemp("cwd")
        patch.chdir(path)
        yield path


@pytest.fixture(autouse=True, scope="session")
def _no_mlflow_from_the_environment() -> Iterator[None]:
    """The tests choose their MLflow stores; a user's ``MLFLOW_TRACKING_URI`` (which ``tracking: {mlflow: true}``
    follows) must not send them to a server."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu``-marked tests, with the reason, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu test: no CUDA device is visible here (torch.cuda.is_available() is False); "
                                   "it runs on a machine with a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Every test starts from the same torch seed and one thread (a test may change either)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)


@functools.cache
def search_outcome(algorithm: str, space_name: str, space_options: str = "{}") -> Any:
    """A real, short supernet search (one epoch of the proxy nb201 C=2 N=1 or the given space, on 200
    digits), run once per algorithm and space: the outcome a one-shot strategy needs before its first ask,
    for tests that drive strategies without an Experiment (which would run the search itself)."""
    from nas.oneshot.config import OneShotConfig
    from nas.oneshot.job import run_supernet_search
    from nas.oneshot.spec import SupernetSearch
    from search_spaces import get_space

    space = get_space(space_name, **json.loads(space_options))
    small = {"C": 2, "N": 1} if space_name == "nb201" else {}
    config = OneShotConfig.from_options(algorithm, {"epochs": 1, "batch_size": 32, "space_options": small})
    with tempfile.TemporaryDirectory() as tmp:
        search = SupernetSearch(space=space, task="digits", task_options={"limit": 200}, seed=0, config=config,
                                directory=tmp)
        return run_supernet_search(search)


def ready(strategy: Any) -> Any:
    """``strategy``, with its supernet search done first when it is a one-shot strategy."""
    inner = getattr(strategy, "inner", strategy)
    if getattr(inner, "one_shot", False) and inner.outcome is None:
        space = inner.space
        inner.tell_job(search_outcome(inner.algorithm, space.name, json.dumps(space.options(), sort_keys=True)))
    return strategy
