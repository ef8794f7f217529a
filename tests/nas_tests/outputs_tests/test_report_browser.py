"""The report in a real headless browser (Debian's Chromium), driven through the DevTools protocol.

Each report is loaded from its file; the test fails on any JavaScript exception, any console message of level
error or warning, any browser log entry of level error (failed loads, blocked content), and any request for
something other than the file itself or its ``data:`` images. It then checks in the page that every section
is rendered (laid out with a height), that every image decoded, and that the top-trials table sorts on a click.

The DevTools client (``tests/devtools.py``) is the standard library only: a WebSocket (RFC 6455) over a socket,
JSON messages. Skipped when no Chromium is on PATH (``.ci/run`` installs Debian's ``chromium`` package before the
tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools import Page, chromium, needs_chromium, open_tab
from test_explain import explained_experiment
from test_report import report_file

from nas.cli import main
from nas.outputs.explain import METHODS
from nas.outputs.report.build import SECTIONS

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium with remote debugging on a free port; yields its HTTP endpoint."""
    yield from chromium(tmp_path_factory.mktemp("chromium-profile"))


_CHECK = """
(async () => {
  await Promise.all(Array.from(document.images).map(img => img.decode().catch(() => null)));
  const sections = {};
  for (const section of document.querySelectorAll("main > section")) {
    const imgs = Array.from(section.querySelectorAll("img"));
    sections[section.id] = {
      height: section.getBoundingClientRect().height,
      heading: section.querySelector("h2") ? section.querySelector("h2").textContent : null,
      images: imgs.length,
      decoded: imgs.filter(img => img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0)
                   .length,
    };
  }
  return {title: document.title, sections: sections};
})()
"""

_SORT = """
(() => {
  const table = document.querySelector("#top table.sortable");
  const column = Array.from(table.tHead.rows[0].cells).findIndex(th => th.textContent === "trial");
  const ids = () => Array.from(table.tBodies[0].rows).map(row => Number(row.cells[column].textContent));
  const before = ids();
  table.tHead.rows[0].cells[column].click();
  const once = ids();
  table.tHead.rows[0].cells[column].click();
  return {before: before, ascending: once, descending: ids()};
})()
"""


def _problems(events: list[dict[str, Any]], url: str) -> list[str]:
    """Exceptions, console errors and warnings, error log entries and foreign requests among ``events``."""
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(f"exception: {params['exceptionDetails']}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
            out.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            out.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url and not requested.startswith("data:"):
                out.append(f"request for {requested}")
    return out


def _load(endpoint: str, path: Path) -> tuple[Page, dict[str, Any]]:
    page = open_tab(endpoint)
    for domain in ("Runtime", "Log", "Page", "Network"):
        page.call(f"{domain}.enable")
    url = path.resolve().as_uri()
    page.call("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired")
    state = page.evaluate(_CHECK)
    problems = _problems(page.events, url)
    assert not problems, f"{path.name}: {problems}"
    return page, state


@pytest.mark.parametrize("kind", ["nb201", "rnn"])
def test_the_report_loads_cleanly_and_shows_every_section(kind: str, browser: str,
                                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    path = report_file(kind, tmp_path_factory)
    page, state = _load(browser, path)
    try:
        assert state["title"].startswith("nasgraph report: report-")
        assert list(state["sections"]) == [sid for sid, _ in SECTIONS]
        for sid, title in SECTIONS:
            shown = state["sections"][sid]
            assert shown["heading"] == title
            assert shown["height"] > 40, (sid, shown)
            assert shown["decoded"] == shown["images"], (sid, shown)
        images = {sid: s["images"] for sid, s in state["sections"].items()}
        assert images["progress"] == images["tradeoffs"] == 1 and images["cells"] == 3 and images["ops"] == 2
        assert images["gradcam"] == (1 if kind == "nb201" else 0)
        assert images["explain"] == 0  # no `nas explain` was run: the section says so
        order = page.evaluate(_SORT)
        assert order["ascending"] == sorted(order["before"]) and order["descending"] == sorted(order["before"])[::-1]
        assert not _problems(page.events, path.resolve().as_uri())  # sorting raised nothing either
    finally:
        page.ws.close()


def test_a_report_with_the_shap_panel_and_explanations_loads_cleanly(
        browser: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = explained_experiment(tmp_path_factory)
    path = directory / "report-explained.html"
    assert main(["report", str(directory), "--out", str(path), "--no-gradcam"]) == 0
    page, state = _load(browser, path)
    try:
        for sid, title in SECTIONS:
            shown = state["sections"][sid]
            assert shown["heading"] == title and shown["height"] > 40, (sid, shown)
            assert shown["decoded"] == shown["images"], (sid, shown)
        assert state["sections"]["ops"]["images"] == 3  # op frequency, fANOVA, SHAP
        assert state["sections"]["explain"]["images"] == len(METHODS)
    finally:
        page.ws.close()


def test_a_broken_page_is_caught(browser: str, tmp_path: Path) -> None:
    """The checks above can fail: an exception, a console error and a remote resource are all reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><main><section id="x"><h2>x</h2><img src="missing.png"></section>'
                   '</main><script>console.error("boom"); undefinedFunction();</script></body></html>')
    with pytest.raises(AssertionError) as caught:
        _load(browser, bad)
    text = str(caught.value)
    assert "undefinedFunction is not defined" in text and "console.error: ['boom']" in text
    assert "missing.png" in text
