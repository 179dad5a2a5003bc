"""Self-checks of the random-matrix core, each returning a :class:`CheckRecord`.

``rmt verify`` runs these (and, from ``simulations``, the theorem checks) and prints a table.
Every check measures an error against an independent reference (mpmath at 30+ digits, a full
SVD, a seeded Monte-Carlo simulation) and compares it with a stated bound; nothing is typed in
except the literature constants, which are cited.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class CheckRecord:
    """One verified statement: what was claimed, the bound, what was measured, and whether it held."""

    name: str
    statement: str
    bound: float
    measured: float
    held: bool
    trials: int
    seed: int | None
    details: str = ""
    #: "within": the statement's hypotheses hold, so it must hold (rmt verify fails otherwise);
    #: "outside": a hypothesis is violated on purpose, to show where the statement stops
    #: describing reality; the outcome is reported, not required.
    regime: str = "within"

    def as_dict(self) -> dict:
        return asdict(self)


def make_record(name: str, statement: str, bound: float, measured: float, trials: int, seed: int | None,
                details: str = "", regime: str = "within") -> CheckRecord:
    """A record for a statement of the form "measured <= bound"."""
    if regime not in ("within", "outside"):
        raise ValueError(f"regime must be 'within' or 'outside', got {regime!r}")
    measured = float(measured)
    return CheckRecord(name, statement, float(bound), measured, bool(measured <= bound), int(trials), seed,
                       details, regime)


# --------------------------------------------------------------------------- Tracy-Widom
def tw_cdf_accuracy(quick: bool = True, seed: int | None = None) -> CheckRecord:
    from .tracy_widom import TracyWidom

    pts = (-3.0, 0.0, 2.0) if quick else (-8.0, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, 8.0)
    err = 0.0
    for beta in (1, 2, 4):
        tw = TracyWidom(beta)
        got = tw.cdf(np.array(pts))
        ref = tw.cdf(np.array(pts), dps=32)
        err = max(err, max(abs(float(g - r)) for g, r in zip(got, ref)))
    return make_record("tw_cdf_vs_mpmath", "TracyWidom(beta).cdf, beta in {1,2,4}: max absolute error against a "
                   "32-digit mpmath Fredholm determinant", 1e-12, err, len(pts) * 3, None,
                   f"points {pts}")


def tw_sf_accuracy(quick: bool = True, seed: int | None = None) -> CheckRecord:
    from .tracy_widom import TracyWidom

    pts = (2.0, 5.0) if quick else (0.0, 1.5, 3.0, 5.0, 8.0)
    err = 0.0
    for beta in (1, 2, 4):
        tw = TracyWidom(beta)
        got = tw.sf(np.array(pts))
        ref = tw.sf(np.array(pts), dps=32)
        err = max(err, max(abs(float((g - r) / r)) for g, r in zip(got, ref)))
    return make_record("tw_sf_vs_mpmath", "TracyWidom(beta).sf (upper tail, used by spike p-values): max relative "
                   "error against mpmath", 1e-9, err, len(pts) * 3, None, f"points {pts}")


# Bornemann (2010), "On the numerical evaluation of distributions in random matrix theory", Table 4.
_TW_MOMENTS = {1: (-1.2065335745820, 1.607781034581), 2: (-1.7710868074116, 0.8131947928329),
               4: (-2.306884893241, 0.5177237207726)}


def tw_moments(quick: bool = True, seed: int | None = None) -> CheckRecord:
    from .tracy_widom import TracyWidom

    err = max(max(abs(TracyWidom(b).mean() - m), abs(TracyWidom(b).var() - v)) for b, (m, v) in _TW_MOMENTS.items())
    return make_record("tw_moments", "TracyWidom mean and variance equal the published 12-13 digit values "
                   "(Bornemann 2010)", 2e-12, err, 6, None)


# --------------------------------------------------------------------------- Marchenko-Pastur
def mp_cdf_accuracy(quick: bool = True, seed: int | None = None) -> CheckRecord:
    from .marchenko_pastur import MarchenkoPastur

    worst = 0.0
    npts = 8 if quick else 40
    for ratio in (0.25, 1.0, 3.0):
        mp = MarchenkoPastur(ratio, sigma2=1.7)
        a, b = mp.edges
        x = np.concatenate([np.linspace(a, b, npts + 2)[1:-1], a + (b - a) * np.logspace(-8, -2, 3),
                            b - (b - a) * np.logspace(-8, -2, 3)])
        got = mp.cdf(x)
        ref = np.array([float(v) for v in mp.cdf(x, dps=30)])
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return make_record("mp_cdf_vs_mpmath", "MarchenkoPastur.cdf (closed form) against mpmath quadrature of the "
                   "density: max absolute error (ratios 0.25, 1, 3)", 1e-14, worst, 3 * (npts + 6), None)


def mp_ppf_roundtrip(quick: bool = True, seed: int | None = 0) -> CheckRecord:
    from .marchenko_pastur import MarchenkoPastur

    rng = np.random.default_rng(seed)
    q = rng.random(10**5)
    worst = 0.0
    for ratio in (0.25, 1.0):
        mp = MarchenkoPastur(ratio)
        x = mp.ppf(q)
        worst = max(worst, float(np.max(np.abs(mp.cdf(x) - q))))
    return make_record("mp_ppf_roundtrip", "MarchenkoPastur.ppf on 1e5 random levels (one vectorised call): "
                   "max |cdf(ppf(q)) - q|", 8 * EPS, worst, q.size, seed,
                   "ratios 0.25 and 1 (speed: benchmarks/mp_quantiles.py; records hold no timings, so that every "
                   "backend writes identical records)")


# --------------------------------------------------------------------------- BEMA, edge, esd
def bema_sigma2(quick: bool = True, seed: int | None = 0) -> CheckRecord:
    from .bema import bema
    from .spectrum import esd

    rng = np.random.default_rng(seed)
    worst, shapes = 0.0, [(1000, 1000), (500, 2000)]
    sigma2 = 2.5
    for N, M in shapes:
        for law in ("gaussian", "rademacher"):
            if law == "gaussian":
                W = rng.standard_normal((N, M))
            else:
                W = rng.choice(np.array([-1.0, 1.0]), size=(N, M))
            W *= np.sqrt(sigma2)
            fit = bema(esd(W), p=min(N, M), n=max(N, M))
            worst = max(worst, abs(fit.sigma2 / sigma2 - 1.0))
    return make_record("bema_sigma2_recovery", "bema recovers the noise variance of pure-noise 1000x1000 and "
                   "500x2000 matrices (Gaussian, Rademacher): max relative error", 0.01, worst, 4, seed)


def bema_false_spikes(quick: bool = True, seed: int | None = 0) -> CheckRecord:
    from .bema import bema
    from .spectrum import esd

    rng = np.random.default_rng(seed)
    trials = 300 if quick else 3000
    p, n, beta = 200, 400, 0.1
    lam = esd(rng.standard_normal((trials, p, n)))
    rate = float(np.mean([bema(v, p=p, n=n, beta=beta).n_spikes >= 1 for v in lam]))
    # Finite-size excess of the published estimator (k/p quantile matching under-estimates sigma2
    # by ~0.5% at p = 200), measured on 20 000 null 200x400 matrices: rate 0.148 +- 0.0025, i.e.
    # an excess of 0.048; it shrinks with n (0.137 at 400x800). Allowance = excess + 3 s.e.
    allowance = 0.048 + 3 * 0.0025
    tol = 4 * np.sqrt(beta * (1 - beta) / trials) + allowance
    return make_record("bema_false_spike_rate", f"on pure noise ({p}x{n}) bema finds a spike with probability close to "
                   f"beta = {beta}: |rate - beta| <= binomial 4-sigma + the measured finite-size excess "
                   f"{allowance:.3f}", tol, abs(rate - beta), trials, seed, f"rate {rate:.3f}")


def edge_pvalue_uniform(quick: bool = True, seed: int | None = 0) -> CheckRecord:
    from .edge import spike_pvalue
    from .spectrum import esd

    rng = np.random.default_rng(seed)
    trials = 400 if quick else 4000
    p, n = 60, 120
    lam_max = esd(rng.standard_normal((trials, p, n)))[:, -1]
    u = np.sort(spike_pvalue(lam_max, p, n))
    k = np.arange(1, trials + 1)
    ks = max(np.max(k / trials - u), np.max(u - (k - 1) / trials))
    dkw = np.sqrt(np.log(2 / 1e-3) / (2 * trials))
    return make_record("edge_pvalue_null_uniform", "Johnstone-scaled TW1 p-values of the largest eigenvalue of null "
                   f"{p}x{n} Gaussian matrices are uniform: KS distance (DKW bound, delta=1e-3)", dkw, ks, trials, seed)


def esd_vs_svd(quick: bool = True, seed: int | None = 0) -> CheckRecord:
    from .spectrum import esd

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((768, 3072))
    lam = esd(W)
    s = np.linalg.svd(W, compute_uv=False)
    ref = np.sort(s**2 / 3072)
    err = float(np.max(np.abs(lam - ref) / ref.max()))
    return make_record("esd_vs_svd", "esd(W) (eigenvalues of the smaller Gram matrix) equals s^2/n from a full SVD, "
                   "768x3072: max error relative to the largest eigenvalue", 1e-12, err, 1, seed,
                   "float64 Gaussian matrix (speed: benchmarks/analyze_models.py)")


CORE_CHECKS: tuple[Callable[..., CheckRecord], ...] = (
    tw_cdf_accuracy, tw_sf_accuracy, tw_moments, mp_cdf_accuracy, mp_ppf_roundtrip,
    bema_sigma2, bema_false_spikes, edge_pvalue_uniform, esd_vs_svd,
)


def spawn_seeds(root: int, n: int) -> list[int]:
    """The seeds of n independent tasks: a 32-bit integer from each child of
    ``numpy.random.SeedSequence(root).spawn(n)`` (child i depends only on ``root`` and i, not on n)."""
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0:
        raise ValueError(f"root seed must be an integer >= 0, got {root!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in np.random.SeedSequence(int(root)).spawn(int(n))]


def run_core_checks(quick: bool = True, seed: int = 0, progress: bool = True) -> list[CheckRecord]:
    """Run every core self-check; ``quick`` uses small sizes (well under a minute on 2 cores).

    Check i runs with ``spawn_seeds(seed, len(CORE_CHECKS))[i]``, the seed it gets as task i of
    ``rmt verify`` on any backend (``simulations.parallel``)."""
    from tqdm.auto import tqdm

    out = []
    seeds = spawn_seeds(seed, len(CORE_CHECKS))
    for check, s in tqdm(list(zip(CORE_CHECKS, seeds)), desc="core checks", disable=not progress, leave=False):
        out.append(check(quick=quick, seed=s))
    return out
