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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish

from nas.outputs.explain import METHODS, attribute, cascading_randomisation, explain
from nas.outputs.explain.run import _task, resolve_source
from nas.outputs.export import export_experiment, load_model, model_info
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
HEADER = ("| export | method | s (N inputs) | randomisation rho (decides on) | rho magnitudes / signed | passed "
          "| deletion AUC (random) | insertion AUC (random) |\n|---|---|---:|---|---|---|---|---|")


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


def cascade(directory: Path, inputs: list[int], targets: list[int], perturbations: int) -> dict[str, list[Any]]:
    """Per method, :func:`cascading_randomisation` of the exported model on the explained inputs."""
    folder, _ = resolve_source(directory)
    task = _task(folder, model_info(folder))
    model = load_model(folder)
    x = torch.as_tensor(np.asarray(task.x_val[inputs]), dtype=torch.float32)
    target = torch.as_tensor(targets)
    out = {}
    for method in METHODS:
        def run(m: torch.nn.Module, method: str = method) -> torch.Tensor:
            return attribute(m, x, method, target=target, kind=task.kind, seed=0, samples=perturbations)
        out[method] = cascading_randomisation(run, model, seed=0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="keep the experiments here (default: a temporary folder)")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--perturbations", type=int, default=200)
    parser.add_argument("--only", choices=[e[1] for e in EXPERIMENTS], help="run one export of the two")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = load_average()
    rows = []
    cascades = []
    outcomes: dict[str, list[str]] = {}
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
                outcomes.setdefault(folder, []).append(f"{m['method']} {'passes' if r['passed'] else 'FAILED'} "
                                                       f"({r['correlation']:.2f})")
                rows.append(f"| {label} | {m['method']} | {m['seconds']:.1f} ({n}) | {r['correlation']:.2f} "
                            f"({r['compared']}) | {r['magnitudes']:.2f} / {r['signed']:.2f} | "
                            f"{'yes' if r['passed'] else 'NO'} | {f['deletion_auc']:.3f} "
                            f"({f['random_deletion_auc']:.3f}) | {f['insertion_auc']:.3f} "
                            f"({f['random_insertion_auc']:.3f}) |")
            stages = cascade(directory, result.index["inputs"], result.index["targets"], args.perturbations)
            names = [name for name, _, _ in next(iter(stages.values()))]
            cascades.append(f"\n{folder} ({' > '.join(names)}; each column re-initialises that module and every module "
                            "after it in the forward pass), rho magnitudes / signed:\n\n| method | "
                            + " | ".join(f"from {name}" for name in names) + " |\n|---|"
                            + "---|" * len(names) + "\n" + "\n".join(
                                f"| {method} | " + " | ".join(f"{a:.2f} / {b:.2f}" for _, a, b in stage) + " |"
                                for method, stage in stages.items()))
    ran = [e for e in EXPERIMENTS if not args.only or e[1] == args.only]
    searches = "; ".join(f"{e[1]}: {e[0].split(': ')[1]}, {e[5]} trial(s) of {e[4]['epochs']} epochs" for e in ran)
    draws = 3
    body = f"""## Explanations: sanity and faithfulness of every `nas explain` method (`explain.py`)

**What was measured.** Small real searches (random, local executor; {searches}), each exported (rank 1, JSON +
weights) and explained by `nas explain` with every method ({', '.join(METHODS)}) on {args.samples} validation
inputs for the predicted class; LIME and KernelSHAP draw {args.perturbations} perturbed inputs each. Per method:
the attribution time, the model-randomisation check (Adebayo et al. 2018: Spearman correlation, per input,
between the attributions of the trained model and of a copy whose weights are re-initialised with each module's
own initialiser, averaged over the inputs and {draws} re-initialisations; passes below 0.5; it decides on
magnitudes for Grad-CAM and saliency and on signed values for the signed methods, and both are shown), Adebayo et
al.'s cascade (re-initialising the top-level modules from the output down), and the deletion / insertion AUCs
(Petsiuk et al. 2018: the predicted class's probability as input elements are set to 0 from the most to the
least attributed, or restored into an all-zero input in that order, 20 steps; deletion lower is better,
insertion higher is better), each beside the same AUC for a random order.

{provenance(load)}

**Figures.**

{HEADER}
{chr(10).join(rows)}

**Cascading randomisation.**
{chr(10).join(cascades)}

**Outcome.** {'; '.join(f"{folder}: {', '.join(items)}" for folder, items in outcomes.items())}.

**Why the sequence model's maps were investigated, and what changed.** The previous run of this benchmark (6
inputs, weights re-drawn once from `N(0, s^2)` at each trained tensor's scale) failed Integrated Gradients (rho
0.56) and LIME (0.58) on the sequence export, while every method passed on the image export. Before changing
anything we checked, on that export: (1) *the model*: 89.6% test accuracy on ItalyPowerDemand (published
classifiers reach about 95-97%), a working classifier, so the maps explain something learned. (2) *Noise*: 6 inputs
give a standard error of 0.05-0.10 on rho; with 24 inputs the failures stayed (IG 0.52, LIME 0.71) and KernelSHAP,
which had passed at 0.49, failed at 0.63: not noise, and KernelSHAP's pass had been luck. The benchmark now
explains 24 inputs. (3) *The baseline*: UCR series are z-normalised per series, so 0 is each series' own mean, not
the training mean per time step (-1.5 to 1.1 here). IG from the per-step training mean (signed rho 0.75) or
averaged over 8 training series as baselines ("expected gradients", 0.62), and LIME / KernelSHAP with the training
mean as the "off" value (0.65 / 0.71) correlated as much or more, so the baseline is not the cause and 0 stays the
baseline. A random model's IG map does follow the input (Spearman 0.63 with x, against 0.11 for the trained
model's), but the trained and the random model's path-averaged gradients, before they are multiplied by x, already
correlate (signed rho 0.72): multiplying by the input is not what makes the two maps alike. (4) *The check*, which
we fixed: re-drawing every parameter from `N(0, s^2)` is not what Adebayo et al. do (they re-initialise), and it
breaks the network in its own way: this model's LayerNorm gains (trained: mean 0.99, std 0.18) become draws from
`N(0, 0.18^2)`, about five times smaller than both the trained gains and those of the untrained network (1), which
is neither the trained nor an untrained network. The check now re-initialises every module with its own initialiser
(the untrained network), and averages over {draws} re-initialisations, because one is a single sample of a random
network: over four draws IG's signed rho ranged from -0.01 to 0.56 (12 inputs). Both the magnitude and the signed
correlations are now recorded; the rule (signed for the signed methods) and the threshold 0.5 are unchanged.

**Reading.** Every method passes on the image model, and every method beats a random order on deletion and
insertion on both models except Grad-CAM on the image model on deletion (0.447 against 0.424) and saliency on the
sequence model on deletion (0.626 against 0.608). On the sequence model Grad-CAM, saliency and now Integrated
Gradients pass. IG's pass is narrow in substance: its signed rho of 0.24 is a mean over draws that individually
range from about 0 to 0.56, and its magnitudes correlate 0.66 (plausibly the |x - 0| factor: which steps are far
from the series mean is a property of the input). LIME and KernelSHAP still FAIL on their signed maps (0.72 and
0.67), though their magnitudes change with the weights (0.41 and 0.35). The cascade shows the pattern: their signed
correlation stays at 0.44-0.72 in absolute value at every stage, its sign flipping with the draw of the recurrent
cell (-0.52 and -0.44 with the cell re-initialised and the embedding kept, 0.72 and 0.66 once the embedding is
re-initialised too), whereas saliency falls from 0.79 to -0.06 as the layers go. So on this model (one channel, 24
steps, each step read through the same shared embedding) the rank order of LIME's and KernelSHAP's signed segment
effects is set mostly by the series itself (which segments lie far from 0, and on which side), up to a sign the
network sets; it is not specific to what the network learned. We could not trace within this round why full
re-initialisations keep the trained model's sign rather than a random one (LIME: all four draws we looked at,
0.69-0.73 on 12 inputs). They remain faithful to the model in the deletion / insertion sense (0.466 against 0.608,
0.776 against 0.617): the segments they rank first are the ones the model needs, but a random network would rank
them similarly. `nas explain` and the report mark both FAILED.
"""
    publish("explain", body, write=not args.no_write)


if __name__ == "__main__":
    main()
