"""The trial store (nas.storage.store): SQLite in WAL mode, every field of a trial round-trips, rows are replaced on a
new attempt, and a second connection (another process, `nas status`) reads while the store is open."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from nas.storage.store import RUNNING, TrialStore
from nas.trials.trial import Result, Status, Trial
from search_spaces import get_space

SPACE = get_space("nb201")


def _trials(n: int) -> list[Trial]:
    rng = np.random.default_rng(0)
    return [Trial(i, SPACE.sample(rng), seed=1000 + i) for i in range(n)]


@pytest.fixture
def store(tmp_path: Path):
    s = TrialStore(tmp_path / "trials.db")
    yield s
    s.close()


def test_wal_mode_is_on(store: TrialStore) -> None:
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = sqlite3.connect(store.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    finally:
        other.close()


def test_every_field_round_trips(store: TrialStore) -> None:
    complete, failed = _trials(2)
    result = Result(Status.COMPLETE, score=91.5,
                    metrics={"val_acc": 91.5, "test_acc": 90.25, "params": 12345.0, "val_loss": math.nan},
                    info={"signal": "validation accuracy", "device": "cpu"},
                    history=[{"epoch": 1.0, "val_acc": 80.0}, {"epoch": 2.0, "val_acc": 91.5, "loss": math.inf}])
    store.submitted(complete)
    store.submitted(failed)
    store.finished(complete, result, worker="host:123:gpu0")
    store.finished(failed, Result.failed("RuntimeError: boom", traceback="Traceback (most recent call last):\n  x"))

    a, b = store.trials()
    assert (a.id, a.seed, a.status, a.score) == (0, 1000, "COMPLETE", 91.5)
    assert a.arch == complete.arch and a.hash == complete.arch.canonical_hash()
    assert a.trial == complete
    assert a.metrics["params"] == 12345.0 and a.metrics["val_loss"] is None  # non-finite stored as null
    assert a.info == {"signal": "validation accuracy", "device": "cpu"}
    assert a.history == [{"epoch": 1.0, "val_acc": 80.0}, {"epoch": 2.0, "val_acc": 91.5, "loss": None}]
    assert a.error is None and a.traceback is None and a.worker == "host:123:gpu0"
    assert a.finished is not None and a.finished >= a.submitted and a.attempts == 1

    back = a.result()
    assert back.status is Status.COMPLETE and back.score == 91.5
    assert math.isnan(back.metrics["val_loss"])
    assert math.isnan(back.history[1]["loss"])  # a non-finite number comes back as NaN

    assert (b.status, b.score, b.error) == ("FAILED", None, "RuntimeError: boom")
    assert b.traceback.startswith("Traceback") and b.worker is None
    assert b.result().status is Status.FAILED and b.result().error == "RuntimeError: boom"


def test_status_queries_counts_and_attempts(store: TrialStore) -> None:
    trials = _trials(4)
    for t in trials:
        store.submitted(t)
    store.finished(trials[0], Result(Status.COMPLETE, score=1.0))
    store.finished(trials[1], Result.failed("x"))
    store.finished(trials[2], Result(Status.PRUNED, score=0.5, error="pruned by the scheduler"))
    assert store.counts() == {"COMPLETE": 1, "FAILED": 1, "PRUNED": 1, RUNNING: 1}
    assert [t.id for t in store.trials(RUNNING)] == [3]
    assert [t.id for t in store.trials("COMPLETE")] == [0]
    assert store.get(99) is None and store.get(2).status == "PRUNED"

    store.submitted(trials[3], attempts=2)  # a resubmitted trial replaces its row, never duplicates it
    assert [t.id for t in store.trials()] == [0, 1, 2, 3]
    assert store.get(3).attempts == 2 and store.get(3).status == RUNNING


def test_meta_and_persistence_across_connections(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    store = TrialStore(path)
    store.set_meta("config", {"name": "x", "budget": {"max_trials": 3}})
    store.set_meta("version", "1.2.3")
    (trial,) = _trials(1)
    store.submitted(trial)
    store.finished(trial, Result(Status.COMPLETE, score=2.0, metrics={"val_acc": 2.0}))

    reader = sqlite3.connect(path)  # another process's view while the writer is open
    try:
        assert reader.execute("SELECT id, status, score FROM trials").fetchall() == [(0, "COMPLETE", 2.0)]
    finally:
        reader.close()
    store.close()

    again = TrialStore(path)  # reopening (resume) keeps everything; the schema is not recreated
    try:
        assert again.meta("config") == {"name": "x", "budget": {"max_trials": 3}}
        assert again.meta("version") == "1.2.3" and again.meta("missing", 7) == 7
        assert again.trials()[0].arch == trial.arch and again.counts() == {"COMPLETE": 1}
    finally:
        again.close()


def test_the_strategy_journal_appends_replaces_by_key_and_reads_back_in_key_order(tmp_path: Path) -> None:
    store = TrialStore(tmp_path / "trials.db")
    assert store.journal() == []  # no table yet
    store.write_journal([])  # nothing to write: no table made
    assert "journal" not in {r[0] for r in store._read("SELECT name FROM sqlite_master")}
    store.write_journal([(2, {"v": [1.5]}), (0, {"v": None})])
    store.write_journal([(1, {"v": "x"}), (2, {"v": [2.5]})])  # key 2 again: replaced
    assert store.journal() == [(0, {"v": None}), (1, {"v": "x"}), (2, {"v": [2.5]})]
    store.close()
    reader = TrialStore(tmp_path / "trials.db", readonly=True)
    assert [k for k, _ in reader.journal()] == [0, 1, 2]
    reader.close()
