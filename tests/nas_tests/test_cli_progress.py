"""The progress display: in place on a terminal, plain lines elsewhere; what stays on screen is decided from the
events' fields."""

from __future__ import annotations

import io

from nas import cli
from nas.runtime.events import JobEpoch, SearchStarted, TrialFinished
from nas.trials.trial import Status


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _events(n: int) -> list[TrialFinished]:
    return [TrialFinished(n=i, max_trials=n, trial_id=i, status=Status.COMPLETE, score=90.0, error=None, best=90.0,
                          running=1, failed=0, eta=1.0) for i in range(1, n + 1)]


def _lines(n: int) -> list[str]:
    return [f"[{i}/{n}] trial {i} COMPLETE score 90.00 | best 90.00 | running 1 | failed 0 | eta 1s"
            for i in range(1, n + 1)]


def test_on_a_terminal_lines_are_rewritten_in_place(monkeypatch):
    out = _Terminal()
    monkeypatch.setattr("sys.stdout", out)
    show = cli._progress(quiet=False)
    start = SearchStarted(name="s", done=0, max_trials=12, rerun=0, executor="local")
    epoch = JobEpoch(name="supernet", epoch=1, epochs=3, figures="train acc 50.0")
    for event in [start, epoch, *_events(12)]:
        show(event)
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 14  # every line redraws the status line
    kept = [line.split("\r\x1b[2K")[-1] for line in text.split("\n") if line]
    assert kept == ["search s: 0/12 trials done, 0 to run again, executor local",
                    "supernet epoch 1/3: train acc 50.0", _lines(12)[9], _lines(12)[11]]


def test_off_a_terminal_every_line_is_printed(monkeypatch, capsys):
    show = cli._progress(quiet=False)
    for event in _events(3):
        show(event)
    assert capsys.readouterr().out.splitlines() == _lines(3)
    quiet = cli._progress(quiet=True)  # --quiet: the progress lines are dropped, only warnings reach stderr
    assert quiet is not None
    for event in _events(3):
        quiet(event)
    assert capsys.readouterr() == ("", "")
