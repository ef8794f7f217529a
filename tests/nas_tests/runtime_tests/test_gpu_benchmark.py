"""``experiments/benchmarks/gpu.py``: without CUDA it says plainly that no GPU is present, exits 0 and writes nothing;
its measuring functions (the packing through Ray with fractional logical GPUs, the precision runs) work, run here on
the CPU at a tiny size so that the script is ready for a GPU node."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from _experiments import benchmark_script
from _ray import quiet_ray

from nas.evaluation.tasks import load_task

for _key, _value in (("RAY_AIR_NEW_OUTPUT", "0"), ("RAY_AUTH_MODE", "disabled"), ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)

ROOT = Path(__file__).resolve().parents[3]
BENCHMARKS = ROOT / "experiments" / "benchmarks"
SCRIPT = BENCHMARKS / "gpu.py"
TINY = ["--task", "digits", "--C", "2", "--N", "1", "--epochs", "1", "--batch-size", "64", "--trials", "3",
        "--repeats", "1", "--per-gpu", "2"]


@pytest.fixture(scope="module")
def gpu_benchmark() -> Iterator[ModuleType]:
    with benchmark_script("gpu.py") as module:  # on sys.path: it imports its siblings (_results, _code_version)
        yield module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where no GPU is present")
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(SCRIPT), "--results", str(results)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("No GPU: torch sees no CUDA device") and "Nothing was measured" in done.stdout
    assert not results.exists()


def test_the_results_section_says_it_is_not_yet_measured_here() -> None:
    text = (BENCHMARKS / "RESULTS.md").read_text()
    section = text[text.index("<!-- gpu -->"):text.index("<!-- /gpu -->")]
    assert "not yet measured here: no gpu" in section.lower() and "experiments/benchmarks/gpu.py" in section


def test_the_measuring_functions_run_at_a_tiny_size_on_the_cpu(gpu_benchmark: ModuleType) -> None:
    args = gpu_benchmark.parse_args(TINY)
    args.device = "cpu"
    task = load_task("digits", seed=0)
    runs = [gpu_benchmark.run_precision(args, task, p, "channels_last" if p == "bf16" else "contiguous")
            for p in ("fp32", "bf16")]
    assert all(r.epoch_seconds > 0 and 0 <= r.val_acc <= 100 for r in runs)
    with quiet_ray(num_cpus=2, num_gpus=1):  # one logical GPU: Ray schedules the fractions, trials use the CPU
        packings = [gpu_benchmark.run_packing(args, k, 1) for k in args.per_gpu]
    assert [(p.per_gpu, p.workers, p.trials, p.failed) for p in packings] == [(2, 2, 3, 0)]  # two workers a GPU
    assert all(p.per_gpu_hour(1) > 0 for p in packings)
    text = gpu_benchmark.report(args, 1, "a test GPU", packings, runs, "0.00, 0.00, 0.00")
    assert "| 2 | 2 |" in text and "| bf16 | channels_last |" in text and "**Command.**" in text
