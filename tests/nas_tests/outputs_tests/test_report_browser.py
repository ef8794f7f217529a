"""The report in a real headless browser (Debian's Chromium), driven through the DevTools protocol.

Each report is loaded from its file; the test fails on any JavaScript exception, any console message of level
error or warning, any browser log entry of level error (failed loads, blocked content), and any request for
something other than the file itself or its ``data:`` images. It then checks in the page that every section
is rendered (laid out with a height), that every image decoded, and that the top-trials table sorts on a click.

The DevTools client below is the standard library only: a WebSocket (RFC 6455) over a socket, JSON messages.
Skipped when no Chromium is on PATH (``.ci/run`` installs Debian's ``chromium`` package before the tests).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from test_explain import explained_experiment
from test_report import report_file

from nas.cli import main
from nas.outputs.explain import METHODS
from nas.outputs.report.build import SECTIONS

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; "
                                                         ".ci/run installs it)")


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), text frames in (fragments joined), pings answered."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("the browser closed the connection during the WebSocket handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head.decode(errors='replace')}")

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the browser closed the DevTools connection")
            data += chunk
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._exact(8))[0]
            mask = self._exact(4) if second & 0x80 else b""
            payload = self._exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class Page:
    """One browser tab over the DevTools protocol; every event received is kept in ``events``."""

    def __init__(self, ws_url: str) -> None:
        self.ws = WebSocket(ws_url)
        self.events: list[dict[str, Any]] = []
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium with remote debugging on a free port; yields its HTTP endpoint."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],  # type: ignore[list-item]  # CHROMIUM is set: the tests skip without it
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start (exit code {proc.poll()})")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _open_tab(endpoint: str) -> Page:
    request = urllib.request.Request(f"{endpoint}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        target = json.loads(response.read())
    return Page(target["webSocketDebuggerUrl"])


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
    page = _open_tab(endpoint)
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
