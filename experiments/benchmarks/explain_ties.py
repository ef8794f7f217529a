"""Explanations: why Integrated Gradients and LIME reach the same deletion / insertion AUCs to three decimals on
the digits export of ``explain.py``. Reads (or builds the same way) the image export in ``--workdir``, attributes
the same validation inputs for the predicted class with both methods, and prints: the per-input Spearman
correlation of the two signed maps and the overlap of their top-ranked pixels, the number of LIME feature groups,
each method's per-input AUCs and the paired difference (its mean, spread and standard error), the mean curves,
LIME under other perturbation seeds, Integrated Gradients with other step counts, and the AUCs on a prefix of the
inputs. Prints only; writes nothing to RESULTS.md.

    .venv/bin/python experiments/benchmarks/explain_ties.py --workdir runs/explain-bench
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain import EXPERIMENTS, exported

import nas.outputs.explain.attribution as attribution
from nas.outputs.explain import attribute, deletion_insertion, feature_mask
from nas.outputs.explain.run import _task, resolve_source
from nas.outputs.explain.sanity import CURVE_STEPS, _curve
from nas.outputs.export import load_model, model_info
from nas.outputs.report.gradcam import pick_images


def per_input(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, maps: torch.Tensor) -> np.ndarray:
    """``(inputs, 2)``: each input's deletion and insertion AUC of its own map."""
    return np.array([[f.deletion, f.insertion] for f in
                     (deletion_insertion(model, x[i:i + 1], target[i:i + 1], maps[i:i + 1], seed=0)
                      for i in range(len(x)))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where explain.py keeps its experiments (default: a temporary folder)")
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--perturbations", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    label, folder, space, task_name, train, trials = EXPERIMENTS[0]
    with tempfile.TemporaryDirectory() as tmp:
        directory = exported(Path(args.workdir or tmp) / folder, space, task_name, train, trials)
        model_dir, _ = resolve_source(directory)
        task = _task(model_dir, model_info(model_dir))
        model = load_model(model_dir)
    model.eval()
    idx = pick_images(task, min(args.samples, len(task.y_val)))
    x = torch.as_tensor(np.asarray(task.x_val[idx]), dtype=torch.float32)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    print(f"{label}: {len(idx)} inputs; LIME feature groups per image: {feature_mask(x, 'image').unique().numel()} "
          f"of {x[0].numel()} elements")
    ig = attribute(model, x, "integrated_gradients", target=target, kind="image")
    lime = attribute(model, x, "lime", target=target, kind="image", seed=0, samples=args.perturbations)
    rho = [float(spearmanr(a, b).statistic) for a, b in zip(ig.flatten(1), lime.flatten(1))]
    order_ig = torch.argsort(ig.flatten(1), dim=1, descending=True, stable=True)
    order_lime = torch.argsort(lime.flatten(1), dim=1, descending=True, stable=True)
    print(f"Spearman(IG, LIME) per input: min {min(rho):.2f}, median {np.median(rho):.2f}, max {max(rho):.2f}")
    for k in (3, 6, 13, 32):
        shared = [len(set(a[:k].tolist()) & set(b[:k].tolist())) / k for a, b in zip(order_ig, order_lime)]
        print(f"top-{k} pixels shared: min {min(shared):.2f}, median {np.median(shared):.2f}, "
              f"max {max(shared):.2f}")
    a, b = per_input(model, x, target, ig), per_input(model, x, target, lime)
    diff = a - b
    for j, name in enumerate(("deletion", "insertion")):
        print(f"{name}: IG {a[:, j].mean():.4f}, LIME {b[:, j].mean():.4f}; per-input difference: mean "
              f"{diff[:, j].mean():+.4f}, sd {diff[:, j].std(ddof=1):.4f}, range {diff[:, j].min():+.3f} to "
              f"{diff[:, j].max():+.3f}, standard error of the mean {diff[:, j].std(ddof=1) / np.sqrt(len(x)):.4f}")
    for insert, name in ((False, "deletion"), (True, "insertion")):
        for method, order in (("IG", order_ig), ("LIME", order_lime)):
            curve = _curve(model, x, target, order, insert, CURVE_STEPS).mean(axis=0)
            print(f"mean {name} curve, {method}: " + " ".join(f"{v:.3f}" for v in curve))
    for seed in (1, 2, 3):
        f = deletion_insertion(model, x, target, attribute(model, x, "lime", target=target, kind="image", seed=seed,
                                                           samples=args.perturbations), seed=0)
        print(f"LIME, perturbation seed {seed}: deletion {f.deletion:.4f}, insertion {f.insertion:.4f}")
    for steps in (16, 64):
        attribution.IG_STEPS = steps  # the module constant attribute() reads
        f = deletion_insertion(model, x, target, attribute(model, x, "integrated_gradients", target=target,
                                                           kind="image"), seed=0)
        print(f"Integrated Gradients, {steps} steps: deletion {f.deletion:.4f}, insertion {f.insertion:.4f}")
    half = len(x) // 2
    print(f"first {half} inputs: IG {a[:half, 0].mean():.4f} / {a[:half, 1].mean():.4f}, LIME "
          f"{b[:half, 0].mean():.4f} / {b[:half, 1].mean():.4f} (deletion / insertion)")


if __name__ == "__main__":
    main()
