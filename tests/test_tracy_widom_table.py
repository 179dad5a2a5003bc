"""TracyWidom's fast path (piecewise interpolant + asymptotic tails) against the Fredholm path and mpmath.

Point counts (chosen so that this file runs in about a minute on 2 cores): 10^4 random points per
beta against the Fredholm determinants (one batched evaluation per beta, ~5 s each), 20 to 25
points per beta in the upper tail against 60-digit mpmath closed forms of the traces, 2 points
per beta in the lower tail against the 30-digit mpmath determinants (``slow``, ~15 s each).
"""
from __future__ import annotations

import math

import mpmath as mm
import numpy as np
import pytest

import theory.tracy_widom as twm
from theory import TracyWidom
from theory import _tw_asymptotic as asym
from theory import build_tw_tables as build

BETAS = (1, 2, 4)
EPS = np.finfo(float).eps
SCALE = {1: 1.0, 2: 1.0, 4: math.sqrt(2.0)}


def mp_log_sf(beta: int, s: float):
    """log(1 - F_beta(s)) in the upper tail from the traces of A_t (60 digits, independent of the
    series and of the determinants): p1 = (1/2) int_t^inf Ai, p2 = (2t^2 Ai^2 - 2t Ai'^2 - Ai Ai')/3,
    1 - F1 = p1 - e2 (+e3: relative e^{-2 zeta}), 1 - F2 = p2, 1 - F4 = -e2 at t = sqrt2 s,
    e2 = (p1^2 - p2)/2. Valid where e^{-2 zeta} < 1e-20 (zeta = (2/3) t^{3/2} > 23)."""
    t_float = float(s) * SCALE[beta]
    # 1/3 - int_0^t Ai cancels e^{-zeta} of its leading digits: carry that many more
    with mm.workdps(60 + int(2.0 / 3.0 * t_float**1.5 / math.log(10.0))):
        t = mm.mpf(s) * (mm.sqrt(2) if beta == 4 else 1)
        ai, aip = mm.airyai(t), mm.airyai(t, derivative=1)
        p1 = (mm.mpf(1) / 3 - mm.airyai(t, derivative=-1)) / 2
        p2 = (2 * t * t * ai * ai - 2 * t * aip * aip - ai * aip) / 3
        e2 = (p1 * p1 - p2) / 2
        return mm.log({1: p1 - e2, 2: p2, 4: -e2}[beta])


# --------------------------------------------------------------------------- issue 11 regressions
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("q", [1e-300, 1e-200, 1e-100, 1e-20])
def test_isf_reaches_tiny_levels(beta, q):
    """Was: isf(1e-300) = 95.0 for beta 1 (60.0 for beta 2), a clamp with sf(95) = 3.8e-271."""
    tw = TracyWidom(beta)
    s = tw.isf(q)
    assert tw.sf(s) == pytest.approx(q, rel=1e-12)
    # against the independent mpmath tail: the root of log sf = log q, to the condition number
    ref = float(mp_log_sf(beta, s))
    assert abs(ref - math.log(q)) <= 1e-13 * abs(math.log(q))


@pytest.mark.parametrize("beta", BETAS)
def test_isf_and_ppf_at_the_float_limits(beta):
    tw = TracyWidom(beta)
    tiny = 5e-324  # the smallest subnormal
    assert np.isfinite(tw.isf(tiny)) and np.isfinite(tw.ppf(tiny))
    assert tw.logsf(tw.isf(tiny)) == pytest.approx(math.log(tiny), rel=1e-13)
    assert tw.logcdf(tw.ppf(tiny)) == pytest.approx(math.log(tiny), rel=1e-13)
    s = tw.ppf(1e-300)
    assert tw.cdf(s) == pytest.approx(1e-300, rel=1e-12)
    q = 1.0 - 1e-16  # rounds to 1 - 2^-53
    s = tw.ppf(q)
    assert np.isfinite(s) and tw.sf(s) == pytest.approx(1.0 - q, rel=1e-12)
    assert tw.isf(q) == pytest.approx(tw.ppf(1.0 - q), rel=1e-14)
    assert tw.ppf(0.0) == -np.inf and tw.ppf(1.0) == np.inf
    assert tw.isf(0.0) == np.inf and tw.isf(1.0) == -np.inf


@pytest.mark.parametrize("beta, s", [(1, 100.0), (1, 30.0), (2, 100.0), (2, 30.0), (4, 45.0), (4, 30.0)])
def test_logsf_far_right_is_finite_and_right(beta, s):
    """Was: TracyWidom(1).logsf(100.0) = -inf (true value about -672)."""
    got = TracyWidom(beta).logsf(s)
    ref = float(mp_log_sf(beta, s))
    assert got == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize("beta", BETAS)
def test_logsf_overflows_only_with_the_true_value(beta):
    tw = TracyWidom(beta)
    big = np.array([1e10, 1e100, 1e200])
    x = big * SCALE[beta]
    lead = -(2.0 if beta == 1 else 4.0) / 3.0 * x * np.sqrt(x)  # dominant term of log sf
    np.testing.assert_allclose(tw.logsf(big), lead, rtol=1e-9)
    assert tw.logsf(1e300) == -np.inf  # (2/3) s^{3/2} > 1.8e308: the true value overflows
    assert tw.sf(1e10) == 0.0 and tw.cdf(1e300) == 1.0 and tw.pdf(1e300) == 0.0


@pytest.mark.parametrize("beta", BETAS)
def test_logcdf_far_left_is_not_clamped(beta):
    """Was: logcdf returned -4.17e298 for every s <= -1e100."""
    tw = TracyWidom(beta)
    s = np.array([-1e100, -1e101, -1e102, -1e103])
    got = tw.logcdf(s)
    c = 12 if beta == 2 else 24  # log F ~ -a^3/c, a = |s| (beta 1, 2) or sqrt2 |s| (beta 4)
    with mm.workdps(30):
        for gi, si in zip(got, s):
            a = -mm.mpf(si) * (mm.sqrt(2) if beta == 4 else 1)
            ref = -a**3 / c  # the rest of the expansion is below 1e-200 relative here
            if abs(ref) > mm.mpf(np.finfo(float).max):
                assert gi == -np.inf  # the true value overflows the float range
            else:
                assert gi == pytest.approx(float(ref), rel=4 * EPS)
    assert len(set(got[np.isfinite(got)])) == np.isfinite(got).sum()  # no clamp
    assert tw.logcdf(-1e200) == -np.inf and tw.cdf(-1e200) == 0.0 and tw.pdf(-1e200) == 0.0


def test_logcdf_finite_up_to_overflow():
    # beta 4 at -1e103: -(sqrt2 1e103)^3/24 = -1.18e308 is representable; beta 2 at -2e103 is not
    assert np.isfinite(TracyWidom(4).logcdf(-1e103))
    assert TracyWidom(2).logcdf(-2e103) == -np.inf
    assert TracyWidom(1).logcdf(-1.2e103) == pytest.approx(-(1.2e103**2) * (1.2e103 / 24), rel=1e-15)


# --------------------------------------------------------------------------- against the determinants
@pytest.fixture(scope="module", params=BETAS)
def fredholm_sample(request):
    """10^4 random points per beta: 40% in the bulk [-5, 5], 60% over [lo - 2, hi + 4] (both
    seams of the interpolant, inside the determinant's own range), with the Fredholm values."""
    beta = request.param
    lo, hi = build.RANGE[beta]
    rng = np.random.default_rng(100 + beta)
    s = np.concatenate([rng.uniform(-5.0, 5.0, 4000), rng.uniform(lo - 2.0, hi + 4.0, 6000)])
    return beta, s, twm._all_quantities(beta, s, with_pdf=False)


def test_cdf_absolute_error_against_fredholm(fredholm_sample):
    beta, s, ref = fredholm_sample
    err = np.abs(TracyWidom(beta).cdf(s) - ref["cdf"])
    assert err.max() <= 1e-14, (err.max(), s[np.argmax(err)])


def test_sf_relative_error_against_fredholm(fredholm_sample):
    beta, s, ref = fredholm_sample
    got = TracyWidom(beta).sf(s)
    # beta 4: the determinants' own upper tail -(e2 + ...) carries ~1e-12 relative noise beyond
    # s = 4 (p1^2 - p2 cancels in double precision; test_fredholm_beta4_tail_noise); the fast path
    # is compared there against the mpmath traces instead (test_upper_tail_against_mpmath)
    keep = (ref["sf"] >= 1e-300) & ((s <= 4.0) if beta == 4 else True)
    rel = np.abs(got[keep] / ref["sf"][keep] - 1.0)
    assert rel.max() <= 1e-12, (rel.max(), s[keep][np.argmax(rel)])


def test_log_functions_against_fredholm(fredholm_sample):
    beta, s, ref = fredholm_sample
    tw = TracyWidom(beta)
    # the determinants give F to ~1e-16 absolute, i.e. log F to ~1e-16 / F (test_left_* below)
    keep = ref["cdf"] >= 1e-300
    err = np.abs(tw.logcdf(s[keep]) - ref["logcdf"][keep])
    assert np.all(err <= 1e-12 * np.abs(ref["logcdf"][keep]) + 1e-15 + 4e-16 / ref["cdf"][keep])
    up = (ref["sf"] >= 1e-300) & ((s <= 4.0) if beta == 4 else True)
    np.testing.assert_allclose(tw.logsf(s[up]), ref["logsf"][up], rtol=1e-12, atol=1e-15)


def test_pdf_against_fredholm(fredholm_sample):
    """The derivative of the interpolant against the trace formula, where the density is above
    1e-4 of its peak (below it the trace formula itself loses relative accuracy)."""
    beta, s, _ = fredholm_sample
    s = s[::5]  # 2000 of the points: the trace formula costs two more solves per point
    ref = TracyWidom(beta).pdf(s, method="fredholm")
    keep = ref >= 1e-4 * ref.max()
    got = TracyWidom(beta).pdf(s[keep])
    rel = np.abs(got / ref[keep] - 1.0)
    assert rel.max() <= 1e-9, (rel.max(), s[keep][np.argmax(rel)])


@pytest.mark.parametrize("beta", BETAS)
def test_upper_tail_against_mpmath(beta):
    """Right of the table's middle, through the right seam and far out: sf relative <= 1e-13."""
    lo, hi = build.RANGE[beta]
    start = {1: 12.0, 2: 8.0, 4: 6.0}[beta]  # zeta > 23 (the traces' formula is exact to 1e-20)
    stop = {1: 100.0, 2: 64.0, 4: 45.0}[beta]  # sf ~ 1e-300
    s = np.unique(np.concatenate([np.linspace(start, stop, 20), [hi, np.nextafter(hi, 0.0), hi + 0.01]]))
    tw = TracyWidom(beta)
    got = tw.logsf(s)
    ref = np.array([float(mp_log_sf(beta, x)) for x in s])
    # |d log sf| is the relative error of sf (1e-13), plus the rounding of log sf itself (~700 eps)
    assert np.all(np.abs(got - ref) <= 1e-13 + 4 * EPS * np.abs(ref)), np.abs(got - ref).max()
    sf = tw.sf(s)
    ok = sf > 0
    # exp(log sf) carries |log sf| eps (1.5e-13 at sf = 1e-300) on top of the 1e-13 of log sf
    assert np.all(np.abs(sf[ok] / np.exp(ref[ok]) - 1.0) <= 1e-13 + 4 * EPS * np.abs(ref[ok]))


def test_fredholm_beta4_tail_noise():
    """Documents why beta 4's sf is compared with mpmath beyond s = 4: the determinant path's tail
    is 1e-13 to 1e-11 off there, the fast path 1e-14."""
    s = np.array([6.0, 8.0, 10.0, 12.0])
    ref = np.array([float(mp_log_sf(4, x)) for x in s])
    fred = TracyWidom(4).logsf(s, method="fredholm")
    fast = TracyWidom(4).logsf(s)
    assert np.abs(fast - ref).max() <= 1e-13
    assert np.abs(fred - ref).max() <= 1e-10  # the determinant path's own, looser, accuracy


@pytest.mark.slow
@pytest.mark.parametrize("beta", BETAS)
def test_lower_tail_against_mpmath(beta):
    """Across the left seam the relative error of F is ~1e-10 (where both the determinants and the
    expansion reach their limits; F < 1e-8 there, so the absolute error is < 1e-18)."""
    lo = build.RANGE[beta][0]
    tw = TracyWidom(beta)
    from theory import _tw_mpmath as ref

    for s in (lo - 0.25,):  # the expansion's side (the determinants': test_left_expansion_meets_*)
        with ref.precision(30):
            exact = ref.cdf(beta, s)
        with mm.workdps(30):
            err = abs(float(mm.log(exact)) - tw.logcdf(s))
        assert err <= 2e-9, (s, err)


# --------------------------------------------------------------------------- seams
@pytest.mark.parametrize("beta", BETAS)
def test_continuous_and_monotone_across_every_seam(beta):
    """Every piece boundary and both expansion seams: no jump beyond rounding, monotone on either
    side of the boundary (adjacent floats and a 1e-9 grid), density continuous."""
    table = twm._tables()[beta]
    tw = TracyWidom(beta)
    b = table.lo + table.h * np.arange(table.npieces + 1)
    assert b[0] == build.RANGE[beta][0] and b[-1] == build.RANGE[beta][1]
    left, right = np.nextafter(b, -np.inf), np.nextafter(b, np.inf)
    assert np.all(np.abs(tw.cdf(right) - tw.cdf(left)) <= 4 * EPS)
    for fn in (tw.logcdf, tw.logsf):
        jump = np.abs(fn(right) / fn(left) - 1.0)
        assert jump.max() <= 1e-13, (fn.__name__, b[np.argmax(jump)], jump.max())
    offsets = np.linspace(-5e-9, 5e-9, 11)
    grid = (b[:, None] + offsets[None, :])
    for pts in (np.stack([left, b, right], axis=1), grid):
        assert np.all(np.diff(tw.logcdf(pts), axis=1) >= 0.0)
        assert np.all(np.diff(tw.logsf(pts), axis=1) <= 0.0)
    dens = tw.pdf(np.stack([left, right], axis=1))
    # the derivative of an interpolant: continuous to the interpolation error (largest on the left
    # pieces, where the determinants' relative accuracy is ~1e-10)
    assert np.all(np.abs(dens[:, 1] / dens[:, 0] - 1.0) <= 1e-7)


@pytest.mark.parametrize("beta", BETAS)
def test_monotone_and_positive_density_everywhere(beta):
    tw = TracyWidom(beta)
    lo, hi = build.RANGE[beta]
    s = np.linspace(lo - 30.0, hi + 60.0, 200_001)
    assert np.all(np.diff(tw.logcdf(s)) >= 0.0) and np.all(np.diff(tw.logsf(s)) <= 0.0)
    assert np.all(np.diff(tw.cdf(s)) >= 0.0) and np.all(np.diff(tw.sf(s)) <= 0.0)
    f = tw.pdf(s)
    assert np.all(f >= 0.0) and np.all(f[(tw.sf(s) > 1e-290) & (tw.cdf(s) > 1e-290)] > 0.0)


# --------------------------------------------------------------------------- inverse functions
@pytest.mark.parametrize("beta", BETAS)
def test_ppf_inverts_cdf(beta):
    tw = TracyWidom(beta)
    rng = np.random.default_rng(7 + beta)
    lo, hi = build.RANGE[beta]
    s = np.concatenate([rng.uniform(lo - 10.0, hi + 30.0, 20_000), rng.uniform(-4.0, 4.0, 20_000)])
    median = tw.ppf(0.5)
    low, high = s <= median, s > median
    back = np.empty_like(s)
    back[low] = tw.ppf(tw.cdf(s[low]))
    back[high] = tw.isf(tw.sf(s[high]))
    ok = np.where(low, tw.cdf(s) > 0.0, tw.sf(s) > 0.0)
    # conditioning: a relative change eps of the level moves s by eps / |d log level / ds|
    slope = np.abs(np.where(low, tw.pdf(s) / np.maximum(tw.cdf(s), 1e-320),
                            tw.pdf(s) / np.maximum(tw.sf(s), 1e-320)))
    tol = 16 * EPS * (np.abs(s) + 1.0 / np.maximum(slope, 1e-300))
    assert np.all(np.abs(back[ok] - s[ok]) <= tol[ok]), np.max(np.abs(back[ok] - s[ok]) / tol[ok])


@pytest.mark.parametrize("beta", BETAS)
def test_cdf_of_ppf(beta):
    tw = TracyWidom(beta)
    q = np.random.default_rng(beta).uniform(0.0, 1.0, 100_000)
    assert np.max(np.abs(tw.cdf(tw.ppf(q)) - q)) <= 4 * EPS
    np.testing.assert_allclose(tw.sf(tw.isf(q)), q, rtol=1e-13)
    levels = 10.0 ** -np.arange(1.0, 301.0)
    np.testing.assert_allclose(tw.sf(tw.isf(levels)), levels, rtol=1e-12)
    np.testing.assert_allclose(tw.cdf(tw.ppf(levels)), levels, rtol=1e-12)
    assert np.all(np.diff(tw.ppf(levels)) < 0)


@pytest.mark.parametrize("beta", BETAS)
def test_fast_and_fredholm_quantiles_agree(beta):
    tw = TracyWidom(beta)
    # levels >= 1e-6: below, the determinants' relative accuracy (1e-7 at F = 1e-30) moves ppf
    q = np.array([1e-6, 0.1, 0.5, 0.9, 1 - 1e-9])
    np.testing.assert_allclose(tw.ppf(q), tw.ppf(q, method="fredholm"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tw.isf(q[:3]), tw.isf(q[:3], method="fredholm"), rtol=1e-12)
    # the Fredholm path also inverts the far tail now (it clamped at 95 / 60 before)
    assert tw.isf(1e-300, method="fredholm") == pytest.approx(tw.isf(1e-300), rel=1e-12)


# --------------------------------------------------------------------------- the expansions
def test_hastings_mcleod_coefficients():
    """q(x) ~ sqrt(-x/2) (1 + 1/(8 x^3) - 73/(128 x^6) + ...) (Tracy and Widom 1994)."""
    from fractions import Fraction

    b = asym.hastings_mcleod(4)
    assert b[:3] == (Fraction(1), Fraction(-1, 8), Fraction(-73, 128))


def test_expansion_constants():
    """The constants of Deift-Its-Krasovsky (beta 2) and Baik-Buckingham-DiFranco (beta 1, 4):
    log F - (its growing terms) tends to them, with the O(a^{-3/2}) (beta 1, 4) and O(a^{-3})
    (beta 2) corrections still visible at a = 40."""
    with mm.workdps(30):
        z = mm.zeta(-1, derivative=1)
        assert asym.ZETA_PRIME_M1 == pytest.approx(float(z), abs=1e-16)
        c2 = float(mm.log(2) / 24 + z)
    a = 40.0
    r2 = math.sqrt(2.0)
    cases = {2: (c2, -a**3 / 12 - math.log(a) / 8, 1e-6),
             1: (c2 / 2 - math.log(2) / 4, -a**3 / 24 - a**1.5 / (3 * r2) - math.log(a) / 16, 2e-4),
             4: (c2 / 2 - math.log(2) * 3 / 4, -a**3 / 24 + a**1.5 / (3 * r2) - math.log(a) / 16, 2e-4)}
    for beta, (c, lead, tol) in cases.items():
        got = float(asym.left_tail(beta, np.array([-a / SCALE[beta]]), 10.0)[0][0]) - lead
        assert abs(got - c) <= tol, (beta, got, c)


@pytest.mark.parametrize("beta", BETAS)
def test_left_expansion_meets_the_determinants(beta):
    """Around the left seam the expansion and the determinants agree to their common accuracy
    (relative error of F ~1e-9: the test_lower_tail_against_mpmath budget)."""
    lo = build.RANGE[beta][0]
    s = lo + np.array([-0.5, 0.0, 0.5])
    fred = twm._quantities(beta, s, with_pdf=False)["logcdf"]
    a0 = -lo * SCALE[beta]
    assert np.all(np.abs(asym.left_tail(beta, s, a0)[0] - fred) <= 2e-8)


@pytest.mark.parametrize("beta", (1, 2))
def test_right_tail_leading_terms(beta):
    """1 - F2 ~ e^{-4/3 s^{3/2}} / (16 pi s^{3/2}), 1 - F1 ~ e^{-2/3 s^{3/2}} / (4 sqrt(pi) s^{3/4}),
    with corrections O(s^{-3/2})."""
    s = np.array([20.0, 200.0, 2000.0])
    if beta == 2:
        lead = -4 / 3 * s**1.5 - np.log(16 * np.pi * s**1.5)
    else:
        lead = -2 / 3 * s**1.5 - np.log(4 * np.sqrt(np.pi) * s**0.75)
    dev = np.abs(TracyWidom(beta).logsf(s) - lead)
    assert np.all(dev * s**1.5 < 2.0) and np.all(np.diff(dev) < 0)


@pytest.mark.parametrize("beta", BETAS)
def test_expansion_derivatives(beta):
    """The tails' d/ds log against central differences (relative 1e-8 from the step)."""
    for fn, s, z in ((asym.left_tail, np.array([-8.0, -30.0, -1e3]), 10.0),
                     (asym.right_tail, np.array([17.0, 40.0, 1e3]), 40.0)):
        h = 1e-6 * np.maximum(1.0, np.abs(s))
        fd = (fn(beta, s + h, z)[0] - fn(beta, s - h, z)[0]) / (2 * h)
        np.testing.assert_allclose(fn(beta, s, z)[1], fd, rtol=1e-7)


# --------------------------------------------------------------------------- the shipped tables
def test_tables_rebuild_bit_for_bit():
    """A cheap slice of the build (first, split, last pieces; beta 4's mpmath-traces pieces) reproduces the
    shipped coefficients: bit for bit on the platform that built them (numpy, BLAS and its run-time kernel:
    ``build.platform_key``), and on any other to within rounding of the values (cdf absolute, 1 - F relative)."""
    with np.load(twm._DATA) as data:
        shipped = {k: data[k] for k in data.files}
    same_platform = str(shipped["platform"]) == build.platform_key()
    t = np.linspace(-1.0, 1.0, 401)
    for beta in BETAS:
        n = build.pieces(beta).size
        split = int(np.argmax(shipped[f"upper{beta}"]))
        idx = [0, split - 1, split, n - 1] + ([int((4.0 - build.RANGE[4][0]) / build.H)] if beta == 4 else [])
        for i in idx:
            part = build.build(betas=(beta,), only=slice(i, i + 1))
            new, old = part[f"coef{beta}"][:, 0], shipped[f"coef{beta}"][:, i]
            assert part[f"upper{beta}"][0] == shipped[f"upper{beta}"][i]
            if same_platform:
                assert np.array_equal(new, old), (beta, i)
            g_new, g_old = np.polynomial.polynomial.polyval(t, new), np.polynomial.polynomial.polyval(t, old)
            if shipped[f"upper{beta}"][i]:  # g = log(1 - F): relative error of the upper tail
                assert np.abs(np.expm1(g_new - g_old)).max() <= 5e-14, (beta, i)
            else:  # g = log F: absolute error of the cdf
                assert np.abs(np.exp(g_new) - np.exp(g_old)).max() <= 4e-15, (beta, i)
        assert np.array_equal(shipped[f"range{beta}"], np.array(build.RANGE[beta]))
    assert float(shipped["H"]) == build.H and int(shipped["DEG"]) == build.DEG


def test_table_size_and_broadcasting():
    assert twm._DATA.stat().st_size < 200_000
    tw = TracyWidom(2)
    assert np.ndim(tw.cdf(0.0)) == 0 and tw.cdf([[0.0, 1.0]]).shape == (1, 2)
    assert tw.ppf(np.full((2, 3), 0.5)).shape == (2, 3)
    assert tw.sf(np.array([-np.inf, np.inf])).tolist() == [1.0, 0.0]
    assert tw.logcdf(np.array([-np.inf, np.inf])).tolist() == [-np.inf, 0.0]
    with pytest.raises(ValueError, match="method"):
        tw.cdf(0.0, method="table")
    with pytest.raises(ValueError, match="NaN"):
        tw.sf([1.0, np.nan])
