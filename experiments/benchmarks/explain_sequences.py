"""Explanations on sequences: why LIME and KernelSHAP fail the model-randomisation check on ItalyPowerDemand, and
what does not change it. Reads the sequence exports that ``explain.py`` built in ``--workdir`` (building them the
same way when missing) and writes the section ``explain-sequences`` of RESULTS.md.

    .venv/bin/python experiments/benchmarks/explain_sequences.py --workdir runs/explain-bench

Part 1, per export, for the trained model and :data:`DRAWS` re-initialised copies (the check's own
``randomised_copy``): how one-signed the input gradient of the explained class is over time
(``|mean_t g_t| / mean_t |g_t|``, 1 when every time step pushes the same way), how closely LIME's and
KernelSHAP's signed maps follow the input itself (``|Spearman(map, x - off)|`` per input, the off value 0), and
the check's signed correlation per draw. Part 2, on the rnn export of ItalyPowerDemand: the alternatives the
time-series literature uses for the "off" value (per-time-step training mean; a Gaussian blur of the series, as
Fong and Vedaldi's "meaningful perturbations"; the segment's own mean, as LIMESegment-style replacements) and
per-step instead of 8-segment features, each with the check and a deletion AUC (most-attributed steps replaced by
that off value) against a random order.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import KernelShap, Lime
from scipy.ndimage import gaussian_filter1d
from scipy.stats import spearmanr
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import load_average, provenance, publish
from explain import EXPERIMENTS, describe, exported

from nas.outputs.explain import attribute, feature_mask, randomised_copy
from nas.outputs.explain.attribution import Probabilities
from nas.outputs.explain.run import _task, resolve_source
from nas.outputs.export import load_model, model_info
from nas.outputs.report.gradcam import pick_images

DRAWS = 3
INPUTS = 12
SAMPLES = 200
SEQUENCES = ("sequence", "transformer", "basic_motions")


def rho(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    return 0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(spearmanr(a, b).statistic)


def per_draw(trained: np.ndarray, randoms: list[np.ndarray], absolute: bool = False) -> list[float]:
    """Per re-initialisation, the mean over inputs of the Spearman correlation with the trained model's map."""
    f = np.abs if absolute else (lambda v: v)
    return [float(np.mean([rho(f(t), f(r)) for t, r in zip(trained, rand)])) for rand in randoms]


def one_signed(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over inputs and channels of ``|mean_t g| / mean_t |g|``, g the gradient of the class logit."""
    model.eval()
    xx = x.clone().requires_grad_()
    model(xx).gather(1, target[:, None]).sum().backward()
    g = xx.grad.detach().numpy()
    return float(np.mean(np.abs(g.mean(axis=1)) / (np.abs(g).mean(axis=1) + 1e-12)))


def perturbation(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, off: np.ndarray,
                 mask: torch.Tensor, seed: int = 0) -> np.ndarray:
    """LIME (ridge, as ``nas explain``) or KernelSHAP with a per-input "off" value ``off`` (shape of ``x``)."""
    model.eval()
    wrapped = Probabilities(model)
    explainer = (Lime(wrapped, interpretable_model=SkLearnRidge(alpha=1.0)) if method == "lime"
                 else KernelShap(wrapped))
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        rows = [explainer.attribute(x[i:i + 1], baselines=torch.as_tensor(off[i:i + 1]), target=int(target[i]),
                                    feature_mask=mask, n_samples=SAMPLES, perturbations_per_eval=50)
                for i in range(len(x))]
    return torch.cat(rows).numpy()


def deletion(model: nn.Module, x: np.ndarray, off: np.ndarray, target: torch.Tensor, order: np.ndarray) -> float:
    """AUC of the class probability as elements are replaced by ``off`` in ``order`` (20 steps)."""
    n = len(x)
    flat, base = x.reshape(n, -1), off.reshape(n, -1)
    probs = []
    for k in range(21):
        count = round(k * flat.shape[1] / 20)
        z = flat.copy()
        for i in range(n):
            z[i, order[i, :count]] = base[i, order[i, :count]]
        with torch.no_grad():
            p = model(torch.as_tensor(z.reshape(x.shape))).softmax(1).gather(1, target[:, None])[:, 0]
        probs.append(p.numpy())
    curve = np.stack(probs, 1)
    return float(np.mean((curve[:, 1:] + curve[:, :-1]).sum(1) / 40))


def segment_mean(x: np.ndarray, size: int) -> np.ndarray:
    steps = x.shape[1]
    out = x.copy()
    for start in range(0, steps, size):
        out[:, start:start + size] = x[:, start:start + size].mean(axis=1, keepdims=True)
    return out


def load(directory: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor, np.ndarray]:
    folder, _ = resolve_source(directory)
    task = _task(folder, model_info(folder))
    model = load_model(folder)
    model.eval()
    idx = pick_images(task, min(INPUTS, len(task.y_val)))
    x = torch.as_tensor(np.asarray(task.x_val[idx]), dtype=torch.float32)
    with torch.no_grad():
        target = model(x).argmax(1)
    return model, x, target, np.asarray(task.x_train, dtype=np.float32)


def part1(root: Path) -> list[str]:
    rows = []
    for label, folder, space, task, train, trials in EXPERIMENTS:
        if folder not in SEQUENCES:
            continue
        directory = exported(root / folder, space, task, train, trials)
        model, x, target, _ = load(directory)
        randoms = [randomised_copy(model, k) for k in range(DRAWS)]
        grad_t = one_signed(model, x, target)
        grad_r = float(np.mean([one_signed(r, x, target) for r in randoms]))
        for method in ("lime", "kernel_shap", "integrated_gradients"):
            def run(m: nn.Module, method: str = method) -> np.ndarray:
                return attribute(m, x, method, target=target, kind="sequence", seed=0, samples=SAMPLES).numpy()
            trained = run(model)
            rand = [run(r) for r in randoms]
            follows_t = np.mean([abs(rho(a, b)) for a, b in zip(trained, x.numpy())])
            follows_r = np.mean([abs(rho(a, b)) for r in rand for a, b in zip(r, x.numpy())])
            draws = per_draw(trained, rand)
            rows.append(f"| {label} [{describe(directory)}] | {grad_t:.2f} / {grad_r:.2f} | {method} | "
                        f"{follows_t:.2f} / {follows_r:.2f} | {', '.join(f'{v:.2f}' for v in draws)} | "
                        f"{np.mean(np.abs(draws)):.2f} |")
            print(rows[-1], flush=True)
    return rows


def part2(root: Path) -> list[str]:
    _, folder, space, task, train, trials = next(e for e in EXPERIMENTS if e[1] == "sequence")
    model, x, target, x_train = load(exported(root / folder, space, task, train, trials))
    randoms = [randomised_copy(model, k) for k in range(DRAWS)]
    xs = x.numpy()
    offs: dict[str, np.ndarray] = {
        "0 (the series mean; `nas explain`)": np.zeros_like(xs),
        "training mean per time step": np.broadcast_to(x_train.mean(0, keepdims=True), xs.shape).copy(),
        "Gaussian blur, sigma 3 steps": gaussian_filter1d(xs, 3.0, axis=1, mode="nearest"),
        "Gaussian blur, sigma 6 steps": gaussian_filter1d(xs, 6.0, axis=1, mode="nearest"),
        "the segment's own mean": segment_mean(xs, 3),
    }
    masks: dict[str, torch.Tensor] = {"8 segments of 3 steps": feature_mask(x, "sequence"),
                                      "24 single steps": torch.arange(xs.shape[1])[None, :, None]}
    generator = np.random.default_rng(0)
    shuffled = np.stack([generator.permutation(xs[0].size) for _ in range(len(xs))])
    rows = []
    for features, mask in masks.items():
        for name, off in offs.items():
            for method in ("lime", "kernel_shap"):
                def run(m: nn.Module, off: np.ndarray = off, mask: torch.Tensor = mask,
                        method: str = method) -> np.ndarray:
                    return perturbation(m, x, target, method, off, mask)

                trained = run(model)
                rand = [run(r) for r in randoms]
                signed = per_draw(trained, rand)
                mags = per_draw(trained, rand, absolute=True)
                follows_t = np.mean([abs(rho(a, b - o)) for a, b, o in zip(trained, xs, off)])
                follows_r = np.mean([abs(rho(a, b - o)) for r in rand for a, b, o in zip(r, xs, off)])
                order = np.argsort(-trained.reshape(len(xs), -1), axis=1, kind="stable")
                rows.append(f"| {features} | {name} | {method} | {np.mean(np.abs(signed)):.2f} "
                            f"({', '.join(f'{v:.2f}' for v in signed)}) | {np.mean(np.abs(mags)):.2f} | "
                            f"{follows_t:.2f} / {follows_r:.2f} | {deletion(model, xs, off, target, order):.3f} "
                            f"({deletion(model, xs, off, target, shuffled):.3f}) |")
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="the experiments of explain.py (default: built in a temporary folder)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_avg = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir) if args.workdir else Path(tmp)
        rows1 = part1(root)
        rows2 = part2(root)
    title = ("Explanations on sequences: why LIME and KernelSHAP fail the randomisation check on ItalyPowerDemand "
             "(`explain_sequences.py`)")
    head1 = ("| export | gradient one-signedness, trained / random | method | \\|rho(map, x)\\| trained / random "
             "| signed rho per draw | check (mean \\|.\\|) |\n|---|---|---|---|---|---|")
    head2 = ("| features | off value | method | signed check: mean \\|rho\\| (per draw) | magnitudes "
             "| \\|rho(map, x - off)\\| trained / random | deletion AUC (random order) |\n"
             "|---|---|---|---|---|---|---|")
    body = f"""## {title}

**What was measured.** On the sequence exports of the section above (same experiments, rank-1 models), {INPUTS}
validation inputs explained for the predicted class, {SAMPLES} perturbed samples per input, {DRAWS}
re-initialisations (seeds 0-{DRAWS - 1}, the randomisation check's own). Part 1: how one-signed the gradient of the
class logit is over time (`|mean_t g_t| / mean_t |g_t|`: 1 when every step pushes the class the same way), how
closely each signed map follows the input itself (`|Spearman(map, x)|` per input, x measured from the off value
0), and the check's signed correlation per draw and its decision value (mean of the absolute values). Part 2, on
the rnn export of ItalyPowerDemand: other "off" values and feature groupings for LIME and KernelSHAP, each with
the check (signed: mean |per-draw| and the draws; magnitudes), how closely the maps follow `x - off`, and the
deletion AUC when the most-attributed steps are replaced by that off value (random order in brackets; lower is
better).

{provenance(load_avg)}

**Part 1.**

{head1}
{chr(10).join(rows1)}

**Part 2** (rnn on ItalyPowerDemand).

{head2}
{chr(10).join(rows2)}

**Reading.**
1. *Random networks: the input dominates.* Re-initialised networks of both spaces push the explained class the
   same way at almost every time step (gradient one-signedness about 0.9 or more), and on ItalyPowerDemand their
   LIME and KernelSHAP maps follow the input itself at 0.75-0.9: to first order such a network computes
   `c * sum_t (x_t - 0)`, and a perturbation method returns `c * (x - 0)` segment by segment, its order set by
   the input and only its sign by the weights. This is the failure Adebayo et al. show for gradient x input.
2. *The trained models share most of that order.* The trained rnn's maps follow the input at about 0.7, the
   trained transformer's at about 0.85, and the transformer's gradient is as one-signed as a random network's:
   on this task (z-normalised daily demand profiles, two seasons) what the models learned is close to a sum of the
   levels with weights of one sign, so a faithful signed map `w_t (x_t - 0)` ranks the segments much as the input
   does, and its correlation with every random draw is large in absolute value. Time-invariance is not the cause:
   the transformer export, whose rank-1 model has learned positional encodings and the better accuracy, fails the
   same way; its sign flips with the draw (per-draw column), which the check's former rule (the signed
   correlation averaged over the draws) would have averaged into a pass.
3. *Other off values and groupings* (part 2): with 8 segments, the per-step training mean and blurred series
   leave the maps input-dominated (random networks' maps follow `x - off` at 0.7 or more) and both methods still
   fail. With single time steps as features KernelSHAP passes from some off values and LIME from none but one, so
   the outcome there depends on the method's sampling more than on the model. Replacing a segment by its own mean
   (or, with single steps, by the local 3-step mean) passes, but by construction: a segment's mean keeps its sum,
   so the first-order term, the evidence a level-reading model uses, is removed from the map rather than
   explained (a model whose class is a sum of levels, as the tests' `_StepNet`, would get an all-zero map with
   segments), and the maps no longer follow `x - off`. We did not adopt it.
4. *Where they pass.* On the 6-channel BasicMotions export a random network weighs the channels with weights of
   random sign and size, the trained one with learned ones, so the ranking over time and channel is no longer the
   input's: LIME, KernelSHAP and Integrated Gradients pass with per-draw correlations of a few tenths.

So the check is reported as it comes out: every method passes on the image export and on the BasicMotions
export; on ItalyPowerDemand LIME and KernelSHAP FAIL on both sequence exports, because what those models
compute is close to what any network of their family computes at random, not because of how the methods are
called, and Integrated Gradients, the same kind of signed map, is near the threshold (here 0.31 and 0.35, on 8
inputs in the section above 0.32 and 0.58). Their maps are still faithful in the deletion / insertion sense
(section above).
"""
    publish("explain-sequences", body, write=not args.no_write)


if __name__ == "__main__":
    main()
