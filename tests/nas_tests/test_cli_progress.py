"""The progress display: in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from nas import cli


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(n: int) -> list[str]:
    return [f"[{i}/{n}] trial {i} COMPLETE score 90.00 | best 90.00 | running 1 | failed 0 | eta 1s"
            for i in range(1, n + 1)]


def test_on_a_terminal_lines_are_rewritten_in_place(monkeypatch):
    out = _Terminal()
    monkeypatch.setattr("sys.stdout", out)
    show = cli._progress(quiet=False)
    for line in ["search s: 0/12 trials done", *_lines(12)]:
        show(line)
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 13  # every line redraws the status line
    kept = [line.split("\r\x1b[2K")[-1] for line in text.split("\n") if line]
    assert [k.split("]")[0] for k in kept] == ["search s: 0/12 trials done", "[10/12", "[12/12"]


def test_off_a_terminal_every_line_is_printed(monkeypatch, capsys):
    show = cli._progress(quiet=False)
    for line in _lines(3):
        show(line)
    assert capsys.readouterr().out.splitlines() == _lines(3)
    assert cli._progress(quiet=True) is None
