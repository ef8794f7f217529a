"""The trial store: SQLite (WAL) in the experiment directory.

Every trial's architecture JSON, canonical hash, seed, status, score, metrics, per-epoch history, error and
traceback, worker, timings; and the experiment's config and package version. Each write is one transaction,
so a killed driver leaves a consistent file.

Every SQLite error (a corrupt, truncated or foreign file, a full disk, a read-only directory) is raised as a
:class:`~nas.core.errors.ConfigError` naming the file, what SQLite said and the fix; never as a raw
``sqlite3`` exception.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.storage.faults import fault_point
from nas.trials.trial import Result, Trial

__all__ = ["TrialStore", "StoredTrial", "StoredBaseline", "RUNNING"]

RUNNING = "RUNNING"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY, arch TEXT NOT NULL, hash TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, score REAL, metrics TEXT, info TEXT, history TEXT, error TEXT, traceback TEXT,
    worker TEXT, submitted REAL NOT NULL, finished REAL, attempts INTEGER NOT NULL DEFAULT 1, parent INTEGER
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);
"""
# Columns added to the trials table after its first version: (name, SQL type). A store written before one was added
# gets it when opened for writing (NULL in the old rows); a read-only reader of such a store reads NULL for it.
_ADDED_COLUMNS = (("parent", "INTEGER"),)
# Baselines (reference models trained beside the search, see nas.runtime.baselines) have a table of their own, made
# when the first is submitted: the search's trial table, its counts and the checkpoint cross-check never see them.
_BASELINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS baselines (
    name TEXT PRIMARY KEY, id INTEGER NOT NULL, arch TEXT NOT NULL, hash TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, score REAL, metrics TEXT, info TEXT, history TEXT, error TEXT, traceback TEXT,
    worker TEXT, submitted REAL NOT NULL, finished REAL, attempts INTEGER NOT NULL DEFAULT 1
);
"""

# Retrained winners (the weight-sharing evaluator's best candidates trained again from scratch) have a table of
# their own, made when the first is submitted: one row per search trial retrained, under that trial's id.
_RETRAINED_SCHEMA = """
CREATE TABLE IF NOT EXISTS retrained (
    id INTEGER PRIMARY KEY, arch TEXT NOT NULL, hash TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, score REAL, metrics TEXT, info TEXT, history TEXT, error TEXT, traceback TEXT,
    worker TEXT, submitted REAL NOT NULL, finished REAL, attempts INTEGER NOT NULL DEFAULT 1
);
"""

# The strategy's journal (records of history its checkpointed state leaves out, see Strategy.journal) has a table of
# its own, made when the first record is written.
_JOURNAL_SCHEMA = "CREATE TABLE IF NOT EXISTS journal (key INTEGER PRIMARY KEY, data TEXT NOT NULL);"


@dataclass(frozen=True)
class StoredTrial:
    """One row of the store."""

    id: int
    arch: Architecture
    hash: str
    seed: int
    status: str
    score: float | None
    metrics: dict[str, float]
    info: dict[str, str]
    history: list[dict[str, float]]
    error: str | None
    traceback: str | None
    worker: str | None
    submitted: float
    finished: float | None
    attempts: int
    #: the trial it was derived from (see :attr:`nas.trials.trial.Trial.parent`); None: none, or an old store
    parent: int | None = None

    @property
    def trial(self) -> Trial:
        return Trial(self.id, self.arch, self.seed, self.parent)

    def result(self) -> Result:
        return Result.from_dict({"status": self.status, "score": self.score, "metrics": self.metrics,
                                 "info": self.info, "history": self.history, "error": self.error,
                                 "traceback": self.traceback})


@dataclass(frozen=True)
class StoredBaseline(StoredTrial):
    """One row of the baselines table: a reference model trained beside the search, under its reference ``name``
    (its ``id`` is negative, ``-1`` for the first baseline of the config, and never a search trial's)."""

    name: str = field(kw_only=True)


def _file_state(*paths: Path) -> tuple[tuple[int, int, int] | None, ...]:
    """(inode, size, mtime) of each path, None for a missing one: equal before and after a copy means no
    write happened in between."""
    out: list[tuple[int, int, int] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def store_error(path: Path, err: sqlite3.Error) -> ConfigError:
    """The :class:`ConfigError` for SQLite error ``err`` on the store at ``path``: the file, SQLite's words and
    the fix (a damaged file cannot be repaired here; a full disk or a permission can)."""
    text = str(err) or type(err).__name__
    if isinstance(err, sqlite3.OperationalError) and not any(
            word in text for word in ("no such table", "no such column", "not a database", "malformed")):
        return ConfigError(f"trial store {str(path)!r} cannot be used ({text}): check the disk space and the "
                           "permissions of the file and its directory, then try again")
    return ConfigError(f"{str(path)!r} is not a readable trial store ({text}): it is corrupt, truncated or not "
                       "written by `nas search`; restore it from a backup, or start a new search in another "
                       "directory (`nas search CONFIG --out NEW_DIR`)")


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """Turn every SQLite error raised inside into :func:`store_error`."""
    try:
        yield
    except sqlite3.Error as err:
        raise store_error(path, err) from None


def _connect_readonly(path: Path, attempts: int = 3) -> sqlite3.Connection:
    """A connection reading the database at ``path`` that creates and modifies no file beside it.

    SQLite's ``mode=ro`` alone still creates the ``-wal``/``-shm`` side files of a WAL database (and rebuilds
    ``-shm`` after a writer died), so: without a ``-wal`` file every page is in the main file, which is opened
    ``immutable=1``; with one (a writer is connected, or died), the database and its WAL are copied to a
    temporary directory and read from there into memory, again if a write happened during the copy. Only if the
    files keep changing (a busy writer, whose ``-shm`` is in use anyway) is the live file opened ``mode=ro``,
    and ``immutable=1`` if that fails (a read-only directory).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no trial store at {str(path)!r}")
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    for _ in range(attempts):
        before = _file_state(path, wal)
        if before[1] is None:
            return sqlite3.connect(f"{uri}?immutable=1", uri=True)
        with tempfile.TemporaryDirectory(prefix="nas-store-") as tmp:
            copy = Path(tmp) / path.name
            try:
                shutil.copyfile(path, copy)
                shutil.copyfile(wal, copy.with_name(wal.name))
            except FileNotFoundError:  # the writer closed meanwhile: look again
                continue
            if _file_state(path, wal) != before:
                continue
            source = sqlite3.connect(copy)
            try:
                memory = sqlite3.connect(":memory:")
                source.backup(memory)
            finally:
                source.close()
            return memory
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


class TrialStore:
    """SQLite store at ``path``, created if missing (with ``create=False`` it must exist and hold the store's
    tables). With ``readonly=True`` the store must exist; it is only read, and no file is created or modified
    (see :func:`_connect_readonly`); writing raises :class:`ConfigError`. Any SQLite error, on opening or later,
    is a :class:`ConfigError` naming the file (:func:`store_error`)."""

    def __init__(self, path: str | Path, *, readonly: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if (readonly or not create) and not self.path.is_file():
            raise ConfigError(f"no trial store at {str(self.path)!r}: the file is missing; restore it from a backup, "
                              "or start a new search in another directory (`nas search CONFIG --out NEW_DIR`)")
        with _sqlite_errors(self.path):
            if readonly:
                self._db = _connect_readonly(self.path)
                self._db.execute("PRAGMA query_only=ON")
                return
            self._db = sqlite3.connect(self.path, isolation_level=None)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                if create:
                    self._db.executescript(_SCHEMA)
                elif not self.has_tables():
                    raise ConfigError(f"trial store {str(self.path)!r} holds no trial table (it is empty or not "
                                      "written by `nas search`); restore it from a backup, or start a new search in "
                                      "another directory (`nas search CONFIG --out NEW_DIR`)")
                self._migrate()
            except BaseException:
                self._db.close()
                raise

    def _trial_columns(self) -> set[str]:
        return {r[1] for r in self._db.execute("PRAGMA table_info(trials)")}

    def _migrate(self) -> None:
        """Add the columns of :data:`_ADDED_COLUMNS` that a store written by an older version lacks."""
        have = self._trial_columns()
        for name, kind in _ADDED_COLUMNS:
            if have and name not in have:
                self._db.execute(f"ALTER TABLE trials ADD COLUMN {name} {kind}")

    def has_tables(self) -> bool:
        """Whether the file holds the store's tables (an empty or foreign SQLite file does not)."""
        return {"meta", "trials"} <= self._tables()

    def _tables(self) -> set[str]:
        """The names of the file's tables (those added later, ``journal``, ``baselines``, ``retrained``, may be
        missing)."""
        return {r[0] for r in self._read("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        self._db.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        """One write (one transaction), between the testing hook's ``store.before`` and ``store.after``."""
        fault_point("store.before")
        with _sqlite_errors(self.path):
            self._db.execute(sql, params)
        fault_point("store.after")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with _sqlite_errors(self.path):
            return self._db.execute(sql, params).fetchall()

    def _record_submitted(self, table: str, trial: Trial, attempts: int, **more: Any) -> None:
        """Write ``trial`` into ``table`` as RUNNING, submitted now (replacing an earlier attempt's row), with the
        table's ``more`` columns."""
        row = {"id": trial.id, "arch": trial.arch.to_json(), "hash": trial.arch.canonical_hash(), "seed": trial.seed,
               "status": RUNNING, "submitted": time.time(), "attempts": attempts, **more}
        self._write(f"INSERT OR REPLACE INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()))

    def _record_result(self, table: str, key: str, value: Any, result: Result, worker: str | None,
                       retries: int) -> None:
        """Write ``result`` into the row of ``table`` whose ``key`` column is ``value``: status, score, metrics,
        info, history, error, traceback, worker, finish time, and ``retries`` added to ``attempts``."""
        d = result.to_dict()
        self._write(
            f"UPDATE {table} SET status=?, score=?, metrics=?, info=?, history=?, error=?, traceback=?, worker=?, "
            f"finished=?, attempts=attempts+? WHERE {key}=?",
            (d["status"], d["score"], json.dumps(d["metrics"]), json.dumps(d["info"]), json.dumps(d["history"]),
             d["error"], d["traceback"], worker, time.time(), retries, value))

    def set_meta(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return default if not rows else json.loads(rows[0][0])

    def submitted(self, trial: Trial, attempts: int = 1) -> None:
        """Record a trial as RUNNING (replacing an earlier attempt of the same id)."""
        self._record_submitted("trials", trial, attempts, parent=trial.parent)

    def finished(self, trial: Trial, result: Result, worker: str | None = None, retries: int = 0) -> None:
        """Record the result of a trial; ``retries`` are extra attempts the executor made within this
        submission (a worker died), added to ``attempts``."""
        self._record_result("trials", "id", trial.id, result, worker, retries)

    def _row(self, row: tuple[Any, ...]) -> StoredTrial:
        return StoredTrial(row[0], Architecture.from_json(row[1]), row[2], row[3], row[4], row[5],
                           json.loads(row[6] or "{}"), json.loads(row[7] or "{}"), json.loads(row[8] or "[]"),
                           row[9], row[10], row[11], row[12], row[13], row[14], *row[15:16])

    _COLUMNS = ("id, arch, hash, seed, status, score, metrics, info, history, error, traceback, worker, "
                "submitted, finished, attempts")

    @property
    def _trial_select(self) -> str:
        """The columns of a :class:`StoredTrial`, ``parent`` as NULL in a store older than it (read-only)."""
        with _sqlite_errors(self.path):
            parent = "parent" if "parent" in self._trial_columns() else "NULL"
        return f"{self._COLUMNS}, {parent}"

    def trials(self, status: str | None = None) -> list[StoredTrial]:
        """All trials (or those with ``status``), by id."""
        if status is None:
            rows = self._read(f"SELECT {self._trial_select} FROM trials ORDER BY id")
        else:
            rows = self._read(f"SELECT {self._trial_select} FROM trials WHERE status = ? ORDER BY id", (status,))
        return [self._row(r) for r in rows]

    def get(self, trial_id: int) -> StoredTrial | None:
        rows = self._read(f"SELECT {self._trial_select} FROM trials WHERE id = ?", (trial_id,))
        return None if not rows else self._row(rows[0])

    def counts(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM trials GROUP BY status"))

    def result(self, trial_id: int) -> Result | None:
        """The result recorded for trial ``trial_id`` (None if it has none yet), without parsing its
        architecture: one indexed row, whatever the size of the store."""
        rows = self._read("SELECT status, score, metrics, info, history, error, traceback FROM trials "
                          "WHERE id = ? AND status != ?", (trial_id, RUNNING))
        if not rows:
            return None
        row = rows[0]
        return Result.from_dict({"status": row[0], "score": row[1], "metrics": json.loads(row[2] or "{}"),
                                 "info": json.loads(row[3] or "{}"), "history": json.loads(row[4] or "[]"),
                                 "error": row[5], "traceback": row[6]})

    # -- the strategy's journal ------------------------------------------------------------------------------
    def write_journal(self, records: list[tuple[int, dict[str, Any]]]) -> None:
        """Append the strategy's journal ``records`` (``(key, data)``; a key written again is replaced) in one
        transaction; nothing is written for none."""
        if not records:
            return
        fault_point("store.before")
        with _sqlite_errors(self.path):
            self._db.execute(_JOURNAL_SCHEMA)
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?)",
                                     [(int(k), json.dumps(data)) for k, data in records])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        fault_point("store.after")

    def journal(self) -> list[tuple[int, dict[str, Any]]]:
        """Every journal record, by key (none in a store without the table)."""
        if "journal" not in self._tables():
            return []
        return [(k, json.loads(data)) for k, data in self._read("SELECT key, data FROM journal ORDER BY key")]

    # -- baselines ------------------------------------------------------------------------------------------
    def baseline_submitted(self, name: str, trial: Trial, attempts: int = 1) -> None:
        """Record baseline ``name`` (evaluated as ``trial``) as RUNNING, replacing an earlier attempt."""
        with _sqlite_errors(self.path):
            self._db.executescript(_BASELINE_SCHEMA)
        self._record_submitted("baselines", trial, attempts, name=name)

    def baseline_finished(self, name: str, result: Result, worker: str | None = None, retries: int = 0) -> None:
        """Record the result of baseline ``name``."""
        self._record_result("baselines", "name", name, result, worker, retries)

    def baselines(self) -> list[StoredBaseline]:
        """Every baseline recorded (none in a store without the table), in the config's order (ids -1, -2, ...)."""
        if "baselines" not in self._tables():
            return []
        rows = self._read(f"SELECT {self._COLUMNS}, name FROM baselines ORDER BY id DESC")
        out = []
        for r in rows:
            row = self._row(r[:-1])
            out.append(StoredBaseline(**{f.name: getattr(row, f.name) for f in fields(StoredTrial)}, name=r[-1]))
        return out

    def keys(self, status: str) -> list[tuple[str, str, int]]:
        """``(hash, architecture JSON, id)`` of the trials with ``status``, by id (nothing parsed): what the
        de-duplication keys a stored trial by."""
        return [(h, a, i) for h, a, i in self._read("SELECT hash, arch, id FROM trials WHERE status = ? ORDER BY id",
                                                    (status,))]
    # -- retrained winners ----------------------------------------------------------------------------------
    def retrain_submitted(self, trial: Trial, attempts: int = 1) -> None:
        """Record the retraining of search trial ``trial`` as RUNNING, replacing an earlier attempt."""
        with _sqlite_errors(self.path):
            self._db.executescript(_RETRAINED_SCHEMA)
        self._record_submitted("retrained", trial, attempts)

    def retrain_finished(self, trial_id: int, result: Result, worker: str | None = None, retries: int = 0) -> None:
        """Record the stand-alone result of retrained search trial ``trial_id``."""
        self._record_result("retrained", "id", trial_id, result, worker, retries)

    def retrained(self) -> list[StoredTrial]:
        """Every retraining recorded (none in a store without the table), by trial id."""
        if "retrained" not in self._tables():
            return []
        return [self._row(r) for r in self._read(f"SELECT {self._COLUMNS} FROM retrained ORDER BY id")]

    def hashes(self, status: str) -> list[tuple[str, int]]:
        """``(hash, id)`` of the trials with ``status``, by id (no architecture or result parsed)."""
        return [(h, i) for h, i in self._read("SELECT hash, id FROM trials WHERE status = ? ORDER BY id", (status,))]
