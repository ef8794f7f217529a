"""Soak: a long search through the full loop, store and checkpoint, killed and resumed, against an uninterrupted run.

1. Reference: an uninterrupted search (evolution on the NAS-Bench-201 evaluator, local executor, ``--trials``
   trials) run in this process through :class:`~nas.runtime.experiment.Experiment`, timed per window of
   ``--window`` trials: wall time per trial, the strategy's share (ask + tell, the de-duplication included), the
   evaluator's share (a table lookup), and what is left: the loop's own cost (store writes, checkpoint, counts,
   progress); resident memory (VmRSS) and checkpoint size at the end of each window.
2. Killed: the same search as ``nas search`` in a subprocess, SIGKILLed ``--kills`` times at points drawn from a
   seeded RNG (when the store holds that many finished trials) and continued each time with ``nas resume``, to the
   end. Its store must hold exactly the reference's rows (id, hash, seed, status, score).

    .venv/bin/python experiments/benchmarks/soak.py                 # 10,000 trials, 4 kills (several minutes)
    .venv/bin/python experiments/benchmarks/soak.py --trials 600 --kills 2 --no-write
    .venv/bin/python experiments/benchmarks/soak.py --dedup --trials 5000 --kills 2   # its own section

With ``--dedup`` the strategy is de-duplicated (the default of real searches) and the windows also count the
duplicates rejected and the fallback samples of :class:`~strategies.dedup.Deduplicate` per trial.

``tests/nas_tests/runtime_tests/test_soak.py`` runs a short version of the killed run with these functions.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.runtime.config import parse_config
from nas.runtime.events import Event, TrialFinished
from nas.runtime.experiment import Experiment

ROOT = Path(__file__).resolve().parents[2]
SECTION = "soak"
SECTION_DEDUP = "soak_dedup"

Row = tuple[int, str, int, str, float | None]


def soak_config(trials: int, *, dedup: bool, seed: int = 0) -> dict[str, Any]:
    """The searched config: evolution (de-duplicated or not) on the nb201 space and evaluator, local executor."""
    return {"name": "soak", "seed": seed, "space": {"name": "nb201"},
            "strategy": {"name": "evolution", "dedup": dedup}, "evaluator": {"name": "nb201"},
            "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1}}


def store_rows(db: Path) -> list[Row]:
    """``(id, hash, seed, status, score)`` of every trial of the store at ``db``, by id."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, hash, seed, status, score FROM trials ORDER BY id").fetchall()
    finally:
        con.close()


def finished_count(db: Path) -> int:
    """Trials of the store at ``db`` with a result (0 while it cannot be read)."""
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM trials WHERE status != 'RUNNING'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def kill_points(trials: int, kills: int, seed: int) -> list[int]:
    """``kills`` distinct finished-trial counts at which to kill, drawn from ``seed``, away from both ends."""
    low, high = max(1, trials // 20), trials - max(1, trials // 20)
    return sorted(int(k) for k in np.random.default_rng(seed).choice(np.arange(low, high), kills, replace=False))


@dataclass
class KilledRun:
    rows: list[Row]
    killed_at: list[int] = field(default_factory=list)  # finished trials in the store right after each kill
    checkpoint_bytes: list[int] = field(default_factory=list)  # checkpoint size after each kill, then at the end
    seconds: float = 0.0


def _nas(*args: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", *args, "--quiet"]


def run_killed(config: dict[str, Any], directory: Path, points: list[int], *, timeout: float = 600.0) -> KilledRun:
    """Run ``config`` with ``nas search`` into ``directory``, SIGKILL it when the store first holds ``points[i]``
    finished trials and continue with ``nas resume``, each time; then resume to the end. Every wait is bounded by
    ``timeout`` seconds (per process)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory.parent / f"{directory.name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    db, checkpoint = directory / Experiment.STORE, directory / Experiment.CHECKPOINT
    out = KilledRun(rows=[])
    start = time.perf_counter()
    commands = [_nas("search", str(path), "--out", str(directory))] + [_nas("resume", str(directory))] * len(points)
    for command, point in zip(commands, [*points, None]):
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if point is None:
                _, err = proc.communicate(timeout=timeout)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(command[3:])} exited {proc.returncode}: {err.decode()[-2000:]}")
                break
            deadline = time.monotonic() + timeout
            while finished_count(db) < point:
                if proc.poll() is not None:
                    raise RuntimeError(f"{' '.join(command[3:])} ended before {point} trials (exit "
                                       f"{proc.returncode}): {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]  # stderr is piped
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{' '.join(command[3:])}: fewer than {point} finished trials after "
                                       f"{timeout:.0f} s")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            out.killed_at.append(finished_count(db))
            out.checkpoint_bytes.append(checkpoint.stat().st_size)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
            if proc.stderr is not None:
                proc.stderr.close()
    out.seconds = time.perf_counter() - start
    out.checkpoint_bytes.append(checkpoint.stat().st_size)
    out.rows = store_rows(db)
    return out


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Window:
    end: int
    wall_ms: float
    strategy_ms: float
    evaluator_ms: float
    rss_mb: float
    checkpoint_kb: float
    rejected: float = 0.0  # duplicates rejected per trial (de-duplicated runs)
    fallbacks: float = 0.0  # fallback samples per trial (de-duplicated runs)

    @property
    def loop_ms(self) -> float:
        return self.wall_ms - self.strategy_ms - self.evaluator_ms


def run_reference(config: dict[str, Any], directory: Path, window: int) -> tuple[list[Row], list[Window]]:
    """The uninterrupted search, in this process, measured per window of ``window`` trials."""
    exp = Experiment.create(parse_config(config), directory)
    spent = {"strategy": 0.0, "evaluator": 0.0}

    def timed(obj: Any, name: str, bucket: str) -> None:
        method = getattr(obj, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[bucket] += time.perf_counter() - t0

        setattr(obj, name, wrapper)

    timed(exp.strategy, "ask", "strategy")
    timed(exp.strategy, "tell", "strategy")
    timed(exp.evaluator, "evaluate", "evaluator")
    windows: list[Window] = []
    last = {"t": time.perf_counter(), "strategy": 0.0, "evaluator": 0.0, "skipped": 0.0, "fallbacks": 0.0}

    def dedup_counts() -> dict[str, float]:
        return {name: float(getattr(exp.strategy, name, 0)) for name in ("skipped", "fallbacks")}

    def progress(event: Event) -> None:
        if not isinstance(event, TrialFinished) or event.n % window:
            return
        now = time.perf_counter()
        n = window
        windows.append(Window(event.n, 1e3 * (now - last["t"]) / n, 1e3 * (spent["strategy"] - last["strategy"]) / n,
                              1e3 * (spent["evaluator"] - last["evaluator"]) / n, _rss_mb(),
                              (directory / exp.CHECKPOINT).stat().st_size / 1024,
                              *((v - last[k]) / n for k, v in dedup_counts().items())))
        last.update(t=time.perf_counter(), **spent, **dedup_counts())
        print(f"  reference: {event.n} trials, {windows[-1].wall_ms:.1f} ms/trial", file=sys.stderr, flush=True)

    exp.run(progress=progress)
    exp.close()
    return store_rows(directory / Experiment.STORE), windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--window", type=int, default=1000, help="trials per measured window")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--dedup", action="store_true",
                        help="de-duplicate (the default of real searches); written to its own section")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load, date, version = load_average(), utc_date(), code_version()
    config = soak_config(args.trials, dedup=args.dedup)
    points = kill_points(args.trials, args.kills, args.seed)
    with tempfile.TemporaryDirectory(prefix="nas-soak-") as tmp:
        start = time.perf_counter()
        reference, windows = run_reference(config, Path(tmp) / "reference", args.window)
        reference_seconds = time.perf_counter() - start
        killed = run_killed(config, Path(tmp) / "killed", points)
    same = killed.rows == reference
    complete = [r[0] for r in reference] == sorted({r[0] for r in reference}) and len(reference) == args.trials
    steady = windows[1:] or windows
    extra = (lambda w: f" {w.rejected:.1f} | {w.fallbacks:.2f} |") if args.dedup else (lambda w: "")
    table = "\n".join(f"| {w.end - args.window:,}-{w.end:,} | {w.wall_ms:.1f} | {w.strategy_ms:.1f} | "
                      f"{w.evaluator_ms:.2f} | **{w.loop_ms:.1f}** | {w.rss_mb:.0f} | {w.checkpoint_kb:.1f} |"
                      + extra(w) for w in windows)
    header = ("| trials | wall (ms/trial) | strategy (ms/trial) | evaluator (ms/trial) | **loop (ms/trial)** "
              "| RSS MB | ckpt KB |"
              + (" rejected duplicates per trial | fallback samples per trial |" if args.dedup else "")
              + "\n|---|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.dedup else ""))
    dedup_note = ("""
**De-duplication.** `Deduplicate` re-asks the strategy while it proposes duplicates: for the first 1,000
proposals as it always did (up to 200 times in a row), after them from a reserve of 2,000 re-asks that every
proposal refills by 10; once the reserve is spent it draws up to 20 uniform samples of the space instead (the
first new one is the trial), and lets a duplicate through only when those are known too (module docstring of
`strategies/dedup.py`). The strategy column is where that cost shows: it must stay flat after the warm-up,
however many trials came before.
""" if args.dedup else "")
    title = f"Soak{' with de-duplication' if args.dedup else ''}"
    script = f"soak.py{' --dedup' if args.dedup else ''}"
    body = f"""## {title}: {args.trials:,} trials, killed and resumed {args.kills} times (`{script}`)

**What was measured.** Evolution ({'with' if args.dedup else 'without'} de-duplication) on the NAS-Bench-201
space and evaluator (a table lookup), local executor, {args.trials:,} trials through `Experiment` (store, one
checkpoint per trial, log). (1) Uninterrupted, in the benchmark process, per window of {args.window:,} trials:
wall time per trial, the strategy's share (ask + tell), the evaluator's, and the rest, which is the loop's own
cost (store writes, checkpoint, progress); resident memory and checkpoint size at the window's end. (2) The same
search as `nas search` in a subprocess, SIGKILLed when the store held {', '.join(f'{p:,}' for p in points)}
finished trials (points drawn from seed {args.seed}) and continued with `nas resume` each time.

{provenance(load, date=date, version=version)}

**Figures.**

{header}
{table}
{dedup_note}
- Killed run: {'**identical** to the uninterrupted run' if same else '**DIFFERENT** from the uninterrupted run'}
  ({len(killed.rows):,} rows: id, hash, seed, status, score{'' if complete else '; ids NOT complete'}); killed
  with {', '.join(f'{k:,}' for k in killed.killed_at)} finished trials in the store; checkpoint size after each kill
  and at the end: {', '.join(f'{b / 1024:.1f}' for b in killed.checkpoint_bytes)} KB.
- Loop cost, windows after the first: {min(w.loop_ms for w in steady):.1f}-{max(w.loop_ms for w in steady):.1f}
  ms per trial; RSS {min(w.rss_mb for w in steady):.0f}-{max(w.rss_mb for w in steady):.0f} MB.
- Wall time: {reference_seconds:.0f} s uninterrupted, {killed.seconds:.0f} s killed and resumed (each restart pays
  the start-up of `nas`).
"""
    publish(SECTION_DEDUP if args.dedup else SECTION, body, write=not args.no_write)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
