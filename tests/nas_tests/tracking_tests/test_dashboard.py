"""optuna-dashboard on the study mirror of a real search: the server starts on ``optuna.db``, its JSON API lists our
trials with their op names, and its page renders the study in headless Chromium (tests/devtools.py) without a
JavaScript error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools import chromium, needs_chromium, open_tab

from nas.graph.nb201 import NB201_OPS
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

DASHBOARD = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which("optuna-dashboard")
pytestmark = [needs_chromium, pytest.mark.skipif(DASHBOARD is None, reason="optuna-dashboard is not installed "
                                                                          "(pip install 'nasgraph[tracking]')"),
              pytest.mark.usefixtures("tmp_cwd")]  # trackers may write relative to the working directory
TRIALS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, list[int]]]:
    """A search mirrored into optuna.db, and optuna-dashboard serving it on a free port (in its own process group,
    killed by group at the end); yields the server's URL, the study's id and our trial ids."""
    out = tmp_path_factory.mktemp("dash") / "exp"
    cfg = {"name": "mirror", "seed": 0, "space": {"name": "nb201"},
           "strategy": {"name": "evolution", "options": {"population": 4, "sample_size": 2}},
           "evaluator": {"name": "nb201"}, "budget": {"max_trials": TRIALS},
           "execution": {"executor": "local", "workers": 1}, "tracking": {"optuna": True}}
    exp = Experiment.create(parse_config(cfg), out)
    ids = sorted(t.id for t in exp.run())
    exp.close()
    assert len(ids) == TRIALS
    port = _free_port()
    log = open(out.parent / "dashboard.log", "w")
    proc = subprocess.Popen([DASHBOARD, f"sqlite:///{out / 'optuna.db'}", "--host", "127.0.0.1", "--port",  # type: ignore[list-item]  # skipped without it
                             str(port), "--server", "wsgiref", "--quiet"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                studies = _get(f"{url}/api/studies")
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"optuna-dashboard did not start (exit code {proc.poll()}): "
                                f"{(out.parent / 'dashboard.log').read_text()[-2000:]}")
                time.sleep(0.5)
        (study,) = [s for s in studies["study_summaries"] if s["study_name"] == "mirror"]
        yield url, study["study_id"], ids
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from chromium(tmp_path_factory.mktemp("chromium-profile"))


def test_the_dashboard_api_lists_our_trials_with_op_names(dashboard: tuple[str, int, list[int]]) -> None:
    url, study_id, ours = dashboard
    detail = _get(f"{url}/api/studies/{study_id}")
    trials = detail["trials"]
    assert len(trials) == TRIALS
    ids = sorted(next(int(a["value"]) for a in t["user_attrs"] if a["key"] == "nas_trial_id") for t in trials)
    assert ids == ours
    for t in trials:
        assert t["state"] == "Complete"
        assert {p["name"] for p in t["params"]} == {f"edge_{s}_{d}" for s, d in
                                                     [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]}
        assert all(p["param_external_value"] in NB201_OPS for p in t["params"])
    assert detail["best_trials"]


_TEXT = "document.body ? document.body.innerText : ''"


def test_the_dashboard_page_renders_the_study_in_chromium(dashboard: tuple[str, int, list[int]],
                                                           browser: str) -> None:
    url, study_id, _ = dashboard
    page = open_tab(browser)
    try:
        for domain in ("Runtime", "Page"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=f"{url}/dashboard/studies/{study_id}/trials")
        page.wait_for("Page.loadEventFired", timeout=60)
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:  # the page is a single-page app: it renders after fetching the API
            text = page.evaluate(_TEXT)
            if "mirror" in text and any(op in text for op in NB201_OPS):
                break
            time.sleep(0.5)
        assert "mirror" in text, text[:2000]  # the study's name
        assert any(op in text for op in NB201_OPS), text[:2000]  # a trial's decisions, by op name
        assert "nas_trial_id" in text, text[:2000]  # its user attributes
        errors = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"]
        assert not errors, errors
    finally:
        page.ws.close()
