"""Explanations: every `nas explain` method on a trained image export (NAS-Bench-201 cell on digits) and a
trained sequence export (rnn space: DARTS-RNN cell, LSTM or GRU, on UCR ItalyPowerDemand): time, the
model-randomisation check and the deletion / insertion faithfulness AUCs against a random order. Writes the
section ``explain`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/explain.py [--workdir runs/explain-bench]

``--workdir`` keeps the two experiments (searched and exported once, reused by later runs); by default they are
built in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish

from nas.outputs.explain import METHODS, explain
from nas.outputs.export import export_experiment
from nas.runtime.config import parse_config
from nas.runtime.experiment import Experiment

#: (label, folder, space, task, training, trials)
EXPERIMENTS: list[tuple[str, str, dict[str, Any], str, dict[str, Any], int]] = [
    ("image: nb201 (C=8) on digits", "image", {"name": "nb201", "options": {"C": 8, "N": 1}}, "digits",
     {"epochs": 6, "batch_size": 64}, 2),
    ("sequence: rnn (d=16) on italy_power", "sequence",
     {"name": "rnn", "options": {"d_model": 16, "steps": 4, "num_layers": 1}}, "italy_power",
     {"epochs": 10, "batch_size": 32}, 4),
]
HEADER = ("| export | method | s (N inputs) | randomisation rho (compared) | passed | deletion AUC (random) "
          "| insertion AUC (random) |\n|---|---|---:|---|---|---|---|")


def exported(directory: Path, space: dict[str, Any], task: str, train: dict[str, Any], trials: int) -> Path:
    """The experiment at ``directory``, searched and exported (json + weights) unless that was done before."""
    if not (directory / "export" / "manifest.json").is_file():
        cfg = parse_config({"name": f"explain-{directory.name}", "seed": 0, "space": space, "strategy": "random",
                            "evaluator": {"name": "train", "task": task, "train": train},
                            "budget": {"max_trials": trials}, "execution": {"executor": "local", "workers": 1}})
        exp = Experiment.create(cfg, directory)
        try:
            exp.run()
        finally:
            exp.close()
        export_experiment(directory, top=1, formats="json,weights", verify=False)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="keep the experiments here (default: a temporary folder)")
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--perturbations", type=int, default=200)
    parser.add_argument("--only", choices=[e[1] for e in EXPERIMENTS], help="run one export of the two")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir) if args.workdir else Path(tmp)
        for label, folder, space, task, train, trials in EXPERIMENTS:
            if args.only and folder != args.only:
                continue
            directory = exported(root / folder, space, task, train, trials)
            result = explain(directory, samples=args.samples, perturbations=args.perturbations,
                             out=Path(tmp) / f"explain-{folder}")
            n = len(result.index["inputs"])
            accuracy = json.loads((directory / "export" / "manifest.json").read_text())["models"][0]["metrics"]
            label = f"{label} (test acc {accuracy['test_acc']:.1f}%)"
            for m in result.index["methods"]:
                r, f = m["randomisation"], m["faithfulness"]
                rows.append(f"| {label} | {m['method']} | {m['seconds']:.1f} ({n}) | {r['correlation']:.2f} "
                            f"({r['compared']}) | {'yes' if r['passed'] else 'NO'} | {f['deletion_auc']:.3f} "
                            f"({f['random_deletion_auc']:.3f}) | {f['insertion_auc']:.3f} "
                            f"({f['random_insertion_auc']:.3f}) |")
    ran = [e for e in EXPERIMENTS if not args.only or e[1] == args.only]
    searches = "; ".join(f"{e[1]}: {e[0].split(': ')[1]}, {e[5]} trial(s) of {e[4]['epochs']} epochs" for e in ran)
    body = f"""## Explanations: sanity and faithfulness of every `nas explain` method (`explain.py`)

**What was measured.** Small real searches (random, local executor; {searches}), each exported (rank 1, JSON +
weights) and explained by `nas explain` with every method ({', '.join(METHODS)}) on {args.samples} validation
inputs for the predicted class; LIME and KernelSHAP draw {args.perturbations} perturbed inputs each. Per method:
the attribution time, the model-randomisation check (Adebayo et al. 2018: Spearman correlation, per input then
averaged, between the attributions of the trained model and of a copy with every weight re-drawn at random; passes
below 0.5; magnitudes compared for Grad-CAM and saliency, signed values for the signed methods), and the deletion /
insertion AUCs (Petsiuk et al. 2018: the predicted class's probability as input elements are set to 0 from the most
to the least attributed, or restored into an all-zero input in that order, 20 steps; deletion lower is better,
insertion higher is better), each beside the same AUC for a random order.

{provenance(load)}

**Figures.**

{HEADER}
{chr(10).join(rows)}
"""
    publish("explain", body, write=not args.no_write)


if __name__ == "__main__":
    main()
