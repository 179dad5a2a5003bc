"""Tests for theory.goodness_of_fit.mp_fit_error (papers.md section 0.3)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.goodness_of_fit import mp_fit_error
from theory.marchenko_pastur import MarchenkoPastur
from theory.spectrum import esd, fit_spectrum

dims_st = st.integers(min_value=1, max_value=400).flatmap(
    lambda p: st.tuples(st.just(p), st.integers(min_value=p, max_value=20 * p))
)


# ------------------------------------------------------------------------------ exact identities
@settings(max_examples=80, deadline=None)
@given(dims_st, st.floats(min_value=1e-3, max_value=1e3))
def test_full_ks_of_exact_midpoint_quantiles_is_half_over_p(pn, sigma2):
    # x_(i) = F^-1((i - 1/2)/p): both one-sided gaps are exactly 1/(2p) at every jump.
    p, n = pn
    lam = MarchenkoPastur(p / n, sigma2).ppf((np.arange(1, p + 1) - 0.5) / p)
    d = mp_fit_error(lam, p=p, n=n, sigma2=sigma2, window="full")
    assert abs(d - 0.5 / p) <= 1e-12


@settings(max_examples=40, deadline=None)
@given(dims_st.filter(lambda pn: pn[0] >= 2), st.integers(min_value=0, max_value=2**32 - 1))
def test_full_ks_equals_scipy_kstest(pn, seed):
    # an independent evaluation of the same sup-distance (scipy evaluates D+ and D- itself)
    p, n = pn
    law = MarchenkoPastur(p / n, 1.3)
    lam = law.rvs(p, random_state=seed) * np.random.default_rng(seed).uniform(0.8, 1.2)
    d = mp_fit_error(lam, p=p, n=n, sigma2=1.3, window="full")
    ref = scipy.stats.kstest(lam, law.cdf).statistic
    assert d == pytest.approx(ref, abs=1e-14)


@pytest.mark.parametrize("p, n, alpha", [(100, 200, 0.2), (37, 50, 0.25), (500, 500, 0.1)])
def test_central_error_index_convention(p, n, alpha):
    # Put the window's eigenvalues exactly at the levels alpha + (1 - 2 alpha) j / L: error 0.
    law = MarchenkoPastur(p / n, 0.8)
    lo, hi = math.floor(alpha * p), math.floor((1 - alpha) * p)
    L = hi - lo
    levels = np.empty(p)
    levels[lo:hi] = alpha + (1 - 2 * alpha) * np.arange(L) / L
    levels[:lo] = np.linspace(0.0, levels[lo], lo + 1)[:-1] if lo else levels[:0]
    levels[hi:] = np.linspace(levels[hi - 1], 1.0, p - hi + 1)[1:]
    lam = law.ppf(levels)
    assert mp_fit_error(lam, p=p, n=n, sigma2=0.8, alpha=alpha) <= 1e-13
    # move one window eigenvalue (keeping the order): the error is exactly that point's CDF gap
    j = L // 2
    lam2 = lam.copy()
    lam2[lo + j] = 0.5 * (lam[lo + j] + lam[lo + j + 1])
    expected = law.cdf(lam2[lo + j]) - levels[lo + j]
    assert expected > 1e-4
    assert mp_fit_error(lam2, p=p, n=n, sigma2=0.8, alpha=alpha) == pytest.approx(expected, rel=1e-10)
    # a change outside the window does not count
    lam3 = lam.copy()
    lam3[-1] *= 10.0
    assert mp_fit_error(lam3, p=p, n=n, sigma2=0.8, alpha=alpha) <= 1e-13


def test_mp_cdf_is_one_above_the_edge_in_the_window():
    # Regression for the seed code's MP CDF, which returned 0 above lambda_+. The top 25 % of a
    # spectrum lies above the edge, so the central window [20 %, 80 %) reaches above it.
    p, n, sigma2, alpha = 200, 400, 1.0, 0.2
    law = MarchenkoPastur(p / n, sigma2)
    k_out = p // 4
    lam = law.ppf((np.arange(1, p - k_out + 1) - 0.5) / p)
    lam = np.concatenate([lam, law.lambda_plus * (1.5 + np.arange(k_out) / k_out)])
    assert float(law.cdf(law.lambda_plus * 1.5)) == 1.0
    lo, hi = math.floor(alpha * p), math.floor((1 - alpha) * p)
    L = hi - lo
    empirical = alpha + (1 - 2 * alpha) * np.arange(L) / L
    theoretical = np.where(lam[lo:hi] > law.lambda_plus, 1.0, law.cdf(lam[lo:hi]))
    expected = np.max(np.abs(theoretical - empirical))
    err = mp_fit_error(lam, p=p, n=n, sigma2=sigma2, alpha=alpha)
    assert err == pytest.approx(expected, rel=1e-12)
    # the first above-edge point of the window (0-based index 150, empirical level 0.75) sets it:
    assert err == pytest.approx(1.0 - empirical[p - k_out - lo], rel=1e-12)
    assert err == pytest.approx(0.25, rel=1e-12)  # with CDF = 0 above the edge: the last level, 0.795


# ------------------------------------------------------------------------------ statistics
def test_pure_noise_error_is_small_and_shrinks_with_p():
    # measured (n = 2p): mean 0.023 at p = 100, 0.0071 at 400, 0.0022 at 1600 (faster than
    # 1/sqrt(p): MP eigenvalues are rigid)
    means = []
    for p, seeds in ((100, range(6)), (300, range(3)), (900, range(1))):
        errs = [fit_spectrum(np.random.default_rng([s, p]).standard_normal((p, 2 * p))).mp_fit_error for s in seeds]
        means.append(float(np.mean(errs)))
    assert means[0] < 0.05
    assert means[2] < 0.01
    assert means[0] > means[1] > means[2]
    assert means[0] > 2.0 * means[2]


def test_heavy_tails_and_low_rank_give_a_larger_error():
    # measured on 30 seeds at 400 x 800: Gaussian noise 0.006-0.010 (mean 0.0073),
    # Student-t(2.5) 0.017-0.025 (mean 0.021), low-rank dominated ~0.38.
    noise, heavy, lowrank = [], [], []
    for s in range(3):
        rng = np.random.default_rng([s, 99])
        noise.append(fit_spectrum(rng.standard_normal((400, 800))).mp_fit_error)
        heavy.append(fit_spectrum(rng.standard_t(2.5, size=(400, 800))).mp_fit_error)
        A = rng.standard_normal((400, 200)) @ rng.standard_normal((200, 800)) / math.sqrt(200)
        lowrank.append(fit_spectrum(A + 0.3 * rng.standard_normal((400, 800))).mp_fit_error)
    assert max(noise) < 0.0125 < min(heavy)
    assert np.mean(heavy) > 2.0 * np.mean(noise)
    assert min(lowrank) > 0.2


def test_full_window_on_noise_is_small():
    rng = np.random.default_rng(5)
    lam = esd(rng.standard_normal((500, 1000)))
    assert mp_fit_error(lam, p=500, n=1000, sigma2=1.0, window="full") < 0.02
    # and a wrong sigma2 is detected
    assert mp_fit_error(lam, p=500, n=1000, sigma2=1.2, window="full") > 0.05


# ------------------------------------------------------------------------------ bad input
LAM = MarchenkoPastur(0.5).ppf((np.arange(1, 51) - 0.5) / 50)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(window="tail"), ValueError, "window"),
        (dict(window=None), ValueError, "window"),
        (dict(sigma2=0.0), ValueError, "sigma2"),
        (dict(sigma2=-1.0), ValueError, "sigma2"),
        (dict(sigma2=float("nan")), ValueError, "sigma2"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=0.5), ValueError, "alpha"),
        (dict(p=49), ValueError, "eigenvalues"),
        (dict(n=10), ValueError, "p must be <= n"),
        (dict(eigenvalues=np.r_[LAM[:-1], np.nan]), ValueError, "eigenvalues"),
        (dict(eigenvalues=["x"] * 50), TypeError, "eigenvalues"),
    ],
)
def test_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(eigenvalues=LAM, p=50, n=100, sigma2=1.0) | kwargs
    with pytest.raises(exc, match=word):
        mp_fit_error(**args)


def test_empty_central_window_is_an_error():
    with pytest.raises(ValueError, match="window"):
        mp_fit_error([1.0], p=1, n=2, sigma2=1.0)
    # the full window works for any p >= 1
    assert 0.0 <= mp_fit_error([1.0], p=1, n=2, sigma2=1.0, window="full") <= 1.0
