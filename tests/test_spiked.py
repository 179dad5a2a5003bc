"""Tests for theory.spiked: the spiked rectangular model and the Gavish-Donoho thresholds.

Units throughout: sigma * sqrt(n), n = max(N, M), ratio c = p/n = min(N, M)/max(N, M).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.marchenko_pastur import MarchenkoPastur
from theory.spiked import (
    bbp_threshold,
    optimal_hard_threshold,
    optimal_shrinker_frobenius,
    outlier_singular_value,
    signal_from_outlier,
    singular_vector_overlaps,
)

EPS = np.finfo(float).eps

ratios = st.floats(min_value=1e-8, max_value=1.0, allow_nan=False, allow_infinity=False).filter(lambda c: c > 0)
# a relative distance above the threshold / the edge, log-uniform over many decades
log_gaps = st.floats(min_value=-6.0, max_value=6.0).map(lambda e: 10.0**e)


def _theta_cond(theta: float, c: float) -> float:
    """Relative condition number of theta -> s -> theta (inverse of the outlier map).

    s^2 = x + 1 + c + c/x with x = theta^2, so d(s^2)/dx = (x^2 - c)/x^2 and a relative error
    delta in s becomes a relative error 2 delta s^2 x / (x^2 - c) in x, half that in theta.
    """
    x = theta * theta
    s2 = x + 1.0 + c + c / x
    return s2 * x / (x * x - c)


# ------------------------------------------------------------------------------------- exact values
def test_known_values_square_case():
    # c = 1, theta = 2: s = sqrt(5 * 5)/2 = 2.5, both overlaps (16 - 1)/(4 * 5) = 0.75,
    # and the shrinker at y = 2.5 is sqrt((6.25 - 2)^2 - 4)/2.5 = 1.5 = 2 * 0.75.
    assert bbp_threshold(1.0) == 1.0
    assert bbp_threshold(0.0625) == pytest.approx(0.5, rel=1e-15)
    assert outlier_singular_value(2.0, 1.0) == pytest.approx(2.5, rel=1e-15)
    left, right = singular_vector_overlaps(2.0, 1.0)
    assert left == pytest.approx(0.75, rel=1e-15) and right == pytest.approx(0.75, rel=1e-15)
    assert signal_from_outlier(2.5, 1.0) == pytest.approx(2.0, rel=1e-15)
    assert optimal_shrinker_frobenius(2.5, 1.0) == pytest.approx(1.5, rel=1e-15)


def test_known_values_rectangular_case():
    # c = 1/4, theta = 1: s^2 = (1 + 1)(1/4 + 1)/1 = 2.5; left = (1 - 1/4)/(1 * 5/4) = 0.6,
    # right = (1 - 1/4)/(1 * 2) = 0.375 (the two sides differ when c < 1).
    c = 0.25
    assert outlier_singular_value(1.0, c) == pytest.approx(math.sqrt(2.5), rel=1e-15)
    left, right = singular_vector_overlaps(1.0, c)
    assert left == pytest.approx(0.6, rel=1e-15)
    assert right == pytest.approx(0.375, rel=1e-15)
    assert signal_from_outlier(math.sqrt(2.5), c) == pytest.approx(1.0, rel=1e-14)


def test_scalar_in_float_out_array_in_array_out():
    c = 0.3
    for fn, arg in (
        (outlier_singular_value, 1.2),
        (signal_from_outlier, 2.0),
        (optimal_shrinker_frobenius, 2.0),
    ):
        for scalar in (arg, np.float64(arg), np.array(arg), 2):
            assert type(fn(scalar, c)) is float
        out = fn([[0.5, arg], [arg, 3.0]], c)
        assert isinstance(out, np.ndarray) and out.shape == (2, 2) and out.dtype == np.float64
        np.testing.assert_array_equal(out[0, 1], fn(arg, c))
    left, right = singular_vector_overlaps(1.2, c)
    assert type(left) is float and type(right) is float
    left, right = singular_vector_overlaps(np.full((3, 1), 1.2), c)
    assert left.shape == right.shape == (3, 1)
    assert type(optimal_hard_threshold(c)) is float
    assert type(optimal_hard_threshold(c, sigma_known=False)) is float


def test_no_overflow_for_huge_arguments():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid-value RuntimeWarning fails the test
        for c in (1e-6, 0.5, 1.0):
            assert outlier_singular_value(1e200, c) == pytest.approx(1e200, rel=1e-15)
            left, right = singular_vector_overlaps(1e200, c)
            assert left == 1.0 and right == 1.0
            assert signal_from_outlier(1e300, c) == pytest.approx(1e300, rel=1e-15)
            assert optimal_shrinker_frobenius(1e300, c) == pytest.approx(1e300, rel=1e-15)


# ------------------------------------------------------------------------------------- BBP maps
@settings(deadline=None)  # pure arithmetic; a loaded CI machine must not make it flaky
@given(c=st.floats(min_value=1e-3, max_value=1.0), gap=st.floats(min_value=-1.0, max_value=4.0).map(lambda e: 10.0**e))
def test_roundtrip_well_conditioned(c, gap):
    # theta at least 10 % above the threshold and c >= 1e-3: the condition number of the
    # round trip is < 50, so it is exact to 1e-12.
    theta = bbp_threshold(c) * (1.0 + gap)
    back = signal_from_outlier(outlier_singular_value(theta, c), c)
    assert back == pytest.approx(theta, rel=1e-12, abs=0.0)


@settings(deadline=None)
@given(c=ratios, gap=log_gaps)
def test_roundtrip_everywhere_within_conditioning(c, gap):
    # Close to the threshold the outlier map is flat, so no implementation can do better than
    # (a few ulp) x (condition number); this one must reach that bound.
    theta = bbp_threshold(c) * (1.0 + gap)
    back = signal_from_outlier(outlier_singular_value(theta, c), c)
    tol = 1e-12 + 8.0 * EPS * _theta_cond(theta, c)
    assert abs(back - theta) <= tol * theta


@settings(deadline=None)
@given(c=ratios, gaps=st.lists(log_gaps, min_size=2, max_size=30, unique=True))
def test_outlier_increasing_above_threshold_constant_below(c, gaps):
    tc = bbp_threshold(c)
    theta = tc * (1.0 + np.sort(np.asarray(gaps)))
    s = outlier_singular_value(theta, c)
    edge = 1.0 + math.sqrt(c)
    assert np.all(s >= edge)
    assert np.all(np.diff(s) >= -2.0 * EPS * s[1:])  # non-decreasing up to rounding
    if theta[-1] > 1.01 * theta[0]:
        assert s[-1] > s[0]
    below = tc * np.array([0.0, 1e-3, 0.5, 0.999, 1.0])
    np.testing.assert_array_equal(outlier_singular_value(below, c), np.full(5, edge))


@settings(deadline=None)
@given(c=ratios, thetas=st.lists(st.floats(min_value=0.0, max_value=1e6), min_size=2, max_size=30, unique=True))
def test_overlaps_in_unit_interval_and_increasing(c, thetas):
    theta = np.sort(np.asarray(thetas))
    left, right = singular_vector_overlaps(theta, c)
    for ov in (left, right):
        assert np.all((ov >= 0.0) & (ov <= 1.0))
        assert np.all(np.diff(ov) >= -4.0 * EPS * ov[1:])  # non-decreasing up to rounding
    tc = bbp_threshold(c)
    assert np.all(left[theta <= tc] == 0.0) and np.all(right[theta <= tc] == 0.0)
    assert np.all(left[theta > 1.01 * tc] > 0.0) and np.all(right[theta > 1.01 * tc] > 0.0)
    # the p-side overlap is the larger one: denominators theta^2 + c <= theta^2 + 1
    assert np.all(left >= right * (1.0 - 4.0 * EPS))


@settings(deadline=None)
@given(c=ratios, delta=st.floats(min_value=-12.0, max_value=-6.0).map(lambda e: 10.0**e))
def test_continuity_at_threshold(c, delta):
    # theta = theta_c (1 + delta): expanding theta^4 - c = 4 c delta + O(delta^2) gives
    # left ~ 4 delta/(1 + sqrt c), right ~ 4 sqrt(c) delta/(1 + sqrt c), and
    # s - (1 + sqrt c) ~ 2 sqrt(c) delta^2/(1 + sqrt c).
    tc = bbp_threshold(c)
    theta = tc * (1.0 + delta)
    delta = theta / tc - 1.0  # the delta actually represented in floating point
    rc = math.sqrt(c)
    edge = 1.0 + rc
    s = outlier_singular_value(theta, c)
    assert 0.0 <= s - edge <= 2.0 * rc * delta**2 / edge * 1.01 + 4.0 * EPS * edge
    left, right = singular_vector_overlaps(theta, c)
    assert left == pytest.approx(4.0 * delta / edge, rel=1e-3)
    assert right == pytest.approx(4.0 * rc * delta / edge, rel=1e-3)


@settings(deadline=None)
@given(c=ratios, frac=st.floats(min_value=0.0, max_value=1.0))
def test_signal_from_outlier_zero_inside_bulk(c, frac):
    edge = 1.0 + math.sqrt(c)
    assert signal_from_outlier(frac * edge, c) == 0.0
    assert optimal_shrinker_frobenius(frac * edge, c) == 0.0


@settings(deadline=None)
@given(c=ratios, gap=log_gaps)
def test_signal_from_outlier_is_above_threshold(c, gap):
    s = (1.0 + math.sqrt(c)) * (1.0 + gap)
    assert signal_from_outlier(s, c) >= bbp_threshold(c) * (1.0 - 4.0 * EPS)


# ------------------------------------------------------------------------------------- Gavish-Donoho
@settings(deadline=None)
@given(c=ratios, gap=st.floats(min_value=-8.0, max_value=6.0).map(lambda e: 10.0**e))
def test_frobenius_shrinker_equals_theta_times_overlaps(c, gap):
    # Gavish-Donoho (2017) eta(y) = theta(y) * sqrt(left * right) with theta(y) from
    # Benaych-Georges-Nadakuditi: theta^2 l r = (theta^4 - c)^2/(theta^4 s^2) = disc/s^2.
    y = (1.0 + math.sqrt(c)) * (1.0 + gap)
    theta = signal_from_outlier(y, c)
    left, right = singular_vector_overlaps(theta, c)
    assert optimal_shrinker_frobenius(y, c) == pytest.approx(theta * math.sqrt(left * right), rel=1e-10)


@settings(deadline=None)
@given(c=ratios, ys=st.lists(st.floats(min_value=0.0, max_value=1e3), min_size=1, max_size=20))
def test_frobenius_shrinker_identity_vectorised_including_bulk(c, ys):
    y = np.asarray(ys)
    theta = signal_from_outlier(y, c)
    left, right = singular_vector_overlaps(theta, c)
    np.testing.assert_allclose(optimal_shrinker_frobenius(y, c), theta * np.sqrt(left * right), rtol=1e-10, atol=0)
    assert np.all(optimal_shrinker_frobenius(y, c) <= y)  # a shrinker never inflates


def test_hard_threshold_square_is_four_over_root_three():
    assert optimal_hard_threshold(1.0) == pytest.approx(4.0 / math.sqrt(3.0), rel=1e-15)


@settings(deadline=None)
@given(c=ratios)
def test_hard_threshold_above_bulk_edge(c):
    lam = optimal_hard_threshold(c)
    assert lam > 1.0 + math.sqrt(c)
    # and below sqrt(2) * (1 + sqrt c): lambda*^2 = 2(b + 1) + 8b/(...) <= 2 (1 + sqrt b)^2
    # since 8b/((b + 1) + sqrt(b^2 + 14b + 1)) <= 4 sqrt(b)
    assert lam <= math.sqrt(2.0) * (1.0 + math.sqrt(c))


def test_omega_matches_polynomial_approximation():
    # Gavish-Donoho (2014) fit omega(beta) ~ 0.56 b^3 - 0.95 b^2 + 1.82 b + 1.43, stated to be
    # accurate to about 0.02; our omega uses the exact MP median.
    betas = np.concatenate([[1e-4, 1e-3], np.linspace(0.01, 1.0, 100)])
    for b in betas:
        omega = optimal_hard_threshold(float(b), sigma_known=False)
        poly = 0.56 * b**3 - 0.95 * b**2 + 1.82 * b + 1.43
        assert abs(omega - poly) < 0.02, (b, omega, poly)
        # the definition omega = lambda* / sqrt(MP median)
        mu = float(MarchenkoPastur(ratio=float(b)).ppf(0.5))
        assert omega == pytest.approx(optimal_hard_threshold(float(b)) / math.sqrt(mu), rel=1e-14)
    assert optimal_hard_threshold(1.0, sigma_known=False) == pytest.approx(2.858, abs=1e-3)


def test_omega_times_median_singular_value_recovers_known_sigma_threshold():
    # What is multiplied by what: omega(beta) times the median singular value of the observed
    # (raw, unscaled) matrix is the known-sigma threshold lambda* sigma sqrt(n). Pure noise with
    # sigma = 3, N = 300, M = 600: the sample median of the singular values has relative
    # fluctuations O(1/n), far below the 1 % tolerance; a wrong power of the median
    # (mu instead of sqrt(mu)) would be off by ~25 %.
    rng = np.random.default_rng(20240607)
    N, M, sigma = 300, 600, 3.0
    W = sigma * rng.standard_normal((N, M))
    sv = np.sqrt(np.clip(scipy.linalg.eigvalsh(W @ W.T), 0.0, None))
    tau = optimal_hard_threshold(N / M, sigma_known=False) * np.median(sv)
    assert tau == pytest.approx(optimal_hard_threshold(N / M) * sigma * math.sqrt(M), rel=0.01)


# ------------------------------------------------------------------------------------- Monte-Carlo
def _top_triplet_overlaps(rng: np.random.Generator, N: int, M: int, theta: float):
    """One draw of W = R/sqrt(n) + theta u v^T (R standard normal): top singular value and overlaps."""
    n = max(N, M)
    W = rng.standard_normal((N, M)) / math.sqrt(n)
    u = rng.standard_normal(N)
    u /= np.linalg.norm(u)
    v = rng.standard_normal(M)
    v /= np.linalg.norm(v)
    W += theta * np.outer(u, v)
    w, U = scipy.linalg.eigh(W @ W.T, subset_by_index=[N - 1, N - 1])
    s = math.sqrt(w[0])
    u_hat = U[:, 0]
    v_hat = W.T @ u_hat / s
    return s, float(u_hat @ u) ** 2, float(v_hat @ v) ** 2


MC_N, MC_M, MC_T = 400, 800, 8


def _simulate(theta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([_top_triplet_overlaps(rng, MC_N, MC_M, theta) for _ in range(MC_T)])


# Tolerance above the threshold (derivation).
# The simulated mean over T trials differs from the n = infinity limit by
#   (sampling error) + (finite-size bias).
# * Sampling error: the outlier and the overlaps fluctuate around their finite-n means by
#   O(n^-1/2) (Gaussian fluctuations, Bai-Yao / Benaych-Georges-Guionnet-Maida); the mean of T
#   independent trials has standard error sd/sqrt(T), estimated by the sample sd. 4 standard
#   errors (a t_7 tail of about 0.5 %) cover it; with T = 8 the sample sd itself is uncertain
#   by ~25 %, which the 4 (instead of ~2) absorbs.
# * Bias: the finite-n mean differs from the limit by O(1/n) (the second-order term when the
#   O(n^-1/2) fluctuation of the master equation is propagated through its curved solution,
#   plus the O(1/n) mean correction of the real-Gaussian Stieltjes transform). Measured with
#   the same generator as below (seed 2, theta = 1.5 and 2.5):
#       N x M = 400 x 800, 1000 trials: bias * n = -1.36 +- 0.70 (outlier), -0.19 +- 0.52 and
#           -0.67 +- 0.52 (overlaps) at theta = 1.5; -1.45 +- 0.81, 0.21 +- 0.16, -0.09 +- 0.19
#           at theta = 2.5;
#       N x M = 200 x 400, 3000 trials: bias * n = -0.39 +- 0.29, 0.01 +- 0.22, 0.04 +- 0.21 and
#           -0.32 +- 0.33, 0.07 +- 0.06, 0.08 +- 0.08.
#   So |bias| * n <= 3 (outlier) and <= 2 (overlaps) at both sizes (measured value + 2 standard
#   errors, rounded up): a bias of O(1/n) with a small constant. We allow twice that, 2 * MC_BIAS_N / n.
#   (The sampling part dominates: 4 se ~ 0.04 for the outlier vs an allowance of 0.0075.)
# A wrong formula is off by far more: e.g. swapping left and right overlaps at theta = 1.5 is
# 0.11 away, and the outlier without the c (sqrt((1 + t^2)(1 + t^2))/t) is 0.17 away.
MC_BIAS_N = {"outlier": 3.0, "left": 2.0, "right": 2.0}  # bound on |measured bias| * n; see above


@pytest.mark.parametrize("theta, seed", [(1.5, 11), (2.5, 12)])
def test_monte_carlo_above_threshold(theta, seed):
    c, n = MC_N / MC_M, MC_M
    sims = _simulate(theta, seed)
    mean = sims.mean(axis=0)
    se = sims.std(axis=0, ddof=1) / math.sqrt(MC_T)
    pred = np.array([outlier_singular_value(theta, c), *singular_vector_overlaps(theta, c)])
    allowance = 2.0 * np.array([MC_BIAS_N["outlier"], MC_BIAS_N["left"], MC_BIAS_N["right"]]) / n
    tol = 4.0 * se + allowance
    print(f"theta={theta}: predicted {pred.round(4)}, simulated mean {mean.round(4)} +- {se.round(4)}, tol {tol.round(4)}")
    assert np.all(np.abs(mean - pred) <= tol), (theta, pred, mean, tol)


def test_monte_carlo_below_threshold():
    # theta = 0.5 < c^(1/4) = 0.84 (and outside the critical window c^(1/4) +- O(n^-1/3)).
    # Top singular value: the spike leaves the edge statistics unchanged (BBP), so the top
    # singular value is 1 + sqrt c + O(n^-2/3) with Tracy-Widom fluctuations. Johnstone's
    # scale for the largest eigenvalue of R R^T is sigma_np = (sqrt(n-1) + sqrt(p))
    # (1/sqrt(n-1) + 1/sqrt(p))^(1/3); for s = sqrt(l/n) that becomes
    # sigma_np / (2 sqrt(n) (sqrt(n-1) + sqrt(p))) ~ 0.0078 here. The TW1 mean is -1.21 of these
    # units; we allow 3 units plus 4 standard errors of the mean over the T trials.
    # Overlaps: the limit is 0; at finite n they are O(1/n) (a random direction alone gives
    # 1/p = 0.0025), so 1/sqrt(p) = 0.05 separates "no signal" from the O(1) overlaps a
    # detectable spike would give (0.74 at theta = 1.5).
    theta, c, n, p = 0.5, MC_N / MC_M, MC_M, MC_N
    assert theta < bbp_threshold(c) - 2.0 * n ** (-1.0 / 3.0)
    sims = _simulate(theta, 13)
    mean = sims.mean(axis=0)
    se = sims.std(axis=0, ddof=1) / math.sqrt(MC_T)
    edge = outlier_singular_value(theta, c)
    assert edge == 1.0 + math.sqrt(c)
    a, b = math.sqrt(n - 1), math.sqrt(p)
    tw_scale = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0) / (2.0 * math.sqrt(n) * (a + b))
    print(f"theta={theta}: edge {edge:.4f}, simulated top s {mean[0]:.4f} +- {se[0]:.4f}, TW scale {tw_scale:.4f}, overlaps {mean[1:].round(4)}")
    assert abs(mean[0] - edge) <= 3.0 * tw_scale + 4.0 * se[0], (mean[0], edge, tw_scale, se[0])
    left, right = singular_vector_overlaps(theta, c)
    assert left == 0.0 and right == 0.0
    assert mean[1] < 1.0 / math.sqrt(p) and mean[2] < 1.0 / math.sqrt(p), mean


# ------------------------------------------------------------------------------------- bad input
ALL_FUNCS = [
    ("outlier_singular_value", lambda c: outlier_singular_value(1.0, c)),
    ("singular_vector_overlaps", lambda c: singular_vector_overlaps(1.0, c)),
    ("signal_from_outlier", lambda c: signal_from_outlier(2.0, c)),
    ("optimal_shrinker_frobenius", lambda c: optimal_shrinker_frobenius(2.0, c)),
    ("bbp_threshold", bbp_threshold),
    ("optimal_hard_threshold", optimal_hard_threshold),
    ("optimal_hard_threshold_unknown", lambda c: optimal_hard_threshold(c, sigma_known=False)),
]


@pytest.mark.parametrize("name, fn", ALL_FUNCS)
@pytest.mark.parametrize("bad", [0.0, -0.5, 1.0000001, 2.0, math.nan, math.inf, -math.inf])
def test_bad_ratio_value(name, fn, bad):
    with pytest.raises(ValueError, match="ratio"):
        fn(bad)


@pytest.mark.parametrize("name, fn", ALL_FUNCS)
@pytest.mark.parametrize("bad", ["0.5", None, True, [0.5], np.array([0.5]), 0.5 + 0j])
def test_bad_ratio_type(name, fn, bad):
    with pytest.raises(TypeError, match="ratio"):
        fn(bad)


ARRAY_FUNCS = [
    ("theta", outlier_singular_value),
    ("theta", lambda x, c: singular_vector_overlaps(x, c)),
    ("s", signal_from_outlier),
    ("y", optimal_shrinker_frobenius),
]


@pytest.mark.parametrize("argname, fn", ARRAY_FUNCS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, -1e-300, [1.0, math.nan], [[2.0], [-3.0]], []])
def test_bad_array_value(argname, fn, bad):
    with pytest.raises(ValueError, match=rf"^{argname} "):
        fn(bad, 0.5)


@pytest.mark.parametrize("argname, fn", ARRAY_FUNCS)
@pytest.mark.parametrize("bad", ["1.0", None, [1.0, "a"], np.array([1 + 1j])])
def test_bad_array_type(argname, fn, bad):
    with pytest.raises(TypeError, match=rf"^{argname} "):
        fn(bad, 0.5)


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_bad_sigma_known(bad):
    with pytest.raises(TypeError, match="sigma_known"):
        optimal_hard_threshold(0.5, sigma_known=bad)


def test_error_messages_name_the_value():
    with pytest.raises(ValueError, match=r"ratio.*1\.5"):
        outlier_singular_value(1.0, 1.5)
    with pytest.raises(ValueError, match=r"theta.*-2\.0"):
        outlier_singular_value([1.0, -2.0], 0.5)
    with pytest.raises(ValueError, match=r"y.*nan"):
        optimal_shrinker_frobenius([1.0, math.nan], 0.5)
