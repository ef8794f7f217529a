"""Export and report: time per format, file sizes and the largest output difference of every exported file
reloaded in a fresh process, for one small real experiment per op family, and the time to write the HTML
report. Writes the section ``export-report`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/export_report.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish

from nas.outputs.export import export_experiment
from nas.outputs.report.build import ReportOptions, build_report
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

#: (label, space, task, trials) -- one experiment per op family
EXPERIMENTS = [
    ("conv: nb201 on digits", {"name": "nb201", "options": {"C": 8, "N": 1}}, "digits", 8),
    ("attention + recurrent: transformer on italy_power",
     {"name": "transformer", "options": {"d_model": 16, "num_cells": 1}}, "italy_power", 6),
    ("recurrent: rnn (DARTS-RNN cell, LSTM, GRU) on italy_power",
     {"name": "rnn", "options": {"d_model": 16, "steps": 4, "num_layers": 1}}, "italy_power", 6),
]
FORMATS = ("torchscript", "onnx", "python", "json+weights")
HEADER = ("| experiment | models | export s | s per model: TS / ONNX / py | verify s per model "
          "| max abs diff: TS / ONNX / py / JSON | all verified | rank-1 test acc | KiB: weights / ONNX / py |\n"
          "|---|---:|---:|---|---:|---|---|---|---|")


def run_experiment(directory: Path, space: dict[str, Any], task: str, trials: int) -> None:
    cfg = parse_config({"name": "bench", "seed": 0, "space": space, "strategy": "random",
                        "evaluator": {"name": "train", "task": task, "train": {"epochs": 4, "batch_size": 64}},
                        "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1}})
    exp = Experiment.create(cfg, directory)
    try:
        exp.run()
    finally:
        exp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    rows, report_line = [], ""
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, space, task, trials) in enumerate(EXPERIMENTS):
            directory = Path(tmp) / f"exp{i}"
            run_experiment(directory, space, task, trials)
            result = export_experiment(directory, top=args.top)
            models = result.manifest["models"]
            files = [m["files"] for m in models]
            checks = [m["verification"]["formats"] for m in models]
            diff = {f: max(c[f]["max_abs_diff"] for c in checks) for f in FORMATS}
            seconds = {f: sum(fl[f]["seconds"] for fl in files) / len(files) for f in ("torchscript", "onnx",
                                                                                          "python")}
            kib = {f: sum(fl[f]["bytes"] for fl in files) / len(files) / 1024 for f in ("weights", "onnx", "python")}
            verify = sum(m["verification"]["seconds"] for m in models) / len(models)
            ok = all(m["verification"]["ok"] for m in models)
            accs = {round(c[f]["test_acc"], 2) for c in checks[:1] for f in FORMATS}
            rows.append(f"| {label} | {len(models)} | {result.seconds:.1f} | {seconds['torchscript']:.2f} / "
                        f"{seconds['onnx']:.2f} / {seconds['python']:.2f} | {verify:.1f} | "
                        + " / ".join(f"{diff[f]:.1e}" for f in FORMATS)
                        + f" | {'yes' if ok else 'NO'} | {', '.join(str(a) for a in sorted(accs))} | "
                        f"{kib['weights']:.0f} / {kib['onnx']:.0f} / {kib['python']:.0f} |")
            if i == 0:
                t = time.perf_counter()
                rep = build_report(directory, options=ReportOptions())
                quick = build_report(directory, Path(tmp) / "quick.html", ReportOptions(gradcam=False))
                report_line = (f"`nas report` on the conv experiment ({EXPERIMENTS[0][3]} trials, Grad-CAM from the "
                               f"export): {rep.seconds:.1f} s, {rep.path.stat().st_size / 1024:.0f} KiB; without "
                               f"Grad-CAM {quick.seconds:.1f} s (both: {time.perf_counter() - t:.1f} s).")
    body = f"""## Export and report (`export_report.py`)

**What was measured.** One small real experiment per op family (random search, {args.top}+ trials of 4 epochs,
local executor), then `nas export --top {args.top}` in all formats: each of the top {args.top} trials is trained
again as in the search, written as JSON, weights, TorchScript, ONNX and a standalone `model.py`, and every file
is reloaded in a fresh process (TorchScript, ONNX and `model.py` with the framework blocked from importing) and
run on the whole test split. Per experiment: total export time (training included), mean export time per model
of TorchScript / ONNX / `model.py`, mean verification time per model (all its files, fresh processes included),
the largest absolute logit difference from the PyTorch model over the {args.top} models per format
(TorchScript / ONNX / model.py / JSON+weights; the limit is 1e-4), the rank-1 model's test accuracy in every
format (one value means all formats agree), and mean file sizes (weights / ONNX / model.py).

{provenance(load)}

**Figures.**

{HEADER}
{chr(10).join(rows)}

{report_line}
"""
    publish("export-report", body, write=not args.no_write)


if __name__ == "__main__":
    main()
