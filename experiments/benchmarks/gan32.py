"""DCGAN and WGAN-GP references at 32x32 on ``mnist32`` (MNIST zero-padded by 2 pixels a side): the FID floor and
both references at one per-generator-step budget, with their parameter counts. Writes the section ``gan32`` of
RESULTS.md (rewritten after every row, so a stopped run leaves the rows it finished, marked as partial).

The generators are the ``gan`` space's ``dcgan`` / ``wgan-gp`` members with three upsampling cells (a linear map
to ``C x 4 x 4``, three BN-ReLU-transposed-4x4-conv doublings, BN-ReLU-conv3x3-tanh), the discriminators the fixed
DCGAN discriminator on 32x32 (batch norm for ``ns``, none for the WGAN-GP critic). FIDs are Fréchet distances in
the features of a classifier trained on the task once, NOT Inception FIDs (Inception weights cannot be downloaded
offline); they compare only with each other.

    .venv/bin/python experiments/benchmarks/gan32.py --steps 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _code_version import code_version
from _results import load_average, provenance, publish, utc_date

from nas.evaluation.gan import FID_NOTE, Discriminator, GanConfig, GanEvaluator
from nas.evaluation.measure import count_params
from nas.trials.trial import Trial
from search_spaces import get_space
from search_spaces.gan import GAN_REFERENCES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="generator steps per reference")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load, date, version = load_average(), utc_date(), code_version()
    space = get_space("gan", cells=3, C=args.channels, latent_dim=args.latent_dim)
    budget = {"steps": args.steps, "batch_size": args.batch_size}
    evaluators = {loss: GanEvaluator(compiler=space.compiler(), task="mnist32", gan=GanConfig(loss=loss, **budget),
                                     eval_samples=args.eval_samples, data_seed=args.seed) for loss in ("ns", "wgan-gp")}
    floor = evaluators["ns"].prepared()[-1]
    evaluators["wgan-gp"]._state = evaluators["ns"].prepared()  # the same task, images and feature network
    rows = [f"| floor: real validation vs real train images | {floor:.3f} | | | | | |"]

    def write(done: bool) -> None:
        status = "" if done else (f"\n\n**Partial**: the run was still going when this was written ({len(rows) - 1} "
                                  f"of {len(GAN_REFERENCES)} references done).")
        body = f"""## GAN references at 32x32: DCGAN and WGAN-GP on `mnist32` (`gan32.py`)

**FID caveat.** {FID_NOTE}. Lower is better.

**Setup.** `mnist32`: the 5,000 MNIST samples of `mnist`, zero-padded by 2 pixels a side to 32x32 (3,500 train /
750 validation / 750 test, seed {args.seed}). Generators: the `gan` space's references with `cells=3`
(`C={args.channels}`, `latent_dim={args.latent_dim}`: a linear map to {args.channels}x4x4, three transposed-conv
doublings, a conv-tanh head); discriminators: the fixed DCGAN discriminator (width 64; batch norm for the
non-saturating loss, none for the WGAN-GP critic). Budget: {args.steps} generator steps of batch
{args.batch_size} (DCGAN: 1 discriminator step per generator step, Adam 2e-4 (0.5, 0.999); WGAN-GP: 5 critic steps,
gradient penalty 10, Adam 1e-4 (0.0, 0.9)); FID of {args.eval_samples} generated images against the 750 validation
images. Parameter counts are `count_params` of the built modules (the closed forms are in the `gan` README section
and checked by `tests/nas_tests/evaluation_tests/test_gan_references32.py`).{status}

| run | FID | density | coverage | generator params | discriminator params | seconds |
|---|---:|---:|---:|---:|---:|---:|
""" + "\n".join(rows) + f"\n\n{provenance(load, threads=args.threads, date=date, version=version)}\n"
        publish("gan32", body, write=not args.no_write)

    for name, (_, loss) in GAN_REFERENCES.items():
        result = evaluators[loss].evaluate(Trial(id=0, arch=space.reference(name), seed=args.seed))
        disc = Discriminator((1, 32, 32), width=64, norm="none" if loss == "wgan-gp" else "batch")
        m = result.metrics
        if result.ok:
            rows.append(f"| `{name}` ({loss}) | {m['fid']:.3f} | {m['density']:.3f} | {m['coverage']:.3f} | "
                        f"{m['params']:,.0f} | {count_params(disc):,} | {m['train_seconds']:.0f} |")
        else:
            rows.append(f"| `{name}` ({loss}) | FAILED: {result.error} | | | {m.get('params', 0):,.0f} | "
                        f"{count_params(disc):,} | {m.get('train_seconds', 0):.0f} |")
        write(done=len(rows) == len(GAN_REFERENCES) + 1)


if __name__ == "__main__":
    main()
