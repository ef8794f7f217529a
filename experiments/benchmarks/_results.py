"""Shared helpers of the benchmark scripts: machine facts and section-wise, atomic updates of RESULTS.md.

Each benchmark script owns one section of ``RESULTS.md``, delimited by ``<!-- name -->`` and
``<!-- /name -->``. :func:`update_section` replaces only that section (or appends it), under an exclusive
lock on a sidecar lock file, and writes the whole file atomically (:func:`nas.core.io.atomic_write_text`), so
a reader never sees a half-written file and two scripts finishing together do not lose each other's update.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import platform
import shlex
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import ConstantInputWarning

from nas.core.io import atomic_write_text

__all__ = ["DEFAULT_RESULTS", "HEADER", "bootstrap_interval", "command_line", "contention_note", "load_average",
           "machine_facts", "machine_facts_markdown", "utc_date", "update_section"]

DEFAULT_RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

HEADER = """# Benchmark results

Each section below is written by its own script in `experiments/benchmarks/` and is replaced (only that
section, between its `<!-- name -->` / `<!-- /name -->` markers) every time the script runs, so the figures,
the command, the date and the machine facts always belong together. Reproduce them from the repository root
with `.venv/bin/python experiments/benchmarks/synflow_nb201.py` (synflow versus NAS-Bench-201 CIFAR-10
accuracy, about a minute) and `.venv/bin/python experiments/benchmarks/train_overhead.py` (wall-clock overhead
of `nas.evaluation.training.train` over a hand-written PyTorch loop, a few minutes); `--help` lists the options and
`--no-write` prints without touching this file. Both default to 2 torch threads; on a machine shared with other
CPU-bound work pass `--threads 1` (as the commands recorded below do), because two OpenMP threads competing
with other processes for 2 cores slow these small workloads down by 10-30x.
"""


def utc_date() -> str:
    """The current UTC date and time, as ``date -u`` prints it."""
    try:
        return subprocess.run(["date", "-u"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        import datetime

        return datetime.datetime.now(datetime.timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")


def command_line() -> str:
    """The command that started this process, relative to the working directory, shell-quoted."""
    return " ".join(shlex.quote(a) for a in [_python_for_display(), *sys.argv])


def _python_for_display() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, formatted."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def contention_note(load_at_start: str, threads: int) -> str:
    """A caution when other processes were already loading the CPUs as the benchmark started, else ``""``."""
    try:
        load1 = float(load_at_start.split(",")[0])
    except ValueError:
        return ""
    cpus = os.cpu_count() or 1
    if load1 < 0.5:
        return ""
    return (f"Caution: the machine was shared: the 1-minute load average was already {load1:.2f} on {cpus} CPUs "
            f"when this run started, so wall-clock times are inflated and noisy. With {threads} torch thread(s) "
            + ("and other CPU-bound processes, OpenMP threads also wait for each other; a single thread is "
               "much less sensitive to that." if threads > 1 else
               "the run is much less sensitive to other processes than with one OpenMP thread per core (on this "
               "machine, `synflow` took about 1-2.5 s per cell with 2 threads while another process kept a core "
               "busy, against 0.04-0.08 s with 1 thread).")
            )


def machine_facts(load_at_start: str | None = None) -> dict[str, str]:
    """CPU count, CPU model, load average, torch version and thread settings of this process."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = load_average()
    if load_at_start is not None:
        load = f"{load_at_start} at the start, {load} at the end (this process included)"
    return {
        "CPU": f"{_cpu_model()}; os.cpu_count() = {os.cpu_count()}, usable by this process = {affinity}",
        "load average (1, 5, 15 min)": load,
        "torch": f"{torch.__version__}; torch.get_num_threads() = {torch.get_num_threads()}, "
                 f"interop threads = {torch.get_num_interop_threads()}",
        "OMP_NUM_THREADS / MKL_NUM_THREADS": f"{os.environ.get('OMP_NUM_THREADS', 'unset')} / "
                                             f"{os.environ.get('MKL_NUM_THREADS', 'unset')}",
        "Python": f"{platform.python_version()} on {platform.platform()}",
    }


def machine_facts_markdown(load_at_start: str | None = None) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in machine_facts(load_at_start).items())


def provenance(load_at_start: str | None = None, *, threads: int | None = None, command_note: str = "",
               date: str | None = None, version: str | None = None) -> str:
    """The **Command.** / **Date.** / **Code.** / **Machine.** paragraphs every section carries (markdown).

    ``command_note`` follows the command; ``date`` and ``version`` default to now (pass the values taken when
    the run started); with ``threads`` a contention note is added when other processes loaded the CPUs."""
    from _code_version import code_version

    lines = [f"**Command.** `{command_line()}`{command_note}", "", f"**Date.** {date or utc_date()}", "",
             f"**Code.** {version or code_version()}" + (" (when the run started)." if version else "."), "",
             "**Machine.**", machine_facts_markdown(load_at_start)]
    note = contention_note(load_at_start, threads) if threads is not None and load_at_start else ""
    if note:
        lines.append(f"- {note}")
    return "\n".join(lines)


def publish(section: str, body: str, *, write: bool = True, results: Path = DEFAULT_RESULTS) -> None:
    """Print a section and, unless ``write`` is false (``--no-write``), replace it in ``results``."""
    print(body, flush=True)
    if write:
        update_section(section, body, results)
        print(f"\nupdated section <!-- {section} --> of {results}", file=sys.stderr)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_section(name: str, body: str, path: Path = DEFAULT_RESULTS) -> None:
    """Replace (or append) the section ``name`` of ``path`` with ``body``; create the file with
    :data:`HEADER` when it is missing. Other sections are kept byte for byte."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    section = f"{start}\n{body.strip()}\n{end}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        text = path.read_text() if path.exists() else HEADER
        i, j = text.find(start), text.find(end)
        if i >= 0 and j > i:
            text = text[:i] + section + text[j + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        atomic_write_text(path, text)


def bootstrap_interval(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], Any],
                       rng: np.random.Generator, draws: int = 2000) -> tuple[float, float]:
    """The 95% percentile interval of ``statistic(a, b)[0]`` (a rank correlation of ``scipy.stats``:
    ``kendalltau``, ``spearmanr``) over ``draws`` resamples of the pairs with replacement, drawn from ``rng``; a
    resample where it is undefined (all values tied) is skipped."""
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)  # a resample of tied values: skipped below
        for _ in range(draws):
            idx = rng.integers(0, len(a), len(a))
            value = statistic(a[idx], b[idx])[0]
            if math.isfinite(value):
                values.append(value)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
