"""Data already written is never lost or overwritten (nas.storage.store, .integrity, .experiment, .faults):
a resume refuses a store that disagrees with the checkpoint (missing, empty, older, newer, foreign) and changes
nothing; a corrupt or truncated store is exit 2 naming the file for resume, status, report and export; creation
is staged and renamed into place; stray temp files go on the next open; and a search SIGKILLed before or after
any store write, checkpoint replace, config write or stage rename resumes to the history of an uninterrupted run.

The kills are real: a forked child runs ``nas search`` / ``nas resume`` with ``NAS_FAULT_AT`` set and the hook of
:mod:`nas.storage.faults` sends it SIGKILL (forked, not spawned, so that no case pays for importing torch again);
one case runs a fresh ``python -m nas.cli`` to prove the environment variable alone arms the hook."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _experiments import killed_at, run_experiment, write_config

from nas.cli import main
from nas.core.errors import ConfigError
from nas.core.io import remove_stray_temps
from nas.runtime.experiment import Experiment
from nas.storage.checkpoint import read_checkpoint
from nas.storage.faults import FAULT_ENV, POINTS
from nas.storage.integrity import remove_stale_stages, stale_stages
from nas.storage.lock import ExperimentLock
from nas.storage.store import TrialStore

N = 6
CONFIG = {"name": "integrity", "seed": 3, "space": {"name": "nb201"},
          "strategy": {"name": "evolution", "options": {"population": 3, "sample_size": 2}},
          "evaluator": {"name": "nb201"}, "budget": {"max_trials": N},
          "execution": {"executor": "local", "workers": 1}}

Rows = list[tuple[int, str, int, str, float | None]]


def rows(directory: Path) -> Rows:
    """The store's history: (id, hash, seed, status, score) by id."""
    store = TrialStore(directory / "trials.db", readonly=True)
    try:
        return [(t.id, t.hash, t.seed, t.status, t.score) for t in store.trials()]
    finally:
        store.close()


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory``, bytes (the store's WAL side files included)."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def run(directory: Path, max_trials: int = N) -> None:
    run_experiment({**CONFIG, "budget": {"max_trials": max_trials}}, directory)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Uninterrupted runs of N and N + 3 trials."""
    out = {}
    for n in (N, N + 3):
        out[n] = tmp_path_factory.mktemp(f"straight{n}") / "exp"
        run(out[n], n)
    return out


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


@pytest.fixture
def finished(straight: dict[int, Path], tmp_path: Path) -> Path:
    """A copy of the finished N-trial experiment."""
    shutil.copytree(straight[N], tmp_path / "exp")
    return tmp_path / "exp"


# -- store and checkpoint must agree -----------------------------------------------------------------------------
def _older_store(d: Path, tmp: Path) -> None:
    """The store as it was after 3 trials, with the checkpoint of the end."""
    early = tmp / "early"
    run(early, 3)
    shutil.copy(early / "trials.db", d / "trials.db")


def _older_checkpoint(d: Path, tmp: Path) -> None:
    early = tmp / "early"
    run(early, 3)
    shutil.copy(early / "checkpoint.json", d / "checkpoint.json")


def _foreign_store(d: Path, tmp: Path) -> None:
    """A store of another experiment with as many trials (another seed: other architectures)."""
    other = tmp / "other"
    run_experiment({**CONFIG, "seed": 99}, other)
    shutil.copy(other / "trials.db", d / "trials.db")
    with sqlite3.connect(d / "trials.db") as con:  # and one of its trials still pending in our checkpoint
        con.execute("UPDATE trials SET status = 'RUNNING' WHERE id = 5")
    con.close()


def _lost_rows(d: Path, tmp: Path) -> None:
    with sqlite3.connect(d / "trials.db") as con:
        con.execute("DELETE FROM trials WHERE id >= 2")
    con.close()


def _empty_tables(d: Path, tmp: Path) -> None:
    (d / "trials.db").unlink()
    sqlite3.connect(d / "trials.db").close()  # a valid SQLite file without the store's tables


DISAGREEING = {
    "missing store": (lambda d, tmp: (d / "trials.db").unlink(), "missing"),
    "empty file": (lambda d, tmp: (d / "trials.db").write_bytes(b""), "empty"),
    "empty database": (_empty_tables, "empty"),
    "store of an earlier moment": (_older_store, "disagree"),
    "checkpoint of an earlier moment": (_older_checkpoint, "disagree"),
    "rows deleted": (_lost_rows, "disagree"),
    "store of another experiment": (_foreign_store, "disagree"),
}


@pytest.mark.parametrize("case", sorted(DISAGREEING))
def test_resume_refuses_a_store_that_disagrees_with_the_checkpoint_and_changes_nothing(
        finished: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    damage, needle = DISAGREEING[case]
    damage(finished, tmp_path)
    before = snapshot(finished)
    for argv in (["resume", str(finished)], ["resume", str(finished), "--max-trials", str(N + 4)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert needle in err and "trials.db" in err and "Traceback" not in err
        assert snapshot(finished) == before  # best.json, checkpoint, config and store untouched
    with pytest.raises(ConfigError, match=needle):
        Experiment.open(finished)
    ExperimentLock.acquire(finished).release()  # the refused opens released the lock


def test_a_consistent_experiment_still_resumes_and_extends(finished: Path, straight: dict[int, Path]) -> None:
    assert main(["resume", str(finished), "--quiet", "--max-trials", str(N + 3)]) == 0
    assert rows(finished) == rows(straight[N + 3])


# -- a corrupt store is exit 2 naming the file, from every command ------------------------------------------------
CORRUPT = {
    "text": lambda p: p.write_text("not a database"),
    "zeroed header": lambda p: p.write_bytes(b"\0" * 100 + p.read_bytes()[100:]),
    "truncated to 100 bytes": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "truncated to half": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "random bytes": lambda p: p.write_bytes(os.urandom(8192)),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
@pytest.mark.parametrize("command", ["resume", "status", "export", "report"])
def test_a_corrupt_store_is_exit_2_naming_the_file(finished: Path, tmp_path: Path, case: str, command: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    store = finished / "trials.db"
    CORRUPT[case](store)
    before = snapshot(finished)
    extra = {"export": ["--out", str(tmp_path / "x"), "--quiet"], "report": ["--out", str(tmp_path / "r.html")]}
    argv = [command, str(finished), *extra.get(command, [])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(store) in err and "Traceback" not in err
    assert ("not a readable trial store" in err) or ("disagree" in err) or ("empty" in err)
    assert snapshot(finished) == before  # status (and every other command) created and changed nothing


def test_store_errors_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trials.db"
    path.write_text("garbage " * 200)
    for readonly in (True, False):
        with pytest.raises(ConfigError, match="not a readable trial store") as info:
            TrialStore(path, readonly=readonly).counts()
        assert str(path) in str(info.value) and "nas search" in str(info.value)
    with pytest.raises(ConfigError, match="missing"):
        TrialStore(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


# -- stray temp files and interrupted creations -------------------------------------------------------------------
def test_stray_temp_files_are_removed_on_the_next_open(finished: Path) -> None:
    strays = [finished / ".checkpoint.json.abc123.tmp", finished / ".config.yaml.q_9.tmp",
              finished / ".best.json.zz.tmp"]
    (finished / "supernet").mkdir()
    strays.append(finished / "supernet" / ".history.json.k1.tmp")
    keep = [finished / ".hidden", finished / "notes.tmp", finished / ".x.tmp"]
    for p in strays + keep:
        p.write_text("half a file")
    exp = Experiment.open(finished)
    exp.close()
    assert not [p for p in strays if p.exists()]
    assert all(p.exists() for p in keep)
    assert remove_stray_temps(finished / "nowhere") == []


def test_an_interrupted_creation_leaves_nothing_in_the_way(tmp_path: Path, config_file: Path,
                                                           straight: dict[int, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    leftover = tmp_path / ".exp.stage-dead1"  # what a killed `nas search --out exp` left: a stage, no exp
    leftover.mkdir()
    (leftover / "config.yaml").write_text("half")
    live = tmp_path / ".exp.stage-live1"  # a creation under way in another process: locked, left alone
    live.mkdir()
    lock = ExperimentLock.acquire(live)
    try:
        assert main(["resume", str(out)]) == 2
        assert "killed while creating it" in capsys.readouterr().err
        assert main(["search", str(config_file), "--out", str(out), "--quiet"]) == 0
        assert not leftover.exists() and live.exists()
        assert rows(out) == rows(straight[N])
    finally:
        lock.release()
    assert remove_stale_stages(out) == [live] and stale_stages(out) == []


def test_creation_builds_first_and_a_bad_output_path_is_exit_2(tmp_path: Path, config_file: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["search", str(config_file), "--out", str(blocker / "exp")]) == 2
    assert "cannot be created" in capsys.readouterr().err
    assert main(["search", str(config_file), "--out", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty directory is taken
    assert main(["search", str(config_file), "--out", str(empty), "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "search.yaml"]  # no stage left


# -- SIGKILL at every write point, then resume ------------------------------------------------------------------
def finish(out: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Carry on as a user would: resume; if the kill came before the experiment existed, search again."""
    if (out / "config.yaml").exists():
        assert main(["resume", str(out), "--quiet"]) == 0
    else:
        assert main(["resume", str(out)]) == 2
        assert "killed while creating it" in capsys.readouterr().err
        assert main(["search", str(config_file), "--out", str(out), "--quiet"]) == 0


def check_like(out: Path, expected: Path) -> None:
    assert rows(out) == rows(expected)
    assert (out / "best.json").read_bytes() == (expected / "best.json").read_bytes()
    assert read_checkpoint(out / "checkpoint.json")["strategy"] == read_checkpoint(expected / "checkpoint.json")[
        "strategy"]
    assert not [p.name for p in out.rglob("*.tmp")]
    assert not (out / "lock.json").exists()
    assert stale_stages(out) == []


#: passes of each point in an N-trial search: config 1, stage 1, store 4 at start-up + 2 per trial, checkpoint 1 at
#: start-up + 1 per ask (one trial per ask with the local executor) + 1 at the end; every one of them is killed
PASSES = {"store.before": 4 + 2 * N, "store.after": 4 + 2 * N, "checkpoint.before": 2 + N,
          "checkpoint.after": 2 + N, "config.before": 1, "config.after": 1, "stage.before": 1, "stage.after": 1}
KILLS = [f"{point}:{n}" for point, total in PASSES.items() for n in range(1, total + 1)]


def test_the_kills_cover_every_pass_of_every_point(tmp_path: Path, config_file: Path,
                                                   straight: dict[int, Path]) -> None:
    assert set(PASSES) == set(POINTS)
    for point, total in PASSES.items():  # one pass more than counted: the search runs to its end
        out = tmp_path / point
        assert not killed_at(["search", str(config_file), "--out", str(out), "--quiet"], f"{point}:{total + 1}")
        check_like(out, straight[N])


@pytest.mark.parametrize("spec", KILLS)
def test_a_search_killed_at_a_write_point_resumes_to_the_uninterrupted_history(
        spec: str, tmp_path: Path, config_file: Path, straight: dict[int, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    assert killed_at(["search", str(config_file), "--out", str(out), "--quiet"], spec)
    finish(out, config_file, capsys)
    check_like(out, straight[N])


@pytest.mark.parametrize("spec", ["config.before:1", "config.after:1", "store.after:1", "checkpoint.before:3"])
def test_an_extension_killed_at_a_write_point_resumes_to_the_uninterrupted_history(
        spec: str, finished: Path, config_file: Path, straight: dict[int, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    assert killed_at(["resume", str(finished), "--quiet", "--max-trials", str(N + 3)], spec)
    assert main(["resume", str(finished), "--quiet", "--max-trials", str(N + 3)]) == 0
    check_like(finished, straight[N + 3])


def test_killed_and_resumed_several_times(tmp_path: Path, config_file: Path, straight: dict[int, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    assert killed_at(["search", str(config_file), "--out", str(out), "--quiet"], "checkpoint.after:4")
    for spec in ("store.before:2", "checkpoint.before:2", "store.after:3"):
        assert killed_at(["resume", str(out), "--quiet"], spec)
    finish(out, config_file, capsys)
    check_like(out, straight[N])


def test_the_hook_is_armed_by_the_environment_of_a_fresh_process(tmp_path: Path, config_file: Path,
                                                                straight: dict[int, Path],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    env = {**os.environ, FAULT_ENV: "checkpoint.before:4", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(config_file), "--out", str(out), "--quiet"],
                          env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [p.name for p in out.glob(".checkpoint.json.*.tmp")]  # the temp file the kill left
    assert (out / "lock.json").exists()  # left by the killed holder: harmless, its flock died with it
    finish(out, config_file, capsys)
    check_like(out, straight[N])
