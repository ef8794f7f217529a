"""Bayesian optimisation with a Gaussian process, a zero-cost warm start, searched around the incumbents.

Where it comes from: BANANAS (White, Neiswanger & Savani, AAAI 2021) showed that a *path encoding* of cells lets a
predictor generalise across them, and that maximising the acquisition over *mutations of the best architectures
found so far* beats maximising it over random samples; COMBO (Oh et al., NeurIPS 2019) and CoCaBO (Ru et al.,
ICML 2020) model categorical inputs with kernels on the Hamming distance; NAS-BOWL (Ru et al., ICLR 2021) put
subgraph features into a GP; Abdelfattah et al. (ICLR 2021) showed that screening candidates with a zero-cost
proxy lifts a search's first queries. This strategy joins them with an exact GP, cheap at NAS budgets, and adds
a free structural prior to the zero-cost score: the depth of the cell (:func:`strategies.features.path_depth`).

What differs from Optuna's ``GPSampler`` (optuna 5.0), which also measures the distance of categorical parameters
as Hamming: ``GPSampler`` fits a Matern-5/2 kernel with one lengthscale per parameter to the standardised values,
starts from 10 random trials, and maximises log expected improvement over 2,048 random points refined by local
search (from the best of them and from the best trial). This strategy (a) starts from the best cells of a pool
screened by a zero-cost score (not queries, but time: reported) plus ``depth_weight`` times the cell's path depth
(the most convolutions on one input-to-output path), and keeps that score as a feature of the kernel; (b) warps
the targets (:func:`warp_targets`) so the differences among the best cells are not flattened by a few bad
ones; (c) maximises an upper confidence bound over the neighbours of the best cells only; (d) can add the cells' path
features (:func:`strategies.features.path_features`; cells computing the same function are at distance 0) and
conditions on the trials in flight (kriging believer). Where it stands against ``GPSampler`` and ``TPESampler`` used
directly on NAS-Bench-201: ``experiments/benchmarks/RESULTS.md``, section
``nb201_sample_efficiency``.

* Features of an architecture: the one-hot encoding of its decisions (squared distance = twice the Hamming
  distance), the counts of its cells' input-to-output paths by op sequence scaled by ``path_weight`` (off by
  default: on NAS-Bench-201 they did not help, see RESULTS.md), and the standardised zero-cost score scaled by
  ``proxy_weight`` when a scorer is attached. The score is the scorer's value plus ``depth_weight`` times
  :func:`~strategies.features.path_depth`: on NAS-Bench-201 the log parameter count alone ranks cells by
  validation accuracy with Spearman 0.72 / 0.49 / 0.43 (CIFAR-10 / CIFAR-100 / ImageNet16-120), with the depth
  added 0.77 / 0.54 / 0.51, and the searches gain most where the guiding signal is the noisy 12-epoch accuracy.
* Model: GP with kernel ``exp(-|f(a) - f(b)|^2 / (2 lengthscale^2))`` on those features, targets warped by a
  monotone map and standardised (:func:`warp_targets`: accuracies are skewed, and a few chance-level cells
  otherwise set the scale and flatten the differences among the best into the noise term); lengthscale and
  noise chosen by marginal likelihood on a small grid every ``refit_every`` results.
* Candidates: every single-decision neighbour of the ``parents`` best architectures (among the last ``window``
  results, if set), a random two-decision mutation of each, and ``random_candidates`` uniform samples (with
  ``local``, only the best architecture's neighbours while some are left); those whose path features equal those
  of an architecture evaluated or in flight are left out (so are those of a failed or infeasible result: the GP
  does not model them, and without this they were proposed again and again).
* Acquisition: with a zero-cost scorer attached, the upper confidence bound ``mean + explore * sd`` (``explore``
  ``"auto"``: 0.5 with a scorer; with ``explore=None``, expected improvement), weighted by the zero-cost prior all
  along, not only in the warm start: UCB adds
  ``prior_weight * z``, ``z`` the candidate's standardised zero-cost score (clipped to +-5; expected improvement
  is multiplied by ``exp(prior_weight * z)``), as piBO (Hvarfner et al., ICLR 2022) weights the acquisition by a
  user's prior but with a fixed weight: the score is known for every cell before any query, and where the guiding
  signal is a short training (NAS-Bench-201's 12-epoch accuracy) it ranks cells by the final accuracy better than
  the guide does among the best cells. Why UCB: with warped targets and a noisy guide, expected improvement over
  the best result is driven by the posterior s.d. and keeps leaving a good incumbent's neighbours for uncertain
  cells elsewhere; UCB with a small weight exploits them (NAS-Bench-201, held-out seeds 100-249: ImageNet16-120
  46.11 / 46.47 / 46.48 at 25 / 50 / 100 queries against 45.97 / 46.05 / 46.40 with expected improvement,
  CIFAR-100 72.92 / 73.08 / 73.08 against 72.78 / 72.76 / 72.75, CIFAR-10 94.12 / 94.26 / 94.30 against
  94.12 / 94.24 / 94.29; weights 0.25 and 1 gave the same). Without a scorer there is no prior, and UCB 0.5
  trailed expected improvement (same held-out seeds, at 100 queries: CIFAR-10 94.18 against 94.21, CIFAR-100
  72.21 against 72.32, ImageNet16-120 46.03 against 46.15; weights 1 and 2 in between), so ``"auto"`` means
  expected improvement there. ``prior_top`` (off) instead restricts the candidates
  to the cells scored in the top fraction of the warm-start pool. A batch of ``n`` takes the top ``n`` distinct
  candidates, with the GP conditioned on each pick at its posterior mean ("kriging believer") between picks, and on
  the trials still in flight from earlier asks the same way: with many workers each new proposal sees the variance
  near those already running collapse, so it is drawn elsewhere rather than beside them.
* The first ``n_init`` proposals are uniform samples or, with a zero-cost scorer attached by the runtime
  (:meth:`GPBayesOpt.use_zero_cost`), the best-scored distinct cells of ``warm_start`` uniform samples.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri
from threadpoolctl import ThreadpoolController

from nas.core.checks import check_int
from nas.core.errors import ConfigError
from nas.graph.architecture import Architecture
from nas.trials.trial import Result, Trial
from strategies.base import Strategy
from strategies.features import ZeroCost, path_depth, path_features

__all__ = ["GPBayesOpt", "WARPS", "warp_targets"]

_LENGTHSCALES = (0.7, 1.0, 1.5, 2.0, 3.0)
_NOISES = (1e-3, 1e-2, 1e-1)
#: the UCB weight ``explore: auto`` uses while a zero-cost scorer is attached
AUTO_UCB = 0.5
#: the score given to a cell whose zero-cost score is not finite
_WORST = -1e300


#: the monotone maps of GP targets :func:`warp_targets` knows, the default first
WARPS = ("log_gap", "copula", "none")


def warp_targets(y: np.ndarray, warp: str) -> np.ndarray:
    """Standardised GP targets from the fitnesses ``y`` (higher is better), after the monotone map ``warp``:
    ``log_gap`` ``-log(max(y) + 0.1 sd(y) - y)`` stretches the differences among the best and squashes those among
    the bad (a few failed or chance-level cells no longer set the scale and flatten the top into the noise term);
    ``copula`` maps the ranks to normal quantiles; ``none`` only standardises. Order is kept and every map is
    invariant to the scale and offset of ``y``."""
    if warp == "copula":
        ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable")
        y = ndtri((ranks + 0.5) / len(y))
    elif warp == "log_gap":
        y = -np.log(np.clip(y.max() + 0.1 * (y.std() or 1.0) - y, 1e-12, None))
    return (y - y.mean()) / (y.std() or 1.0)


def check_warp(field: str, warp: Any) -> str:
    """``warp`` if it is one of :data:`WARPS`, else :class:`ConfigError` naming ``field``."""
    if warp not in WARPS:
        raise ConfigError(f"{field} = {warp!r}: must be one of {', '.join(WARPS)}")
    return str(warp)


def _check_weight(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ConfigError(f"{field} = {value!r}: must be a finite number >= 0")
    return float(value)


def _sqdist(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    return np.clip(d, 0.0, None)


class GPBayesOpt(Strategy):
    """GP Bayesian optimisation around the incumbents (see the module docstring).

    Options: ``n_init`` (10), ``parents`` (10), ``random_candidates`` (50), ``refit_every`` (5), ``window``
    (None: parents among all results), ``path_weight`` (0.0: the path features are left out; a positive weight
    adds them), ``warm_start`` (3000: the size of the pool screened by the zero-cost scorer; 0 turns the warm
    start and the score feature off), ``proxy_weight`` (4.0: the weight of the standardised zero-cost score as a
    feature; 0 leaves it out of the model), ``explore`` (``"auto"``: 0.5 with a zero-cost scorer attached, expected
    improvement without; a number: the UCB weight of the posterior s.d.; None: expected improvement), ``warp``
    (``"log_gap"``, ``"copula"`` or ``"none"``, see :func:`warp_targets`),
    ``local`` (False; True: while the best architecture has neighbours not yet evaluated, the candidates are
    those neighbours only, a GP-ordered local search in the manner of White et al. 2021), ``depth_weight``
    (0.6: the weight of the path depth added to the zero-cost score; 0 leaves the score the scorer's alone; it
    acts only with a scorer attached), ``prior_weight`` (1.0: UCB plus ``prior_weight * z``, or expected
    improvement times ``exp(prior_weight * z)``, ``z`` the standardised zero-cost score; 0 leaves the acquisition
    alone),
    ``prior_top`` (1.0: every candidate; a fraction in (0, 1] keeps only candidates scored at least the pool's
    top-``prior_top`` quantile, all of them if none is). Both act only with a scorer attached.

    **Zero-cost warm start.** A strategy never evaluates anything, so the scorer is handed in by whoever runs the
    search (:meth:`use_zero_cost`; the runtime passes the evaluator's ``zero_cost``, for ``nb201`` the log of the
    compiled network's parameter count), and the strategy adds ``depth_weight`` times the path depth to it. What
    that buys on NAS-Bench-201 (seeds 100-129, never the reported ones): at 25 / 50 / 100 queries CIFAR-100
    72.64 / 72.85 / 72.72 against 71.93 / 72.23 / 72.20 without it, ImageNet16-120 45.77 / 45.85 / 46.24 against
    45.37 / 45.43 / 46.20, CIFAR-10 94.14 / 94.19 / 94.21 against 94.12 / 94.12 / 94.18 (with 5 parents; with 10,
    the default, every CIFAR-10 search of seeds 100-119 reaches the 94.30 ceiling by 100 queries). Keeping the
    score in the acquisition (``prior_weight`` 1 against 0, seeds 100-129): CIFAR-100 72.98 / 72.93 / 72.71 against
    72.64 / 72.72 / 72.59, ImageNet16-120 46.00 / 46.11 / 46.44 against 45.77 / 45.93 / 46.38, CIFAR-10
    94.13 / 94.22 / 94.29 against 94.14 / 94.23 / 94.30 (weights 0.5 and 2 gained less). Scoring is not
    a query but takes time: :attr:`zero_cost_seconds`. Without a scorer the strategy runs without warm start and
    score feature. Scores are recomputed on demand
    (the scorer must be deterministic); the pool is in the state, so a resumed search equals an uninterrupted one
    once the same scorer is attached again."""

    name = "gp_bo"

    def __init__(self, *, n_init: int = 10, parents: int = 10, random_candidates: int = 50, refit_every: int = 5,
                 window: int | None = None, path_weight: float = 0.0, warm_start: int = 3000,
                 proxy_weight: float = 4.0, explore: float | str | None = "auto", warp: str = "log_gap",
                 local: bool = False, depth_weight: float = 0.6, prior_top: float = 1.0, prior_weight: float = 1.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        option = f"strategy {self.name} option"
        self.n_init = check_int(f"{option} n_init", n_init, minimum=1)
        self.parents = check_int(f"{option} parents", parents, minimum=1)
        self.random_candidates = check_int(f"{option} random_candidates", random_candidates, minimum=0)
        self.refit_every = check_int(f"{option} refit_every", refit_every, minimum=1)
        self.window = None if window is None else check_int(f"{option} window", window, minimum=1)
        self.warp = check_warp(f"{option} warp", warp)
        self.warm_start = check_int(f"{option} warm_start", warm_start, minimum=0)
        self.path_weight = _check_weight(f"{option} path_weight", path_weight)
        self.proxy_weight = _check_weight(f"{option} proxy_weight", proxy_weight)
        if explore is not None and explore != "auto":
            if isinstance(explore, bool) or not isinstance(explore, (int, float)) or not 0 <= explore < math.inf:
                raise ConfigError(f"{option} explore = {explore!r}: must be 'auto' (the default: 0.5 with a "
                                  "zero-cost scorer attached, expected improvement without), null (expected "
                                  "improvement) or a finite number >= 0 (the UCB weight of the posterior s.d.)")
            explore = float(explore)
        #: the option as given: a UCB weight, None (expected improvement) or "auto" (see :attr:`ucb_weight`)
        self.explore: float | str | None = explore
        self.depth_weight = _check_weight(f"{option} depth_weight", depth_weight)
        if not isinstance(local, bool):
            raise ConfigError(f"{option} local = {local!r}: must be true or false")
        self.local = local
        if isinstance(prior_top, bool) or not isinstance(prior_top, (int, float)) or not 0 < prior_top <= 1:
            raise ConfigError(f"{option} prior_top = {prior_top!r}: must be a fraction in (0, 1] (1 keeps every "
                              "candidate; 0.25 keeps those scored in the top quarter of the warm-start pool)")
        self.prior_top = float(prior_top)
        self.prior_weight = _check_weight(f"{option} prior_weight", prior_weight)
        #: the zero-cost score a candidate needs under ``prior_top`` (the pool's quantile), set by the screen
        self._cut: float | None = None
        self._hyper: list[float] | None = None
        self.X: list[list[int]] = []
        self.y: list[float] = []
        #: decision vectors of results with no fitness (failed, or outside a constraint): the GP does not model
        #: them, but they are never proposed again (nor anything computing the same function)
        self.unfit: list[list[int]] = []
        self.n_random = 0
        self._zero_cost: ZeroCost | None = None
        #: seconds spent in the zero-cost scorer by this instance
        self.zero_cost_seconds = 0.0
        #: the warm-start pool still to propose, best score first, and the pool's score mean and s.d.
        self._warm: list[list[int]] | None = None
        self._scale: tuple[float, float] | None = None
        # memos, rebuilt on demand: features and function keys by decision vector, zero-cost scores
        self._features: dict[tuple[int, ...], dict[str, float]] = {}
        self._keys: dict[tuple[int, ...], frozenset[tuple[str, float]]] = {}
        self._scores: dict[tuple[int, ...], float] = {}
        #: the process's BLAS libraries, found on the first proposal (see :meth:`_propose`)
        self._blas: ThreadpoolController | None = None

    def use_zero_cost(self, scorer: ZeroCost | None) -> None:
        """Attach (or with None, detach) the zero-cost scorer of the warm start (see the class docstring)."""
        self._zero_cost = scorer
        self._features.clear()

    @property
    def zero_cost_calls(self) -> int:
        """Distinct architectures scored by the zero-cost scorer so far (by this instance)."""
        return len(self._scores)

    # -- features ----------------------------------------------------------------------------------
    def _score(self, x: list[int], arch: Architecture | None = None) -> float:
        """The zero-cost score of ``x`` plus ``depth_weight`` times its path depth (memoised); ``arch`` is ``x``
        decoded, if the caller has it (decoding is most of the cost of a cell's features)."""
        key = tuple(x)
        found = self._scores.get(key)
        if found is None:
            assert self._zero_cost is not None
            start = time.perf_counter()
            if arch is None:
                arch = self.space.decode(x)
            found = float(self._zero_cost(arch))
            if self.depth_weight:
                found += self.depth_weight * path_depth(arch)
            self.zero_cost_seconds += time.perf_counter() - start
            found = self._scores[key] = found if math.isfinite(found) else _WORST
        return found

    def _decode_features(self, x: list[int]) -> None:
        key = tuple(x)
        arch = self.space.decode(x)
        paths = path_features(arch)
        # cells without paths (all of a space without cells) are told apart by their decisions
        self._keys[key] = frozenset(paths.items()) if paths else frozenset((f"d{i}", v) for i, v in enumerate(x))
        found = {f"d{i}={v}": 1.0 for i, v in enumerate(x)}
        if self.path_weight:
            found.update({k: self.path_weight * c for k, c in paths.items()})
        if self._zero_cost is not None and self.proxy_weight and self._scale is not None:
            mean, sd = self._scale
            found["zero_cost"] = self.proxy_weight * max(-5.0, min(5.0, (self._score(x, arch) - mean) / sd))
        self._features[key] = found

    def _feature(self, x: list[int]) -> dict[str, float]:
        key = tuple(x)
        if key not in self._features:
            self._decode_features(x)
        return self._features[key]

    def _key(self, x: list[int]) -> frozenset[tuple[str, float]]:
        """The path features of ``x`` as a set: equal for cells computing the same function."""
        key = tuple(x)
        if key not in self._keys:
            self._decode_features(x)
        return self._keys[key]

    def _matrix(self, rows: list[list[int]], vocab: dict[str, int]) -> np.ndarray:
        """Feature rows over ``vocab`` (which holds every feature of ``rows``)."""
        F = np.zeros((len(rows), len(vocab)))
        for r, x in enumerate(rows):
            for k, v in self._feature(x).items():
                F[r, vocab[k]] = v
        return F

    # -- GP ----------------------------------------------------------------------------------------
    def _fit(self, D: np.ndarray, y: np.ndarray, search: bool) -> tuple[float, np.ndarray, np.ndarray]:
        """(lengthscale, Cholesky factor, ``K^-1 y``) for the squared feature distances ``D``: the grid point of
        the best marginal likelihood when ``search``, the last one found otherwise."""
        best = None
        eye = np.eye(len(D))
        grid = [(ls, noise) for ls in _LENGTHSCALES for noise in _NOISES]
        if self._hyper is not None and not search:
            grid = [(self._hyper[0], self._hyper[1])]
        for ls, noise in grid:
            try:
                L = np.linalg.cholesky(np.exp(-D / (2 * ls * ls)) + noise * eye)
            except np.linalg.LinAlgError:
                continue
            alpha = np.linalg.solve(L.T, np.linalg.solve(L, y))
            lml = -0.5 * y @ alpha - np.log(np.diag(L)).sum()
            if best is None or lml > best[0]:
                best = (lml, ls, noise, L, alpha)
        if best is None:  # numerically hopeless grid: fall back to heavy noise
            ls, noise = _LENGTHSCALES[-1], 1.0
            L = np.linalg.cholesky(np.exp(-D / (2 * ls * ls)) + noise * eye)
            best = (0.0, ls, noise, L, np.linalg.solve(L.T, np.linalg.solve(L, y)))
        if search or self._hyper is None:
            self._hyper = [best[1], best[2]]
        return best[1], best[3], best[4]

    @staticmethod
    def _posterior(Dc: np.ndarray, L: np.ndarray, alpha: np.ndarray, ls: float) -> tuple[np.ndarray, np.ndarray]:
        Ks = np.exp(-Dc / (2 * ls * ls))
        v = np.linalg.solve(L, Ks.T)
        return Ks @ alpha, np.sqrt(np.clip(1.0 - (v * v).sum(0), 1e-12, None))

    @property
    def ucb_weight(self) -> float | None:
        """The UCB weight of the posterior s.d. in use, None for expected improvement: ``explore`` itself, or
        with ``"auto"`` 0.5 while a zero-cost scorer is attached and expected improvement without one (see the
        module docstring)."""
        if self.explore == "auto":
            return AUTO_UCB if self._zero_cost is not None else None
        return None if self.explore is None else float(self.explore)

    def _acquisition(self, mean: np.ndarray, std: np.ndarray, incumbent: float) -> np.ndarray:
        weight = self.ucb_weight
        if weight is not None:
            return mean + weight * std
        z = (mean - incumbent) / std
        return std * (z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))

    # -- candidates --------------------------------------------------------------------------------
    def _candidates(self, exclude: set[frozenset[tuple[str, float]]]) -> list[list[int]]:
        """Neighbours and two-decision mutations of the best, and uniform samples, leaving out those whose path
        features equal an excluded set (cells computing the same function share them; equal features of
        different functions are rare, and the de-duplication wrapper is the exact guard)."""
        sizes = self.space.decision_sizes()
        start = max(0, len(self.y) - self.window) if self.window else 0
        order = start + np.argsort(-np.asarray(self.y[start:]), kind="stable")[: self.parents]
        cands: list[list[int]] = []
        if self.local:  # the incumbent's neighbourhood until it is exhausted
            x = self.X[int(order[0])]
            near = [[*x[:pos], v, *x[pos + 1:]] for pos, n in enumerate(sizes) for v in range(n) if v != x[pos]]
            out = self._unseen(near, exclude)
            if out:
                return out
        for i in order:
            x = self.X[int(i)]
            for pos, n in enumerate(sizes):
                cands += [[*x[:pos], v, *x[pos + 1:]] for v in range(n) if v != x[pos]]
        for i in order:
            x = list(self.X[int(i)])
            for pos in self.rng.choice(len(sizes), size=min(2, len(sizes)), replace=False):
                x[int(pos)] = int(self.rng.integers(sizes[int(pos)]))
            cands.append(x)
        cands += [[int(self.rng.integers(n)) for n in sizes] for _ in range(self.random_candidates)]
        return self._unseen(cands, exclude)

    def _unseen(self, cands: list[list[int]], exclude: set[frozenset[tuple[str, float]]]) -> list[list[int]]:
        """``cands`` without those whose key is in ``exclude`` or repeats an earlier one, in order."""
        out, seen = [], set(exclude)
        for c in cands:
            h = self._key(c)
            if h not in seen:
                seen.add(h)
                out.append(c)
        return out

    def _propose(self, n: int) -> list[Architecture]:
        """:meth:`_pick` with BLAS on one thread: its matrices have a few hundred rows at most, where BLAS threads
        only add synchronisation (on 2 shared cores a 300-query search took 460 ms per query with 2 threads, 77 ms
        with one; the arithmetic, and so every proposal, is the same)."""
        if self._blas is None:
            self._blas = ThreadpoolController()
        with self._blas.limit(limits=1, user_api="blas"):
            return self._pick(n)

    def _pick(self, n: int) -> list[Architecture]:
        picks: list[list[int]] = []
        if self._warm is None and self._zero_cost is not None and self.warm_start and self.n_random == 0:
            self._screen()
        while len(picks) < n and (self.n_random < self.n_init or len(self.y) < 2):
            self.n_random += 1
            if self._warm:
                picks.append(self._warm.pop(0))
            else:
                picks.append(self.space.encode(self.space.sample(self.rng)))
        if len(picks) == n:
            return [self.space.decode(p) for p in picks]
        in_flight = [self.space.encode(t.arch) for t in self.pending]
        exclude = {self._key(x) for x in [*self.X, *self.unfit, *in_flight, *picks]}
        cands = self._prior_region(self._candidates(exclude))
        if not cands:
            picks += [self.space.encode(self.space.sample(self.rng)) for _ in range(n - len(picks))]
            return [self.space.decode(p) for p in picks]
        vocab: dict[str, int] = {}
        for x in [*self.X, *in_flight, *cands]:
            for k in self._feature(x):
                vocab.setdefault(k, len(vocab))
        X = self._matrix(self.X, vocab)
        C = self._matrix(cands, vocab)
        ys = warp_targets(np.asarray(self.y, dtype=float), self.warp)
        search = self._hyper is None or len(self.y) % self.refit_every == 0
        D = _sqdist(X, X)
        if in_flight:  # kriging believer for the trials in flight: their posterior mean, as if observed
            ls, L, alpha = self._fit(D, ys, search)
            search = False
            P = self._matrix(in_flight, vocab)
            believed, _ = self._posterior(_sqdist(P, X), L, alpha, ls)
            X = np.vstack([X, P])
            D = _sqdist(X, X)
            ys = np.append(ys, believed)
        Dc = _sqdist(C, X)
        prior = self._prior_factor(cands)
        alive = np.ones(len(C), dtype=bool)
        incumbent = ys.max()
        while len(picks) < n and alive.any():
            ls, L, alpha = self._fit(D, ys, search)
            search = False
            mean, std = self._posterior(Dc, L, alpha, ls)
            acq = self._acquisition(mean, std, incumbent)
            if prior is not None:
                acq = acq * prior if self.ucb_weight is None else acq + np.log(prior)  # UCB: + prior_weight * z
            best = int(np.argmax(np.where(alive, acq, -np.inf)))
            picks.append(cands[best])
            alive[best] = False
            if len(picks) < n:  # condition on the pick at its posterior mean
                db = Dc[best]
                D = np.block([[D, db[:, None]], [db[None, :], np.zeros((1, 1))]])
                Dc = np.hstack([Dc, _sqdist(C, C[best:best + 1])])
                ys = np.append(ys, mean[best])
        while len(picks) < n:  # candidate pool exhausted
            picks.append(self.space.encode(self.space.sample(self.rng)))
        return [self.space.decode(p) for p in picks]

    def _prior_region(self, cands: list[list[int]]) -> list[list[int]]:
        """With ``prior_top`` < 1 and a scorer: the candidates whose zero-cost score reaches the cut of the warm-start
        pool (its top ``prior_top`` fraction), or all of them if none does."""
        if self.prior_top >= 1 or self._zero_cost is None or self._cut is None:
            return cands
        cut = self._cut
        kept = [c for c in cands if self._score(c) >= cut]
        return kept or cands

    def _prior_factor(self, cands: list[list[int]]) -> np.ndarray | None:
        """With ``prior_weight`` > 0 and a scorer: per candidate ``exp(prior_weight * z)``, ``z`` its standardised
        zero-cost score (clipped to +-5), the factor expected improvement is multiplied by (UCB adds its log);
        else None."""
        if not self.prior_weight or self._zero_cost is None or self._scale is None:
            return None
        mean, sd = self._scale
        z = np.clip((np.asarray([self._score(c) for c in cands]) - mean) / sd, -5.0, 5.0)
        return np.exp(self.prior_weight * z)

    def _screen(self) -> None:
        """Score ``warm_start`` uniform samples; keep the best ``n_init`` distinct ones (by path features) to
        propose first, and the pool's score mean and s.d. to standardise the score feature."""
        archs = [self.space.sample(self.rng) for _ in range(self.warm_start)]
        pool = [self.space.encode(a) for a in archs]
        scores = np.asarray([self._score(x, a) for x, a in zip(pool, archs)])
        finite = scores[scores > _WORST]
        sd = float(finite.std()) if len(finite) > 1 else 0.0
        self._scale = (float(finite.mean()) if len(finite) else 0.0, sd or 1.0)
        self._cut = float(np.quantile(finite, 1.0 - self.prior_top)) if len(finite) else None
        self._features.clear()
        ranked: list[list[int]] = []
        seen = set()
        for i in np.argsort(-scores, kind="stable"):
            if len(ranked) == self.n_init:
                break
            key = self._key(pool[int(i)])
            if key not in seen:
                seen.add(key)
                ranked.append(pool[int(i)])
        self._warm = ranked

    def _observe(self, trial: Trial, result: Result) -> None:
        fit = self.fitness(result)
        if fit is None:
            self.unfit.append(self.space.encode(trial.arch))
            return
        self.X.append(self.space.encode(trial.arch))
        self.y.append(fit[0])

    def _state(self) -> dict[str, Any]:
        return {"X": self.X, "y": self.y, "unfit": self.unfit, "n_random": self.n_random, "hyper": self._hyper,
                "warm": self._warm, "scale": None if self._scale is None else list(self._scale), "cut": self._cut}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.X = [list(x) for x in state["X"]]
        self.y = [float(v) for v in state["y"]]
        self.unfit = [list(x) for x in state.get("unfit", [])]  # absent in checkpoints written before it was kept
        self.n_random = int(state["n_random"])
        self._hyper = state["hyper"]
        self._warm = None if state["warm"] is None else [list(x) for x in state["warm"]]
        self._scale = None if state["scale"] is None else (float(state["scale"][0]), float(state["scale"][1]))
        self._cut = None if state.get("cut") is None else float(state["cut"])
        self._features.clear()
