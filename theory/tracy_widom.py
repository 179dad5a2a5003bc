r"""Tracy-Widom distributions for beta = 1, 2, 4: a fast interpolant, checked against Fredholm determinants.

Two evaluation paths (the ``method`` keyword of every function):

* ``"interpolant"`` (default, ~0.1 microsecond per point): piecewise polynomials of log F (left of the
  median) and log(1 - F) (right of it) on [-7, 16] (beta 1), [-7, 10] (beta 2), [-5.625, 11] (beta 4),
  built from the determinants below by ``theory/build_tw_tables.py`` (``theory/data/tw_tables.npz``, 39 KB,
  reproducible bit for bit), joined continuously to the asymptotic expansions of both tails
  (``theory._tw_asymptotic``: Painleve II / Hastings-McLeod on the left, the traces of the Airy operator on
  the right, with exact rational coefficients). ``ppf``/``isf``: Hermite start + vectorised Newton.
* ``"fredholm"``: the determinants themselves (~0.2 to 1 ms per point), the tests' reference.

Accuracy of the interpolant (``tests/test_tracy_widom_table.py``): against the determinants on 3 x 10^4 random
points, cdf absolute error <= 8e-15 and sf relative error <= 1.5e-13 wherever sf >= 1e-300 (beta 4 on s <= 4;
beyond, the determinants' own tail is 1e-12 noisy and the reference is a 60-digit mpmath evaluation of the
traces, met to 1e-13 relative). In the lower tail the relative error of F is ~1e-9 near the left seam
(F < 1e-7 there: the limit of both the determinants' relative accuracy and of the divergent expansion),
decreasing further left. log F and log(1 - F) are finite wherever their true values are representable.

All three laws come from one operator, the Airy Hankel operator on :math:`L^2(0, \infty)`,

.. math:: (A_s f)(u) = \int_0^\infty \mathrm{Ai}(s + u + v) f(v)\, dv,

through (Ferrari and Spohn 2005; Bornemann 2010, "On the numerical evaluation of distributions
in random matrix theory", Markov Process. Related Fields 16)

.. math:: F_1(s) = \det(I - A_s), \qquad F_2(s) = \det(I - A_s)\det(I + A_s) = \det(I - K_{\mathrm{Ai}}),
          \qquad F_4(s) = \tfrac12\big[\det(I - A_t) + \det(I + A_t)\big]_{t = \sqrt2\, s}.

``F_2`` equals the familiar det(I - K_Ai) on (s, inf) because K_Ai = A_s^2 there, and ``F_1`` the
det(I - K_1) with K_1(x, y) = Ai((x + y)/2)/2 after the substitution x = s + 2u.

Normalisation of beta = 4: ``F_4`` above is Tracy and Widom's original one (1996), the
distribution of the largest eigenvalue of the GSE in the scaling where its mean is
-2.3068848932 and its variance 0.5177237207; ``sqrt(2)`` times it is the other convention
found in the literature (mean -3.2624). Bornemann (2010) uses the one here.

Numerics of the Fredholm path
-----------------------------
The operator is discretised by Gauss-Legendre quadrature with m nodes on [0, L(s)]
(Nystrom's method): M_ij = sqrt(w_i) Ai(s + u_i + u_j) sqrt(w_j), symmetric. The interval
makes the kernel below 1e-27 (relative to its largest value) for *every* pair of nodes,
including (0, L); the node count grows with the oscillatory range |s| for s < 0. Convergence
in both m and L is checked in ``tests/test_tracy_widom.py``.

From the eigenvalues mu_k of M (one symmetric eigendecomposition per point, batched):

* ``cdf``: exp(sum log(1 -+ mu_k)) -- absolute error ~1e-16;
* ``sf``: -expm1(sum log1p(-mu_k)) (beta 1), -expm1(sum log1p(-mu_k^2)) (beta 2), and minus the
  even elementary symmetric functions of mu (beta 4): no ``1 - cdf`` cancellation, so the upper
  tail keeps full relative accuracy (the part that spike p-values use);
* ``pdf``: the trace formula d/ds log det(I -+ A_s) = -+ tr((I -+ A_s)^{-1} dA_s/ds) with
  dA_s/ds = Ai'(s + u + v), evaluated in the same eigenbasis.

Accuracy of the Fredholm path, measured against a 32-digit mpmath evaluation (``theory._tw_mpmath``,
also reachable as ``cdf(s, dps=...)``) on [-8, 8]: cdf absolute error <= 5e-16 for beta = 1, 2, 4 (beta 4 had
1.1e-14 near s = -2.8 with 8 fewer nodes; ``_node_count``); upper-tail
relative error <= 5.3e-16 (beta 1), 1.4e-15 (beta 2), 9.3e-14 (beta 4) on [0, 8]. For beta = 4
the tail is -(e2 + ...) ~ -mu1 mu2 and rounding is amplified by mu1/|mu2|, which grows with s
(~2e-12 at s = 11). Below s = -10 (beta 1, 2; -10/sqrt2 for beta 4) the determinant of I - A_s is
below double-precision resolution and the lower tail comes from its asymptotic expansion; above
s = 95 (beta 1), 60 (beta 2), 60/sqrt2 (beta 4), where sf < 1e-280, the upper tail comes from its
expansion too (``theory._tw_asymptotic``), so that neither path clamps.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from scipy import special

from . import _tw_asymptotic as _asym
from ._mp import mp_map
from ._newton import bracketed_newton_update
from ._validate import real_values

_SQRT2 = math.sqrt(2.0)
_LOG_CUTOFF = 62.0  # 2/3 x^{3/2} exponent at which Ai is 1e-27 of its value at the interval start
_CHUNK = 1024  # points per batched eigendecomposition (memory: CHUNK * m^2 * 8 bytes)


def _interval_length(s: np.ndarray) -> np.ndarray:
    """L(s): Ai(s + L) / max(1, Ai(s)) < exp(-62) ~ 1e-27 -- the kernel is negligible for all pairs."""
    sp = np.maximum(s, 0.0)
    return (_LOG_CUTOFF / (2.0 / 3.0) + sp**1.5) ** (2.0 / 3.0) - s


def _node_count(s: float) -> int:
    """Gauss-Legendre nodes for the point s (converged to rounding; see the convergence test)."""
    # measured: 32 nodes reach rounding level for s >= 0, 40 at s = -4, 48 at s = -8 for beta 1, 2;
    # beta 4 (its own kernel argument) needed 8 more near s = -2.8 (40 nodes left 1.1e-14 in the cdf,
    # 48 give 6e-16 against mpmath). The oscillatory range s < 0 costs ~2 nodes per unit of |s|.
    return max(48, int(8 * math.ceil((40 + 2.0 * max(-s, 0.0)) / 8)))


_AIRY_H, _AIRY_LO, _AIRY_HI = 0.25, -48.0, 124.0


@functools.lru_cache(maxsize=1)
def _airy_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.arange(_AIRY_LO, _AIRY_HI + _AIRY_H / 2, _AIRY_H)
    ai, aip, _, _ = special.airy(c)
    return c, ai, aip


def _airy(x: np.ndarray, deriv: bool = False):
    """Ai(x) (and Ai'(x)) for x in [-48, 124], by Taylor series about the nearest table point.

    The Airy equation y'' = x y gives the derivatives at a centre c by the recurrence
    y^(j+2) = c y^(j) + j y^(j-1); with |x - c| <= 1/8 and |c| <= 124, 24 terms reach rounding
    level. As accurate as ``scipy.special.airy`` (whose values seed the table), ~6x faster.
    """
    c, ai, aip = _airy_table()
    k = np.rint((x - _AIRY_LO) / _AIRY_H).astype(np.intp)
    ck = c[k]
    t = x - ck
    d_m1, d_0, d_1 = np.zeros_like(t), ai[k], aip[k]  # y^(j-1), y^(j), y^(j+1) at j = 0
    total = d_0 + d_1 * t
    dtotal = d_1.copy() if deriv else None
    power = t.copy()  # t^(j+1) / (j+1)!
    for j in range(22):
        d_2 = ck * d_0 + j * d_m1  # y^(j+2)
        if deriv:
            dtotal += d_2 * power
        power *= t / (j + 2)
        total += d_2 * power
        d_m1, d_0, d_1 = d_0, d_1, d_2
    return (total, dtotal) if deriv else total


@functools.lru_cache(maxsize=64)
def _gauss_legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1], correct to the last bit.

    numpy's and scipy's weights carry relative errors up to ~1e-12 for m >= 48 (measured
    against mpmath), which would cap the relative accuracy of the upper tail; so the nodes are
    polished by Newton's method on the three-term recurrence at 30 digits (mpmath) and the
    weights follow from w = 2 / ((1 - x^2) P_m'(x)^2). Cached per m (a few ms each).
    """
    import mpmath as mm

    x0 = np.polynomial.legendre.leggauss(m)[0]
    xs, ws = np.empty(m), np.empty(m)
    with mm.workdps(30):
        for i, guess in enumerate(x0[: (m + 1) // 2]):  # symmetric: half the nodes
            x = mm.mpf(guess)
            for _ in range(3):
                p0, p1 = mm.mpf(1), x
                for k in range(2, m + 1):
                    p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
                dp = m * (x * p1 - p0) / (x * x - 1)
                x -= p1 / dp
            w = 2 / ((1 - x * x) * dp * dp)
            xs[i], ws[i] = float(x), float(w)
            xs[m - 1 - i], ws[m - 1 - i] = -float(x), float(w)
    return 0.5 * (xs + 1.0), 0.5 * ws  # on [0, 1]


def _spectrum(s: np.ndarray, traces: bool = False) -> dict:
    """Discretise A_s at each point s and return what the distribution functions need.

    Keys: ``mu`` (eigenvalues of M, shape (len(s), m_max), zero-padded: a zero eigenvalue is a
    factor 1 in every determinant), ``log_minus``/``log_plus`` = log det(I -+ M) by LU
    (backward stable, so relative accuracy survives deep in the lower tail; -inf where rounding
    makes det(I - M) <= 0), and with ``traces`` the pdf traces ``minus = tr((I - M)^-1 D)``,
    ``plus = tr((I + M)^-1 D)``, ``diff = plus - minus = -2 tr((I - M^2)^-1 M D)``, where
    D_ij = sqrt(w_i w_j) Ai'(s + u_i + u_j) discretises dA_s/ds.
    """
    s = np.asarray(s, dtype=np.float64).ravel()
    counts = np.array([_node_count(v) for v in s], dtype=int)
    m_max = int(counts.max()) if s.size else 0
    out = {"mu": np.zeros((s.size, m_max)), "log_minus": np.zeros(s.size), "log_plus": np.zeros(s.size),
           "p1": np.zeros(s.size), "p2": np.zeros(s.size)}
    if traces:
        out.update({k: np.zeros(s.size) for k in ("minus", "plus", "diff")})
    for m in np.unique(counts):
        m = int(m)
        t, w = _gauss_legendre(m)
        iu, ju = np.triu_indices(m)
        eye = np.eye(m)
        sel = np.flatnonzero(counts == m)
        for idx in np.array_split(sel, max(1, -(-sel.size // _CHUNK))):
            sv = s[idx]
            L = _interval_length(sv)
            # the kernel is symmetric: evaluate Ai on the upper triangle only
            arg = sv[:, None] + L[:, None] * (t[iu] + t[ju])[None, :]
            scale = L[:, None] * np.sqrt(w[iu] * w[ju])[None, :]
            ai, aip = _airy(arg, deriv=True) if traces else (_airy(arg), None)
            M = np.empty((idx.size, m, m))
            M[:, iu, ju] = scale * ai
            M[:, ju, iu] = scale * ai
            out["mu"][idx, :m] = np.linalg.eigvalsh(M)
            # power sums p1 = tr M, p2 = tr M^2, exact from the entries (for the beta = 4 tail)
            out["p1"][idx] = np.trace(M, axis1=1, axis2=2)
            out["p2"][idx] = np.einsum("kij,kij->k", M, M)
            sign, logdet = np.linalg.slogdet(eye - M)
            out["log_minus"][idx] = np.where(sign > 0, logdet, -np.inf)
            out["log_plus"][idx] = np.linalg.slogdet(eye + M)[1]
            if traces:
                D = np.empty_like(M)
                D[:, iu, ju] = scale * aip
                D[:, ju, iu] = scale * aip
                out["minus"][idx] = np.trace(np.linalg.solve(eye - M, D), axis1=1, axis2=2)
                out["plus"][idx] = np.trace(np.linalg.solve(eye + M, D), axis1=1, axis2=2)
                out["diff"][idx] = -2.0 * np.trace(np.linalg.solve(eye - M @ M, M @ D), axis1=1, axis2=2)
    return out


def _elementary_sums(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of e_k over even k >= 4, sum of e_k over odd k) for each row of eigenvalues.

    e_k are the elementary symmetric polynomials, prod(1 + mu z) = sum_k e_k z^k. Summing them
    directly avoids the cancellation in 1 - (prod(1 - mu) + prod(1 + mu))/2 when mu is small;
    e_2 is left to the caller, which has a more accurate route to it.
    """
    k, m = mu.shape
    order = np.argsort(-np.abs(mu), axis=1)
    mu = np.take_along_axis(mu, order, axis=1)
    coef = np.zeros((k, m + 1))
    coef[:, 0] = 1.0
    for j in range(m):
        coef[:, 1 : j + 2] += mu[:, j : j + 1] * coef[:, : j + 1]
    return coef[:, 4::2].sum(axis=1), coef[:, 1::2].sum(axis=1)


# Fredholm path, per beta: below _S_ASYM the lower tail comes from its asymptotic expansion (the
# determinant of I - A_s loses its relative accuracy as eigenvalues of A_s approach 1); above _S_MAX
# the upper tail comes from its expansion (sf below 1e-280 there).
_S_ASYM = {1: -10.0, 2: -10.0, 4: -10.0 / _SQRT2}
_S_MAX = {1: 95.0, 2: 60.0, 4: 60.0 / _SQRT2}
_ZETA_PRIME_M1 = _asym.ZETA_PRIME_M1


def _mp_path(kind: str, beta: int, s, dps: int):
    from . import _tw_mpmath

    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 15:
        raise ValueError(f"dps must be an integer >= 15, got {dps!r}")
    fn = _tw_mpmath.cdf if kind == "cdf" else _tw_mpmath.sf

    s = real_values("s", s)[0]

    def one(v):
        v = float(v)
        with _tw_mpmath.precision(dps):
            return fn(beta, v)

    return mp_map(one, s)


def _all_quantities(beta: int, flat: np.ndarray, with_pdf: bool) -> dict:
    """cdf, sf, logcdf, logsf (and pdf) at the points ``flat``: the asymptotic lower tail below
    _S_ASYM, the Fredholm determinants in between, the asymptotic upper tail above _S_MAX."""
    keys = ("cdf", "sf", "logcdf", "logsf") + (("pdf",) if with_pdf else ())
    out = {k: np.empty(flat.shape) for k in keys}
    low, high = flat < _S_ASYM[beta], flat > _S_MAX[beta]
    mid = ~(low | high)
    scale = _SQRT2 if beta == 4 else 1.0
    if low.any():
        logF, dlog = _asym.left_tail(beta, flat[low], -_S_ASYM[beta] * scale)
        vals = _from_log(logF, dlog, upper=False)
        for k in keys:
            out[k][low] = vals[k]
    if high.any():
        logS, dlog = _asym.right_tail(beta, flat[high], _zeta(_S_MAX[beta] * scale))
        vals = _from_log(logS, dlog, upper=True)
        for k in keys:
            out[k][high] = vals[k]
    if mid.any():
        vals = _quantities(beta, flat[mid], with_pdf)
        for k in keys:
            out[k][mid] = vals[k]
    return out


def _quantities(beta: int, s: np.ndarray, with_pdf: bool) -> dict:
    """cdf, sf, logcdf, logsf (and pdf) of TW_beta at the points s, from one discretisation.

    The lower side (F <= 1/2) comes from the LU determinants, the upper side (F > 1/2) from the
    eigenvalues, summed so that 1 - F never cancels.
    """
    sp = _spectrum(s * _SQRT2 if beta == 4 else s, traces=with_pdf)
    mu, log_minus, log_plus = sp["mu"], sp["log_minus"], sp["log_plus"]
    if beta == 1:
        logF = log_minus
        with np.errstate(divide="ignore", invalid="ignore"):
            upper_sf = -np.expm1(np.log1p(-mu).sum(axis=1))
    elif beta == 2:
        logF = log_minus + log_plus
        with np.errstate(divide="ignore", invalid="ignore"):
            upper_sf = -np.expm1(np.log1p(-mu * mu).sum(axis=1))
    else:
        logF = np.logaddexp(log_minus, log_plus) - math.log(2.0)
        # 1 - F4 = -(e2 + e4 + ...). e2 = mu1 mu2 + ... is a cancellation-prone product of the
        # two largest eigenvalues when they are small; the power-sum form e2 = (p1^2 - p2)/2 from
        # the matrix entries is ~100x more accurate there than eigvalsh's mu2. Higher e_k are
        # negligible corrections and come from the eigenvalues.
        even4, odd = _elementary_sums(mu)
        upper_sf = -(0.5 * (sp["p1"] ** 2 - sp["p2"]) + even4)
    high = logF > -math.log(2.0)  # F > 1/2: the upper tail is the small side
    sf = np.where(high, upper_sf, -np.expm1(logF))
    with np.errstate(divide="ignore", invalid="ignore"):
        logS = np.where(high, np.log(sf), np.log1p(-np.exp(logF)))
        logF = np.where(high, np.log1p(-sf), logF)
    out = {"logcdf": logF, "cdf": np.exp(logF), "sf": sf, "logsf": logS}
    if with_pdf:
        # d/ds log det(I -+ A_s) = -+ tr((I -+ A_s)^-1 dA_s/ds)
        t_minus, t_plus = sp["minus"], sp["plus"]
        with np.errstate(over="ignore", invalid="ignore"):
            E_minus, E_plus = np.exp(log_minus), np.exp(log_plus)
            if beta == 1:
                dens = -E_minus * t_minus
            elif beta == 2:
                dens = E_minus * E_plus * sp["diff"]  # t+ - t-, without cancellation
            else:
                # F4'(s) = (sqrt2/2)(E+ t+ - E- t-) = (sqrt2/2)(E-(t+ - t-) + (E+ - E-) t+),
                # with E+ - E- = 2 (odd e_k): no cancellation when the eigenvalues are small.
                dens = 0.5 * _SQRT2 * (E_minus * sp["diff"] + 2.0 * odd * t_plus)
        out["pdf"] = np.where(np.isfinite(dens), np.maximum(dens, 0.0), 0.0)
    return out


def _levels(name: str, q) -> np.ndarray:
    arr, _ = real_values(name, q)  # TypeError for complex/str/bool/meta input; tensors detached; NaN refused
    if ((arr < 0.0) | (arr > 1.0)).any():
        bad = arr[(arr < 0.0) | (arr > 1.0)].ravel()[0]
        raise ValueError(f"{name} must lie in [0, 1], got {bad!r}")
    return arr


@functools.lru_cache(maxsize=3)
def _grid(beta: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.linspace(-40.0, _GRID_HI[beta], 241)
    q = _all_quantities(beta, g, with_pdf=False)
    return g, q["logcdf"], q["logsf"]


def _invert(beta: int, q: np.ndarray, upper_tail: bool) -> np.ndarray:
    """Solve F(s) = q (upper_tail=False) or 1 - F(s) = q (upper_tail=True), elementwise."""
    flat = q.ravel()
    out = np.empty(flat.shape)
    lower_level = flat if not upper_tail else 1.0 - flat  # F(s) at the solution (for the side choice)
    # side: match log F where F <= 1/2, log(1 - F) otherwise
    use_cdf = lower_level <= 0.5
    with np.errstate(divide="ignore"):
        target = np.where(use_cdf,
                          np.log(flat) if not upper_tail else np.log1p(-flat),
                          np.log1p(-flat) if not upper_tail else np.log(flat))
    lo_inf = np.where(use_cdf, target == -np.inf, False)  # F = 0 -> -inf
    hi_inf = np.where(~use_cdf, target == -np.inf, False)  # 1 - F = 0 -> +inf
    out[lo_inf], out[hi_inf] = -np.inf, np.inf
    todo = np.flatnonzero(~(lo_inf | hi_inf))
    if todo.size:
        g, gF, gS = _grid(beta)
        t, side = target[todo], use_cdf[todo]
        # bracket from the grid (logF increasing, logS decreasing in s)
        iF = np.clip(np.searchsorted(gF, t), 1, g.size - 1)
        iS = np.clip(np.searchsorted(-gS, -t), 1, g.size - 1)
        i = np.where(side, iF, iS)
        lo, hi = g[i - 1].copy(), g[i].copy()
        v0 = np.where(side, gF[i - 1], gS[i - 1])
        v1 = np.where(side, gF[i], gS[i])
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip(np.where(np.isfinite(v0) & (v1 != v0), (t - v0) / (v1 - v0), 0.5), 0.0, 1.0)
        s = lo + frac * (hi - lo)
        active = np.arange(todo.size)
        for _ in range(60):
            sa = s[active]
            qs = _all_quantities(beta, sa, with_pdf=True)
            sd = side[active]
            val = np.where(sd, qs["logcdf"], qs["logsf"])
            with np.errstate(divide="ignore", invalid="ignore"):
                slope = np.where(sd, qs["pdf"] / qs["cdf"], -qs["pdf"] / qs["sf"])
                f = val - t[active]
                # F increasing: f > 0 on the cdf side (or f < 0 on the sf side) means s is too large
                too_big = np.where(sd, f > 0.0, f < 0.0)
                hi[active] = np.where(too_big, sa, hi[active])
                lo[active] = np.where(too_big, lo[active], sa)
                step = f / slope
            tol = 4.0 * np.finfo(float).eps * np.maximum(1.0, np.abs(sa))
            s[active], done = bracketed_newton_update(sa, f, step, lo[active], hi[active], tol, tol)
            active = active[~done]
            if active.size == 0:
                break
        out[todo] = s
    res = out.reshape(q.shape)
    return res[()] if q.ndim == 0 else res


@functools.lru_cache(maxsize=3)
def _moments(beta: int) -> tuple[float, float]:
    lo, hi = -16.0, 24.0  # outside, cdf resp. sf < 1e-40: no contribution to the moments
    x, w = np.polynomial.legendre.leggauss(160)
    neg = 0.5 * lo * (x + 1.0)  # nodes on [lo, 0]
    pos = 0.5 * hi * (x + 1.0)  # nodes on [0, hi]
    tw = TracyWidom(beta)
    F, S = tw.cdf(neg, method="fredholm"), tw.sf(pos, method="fredholm")
    wn, wp = 0.5 * abs(lo) * w, 0.5 * hi * w
    m1 = wp @ S - wn @ F
    m2 = 2.0 * (wp @ (pos * S)) - 2.0 * (wn @ (neg * F))
    return float(m1), float(m2 - m1 * m1)


_GRID_HI = {1: 200.0, 2: 120.0, 4: 85.0}  # Fredholm ppf bracket: sf < 1e-600 beyond


def _zeta(x: float) -> float:
    """(2/3) x^{3/2}: the exponent variable of the upper-tail expansions."""
    return 2.0 / 3.0 * x**1.5


def _from_log(logv: np.ndarray, dlog: np.ndarray, upper: bool) -> dict:
    """All five quantities from g = log F (upper=False) or g = log(1 - F) (upper=True) and dg/ds."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = np.exp(logv)
        other = -np.expm1(logv)
        log_other = np.log1p(-v)
        dens = np.where(v == 0.0, 0.0, v * dlog) * (-1.0 if upper else 1.0)
    if upper:
        return {"cdf": other, "sf": v, "logcdf": log_other, "logsf": logv, "pdf": dens}
    return {"cdf": v, "sf": other, "logcdf": logv, "logsf": log_other, "pdf": dens}


# --------------------------------------------------------------------------- the fast path
_CHUNK_FAST = 1 << 15  # points per vectorised pass (keeps the temporaries in cache)
_DATA = Path(__file__).resolve().parent / "data" / "tw_tables.npz"


class _Table:
    """Piecewise polynomials of log F / log(1 - F) on [lo, hi] (``theory/build_tw_tables.py``)."""

    def __init__(self, beta: int, data) -> None:
        self.beta = beta
        self.h = float(data["H"])
        self.inv_h = 1.0 / self.h
        self.lo, self.hi = (float(v) for v in data[f"range{beta}"])
        coef = np.ascontiguousarray(data[f"coef{beta}"])  # (deg + 1, pieces), lowest power first
        self.coef = [np.ascontiguousarray(c) for c in coef]
        k = np.arange(1, coef.shape[0])[:, None]
        self.dcoef = [np.ascontiguousarray(c) for c in k * coef[1:] * (2.0 * self.inv_h)]  # d/ds
        self.upper = np.asarray(data[f"upper{beta}"], dtype=bool)
        self.npieces = self.upper.size
        self.split_index = int(np.argmax(self.upper))  # log(1 - F) from this piece on
        assert self.upper[self.split_index:].all() and not self.upper[: self.split_index].any()
        scale = _SQRT2 if beta == 4 else 1.0
        self.a0 = -self.lo * scale  # left seam in the expansion's variable
        self.zeta0 = _zeta(self.hi * scale)  # right seam
        # inversion grid: s_j and g at s_j for Newton's starting points
        self.grid = np.linspace(self.lo, self.hi, 64 * self.npieces + 1)
        self.grid_logF, self.grid_dF, self.grid_logS, self.grid_dS = self.logs(self.grid)

    def poly(self, s: np.ndarray, deriv: bool):
        """(g(s), g'(s) or None, upper) for lo <= s <= hi; ``upper``: g is log(1 - F) (from the
        piece index, so that a point rounded onto a piece boundary uses that piece's kind)."""
        x = (s - self.lo) * self.inv_h
        i = np.minimum(x.astype(np.intp), self.npieces - 1)
        t = 2.0 * (x - i) - 1.0
        c = self.coef
        g = c[-1].take(i)
        buf = np.empty_like(g)
        for ck in c[-2::-1]:
            g *= t
            g += ck.take(i, out=buf)
        up = i >= self.split_index
        if not deriv:
            return g, None, up
        d = self.dcoef
        dg = d[-1].take(i)
        for dk in d[-2::-1]:
            dg *= t
            dg += dk.take(i, out=buf)
        return g, dg, up

    def logs(self, s: np.ndarray):
        """(log F, d log F/ds, log(1 - F), d log(1 - F)/ds) at any finite s (vectorised)."""
        s = np.asarray(s, dtype=np.float64)
        logF, dF, logS, dS = (np.empty(s.shape) for _ in range(4))
        left, right = s < self.lo, s > self.hi
        mid = ~(left | right)
        if left.any():
            lf, dlf = _asym.left_tail(self.beta, s[left], self.a0)
            logF[left], dF[left] = lf, dlf
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                F = np.exp(lf)
                logS[left], dS[left] = np.log1p(-F), np.where(F == 0.0, 0.0, -F * dlf / (1.0 - F))
        if right.any():
            ls, dls = _asym.right_tail(self.beta, s[right], self.zeta0)
            logS[right], dS[right] = ls, dls
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                S = np.exp(ls)
                logF[right], dF[right] = np.log1p(-S), np.where(S == 0.0, 0.0, -S * dls / (1.0 - S))
        if mid.any():
            sm = s[mid]
            g, dg, up = self.poly(sm, deriv=True)
            v = np.exp(g)
            lo_other, d_other = np.log1p(-v), -v * dg / (1.0 - v)  # the other side's log and slope
            logF[mid], dF[mid] = np.where(up, lo_other, g), np.where(up, d_other, dg)
            logS[mid], dS[mid] = np.where(up, g, lo_other), np.where(up, dg, d_other)
        return logF, dF, logS, dS

    def evaluate(self, s: np.ndarray, want: str) -> np.ndarray:
        """One of cdf, sf, logcdf, logsf, pdf at the finite points s (1-d)."""
        out = np.empty(s.shape)
        left, right = s < self.lo, s > self.hi
        outside = left | right
        any_out = bool(outside.any())
        if any_out:
            for mask, upper in ((left, False), (right, True)):
                if mask.any():
                    fn = _asym.right_tail if upper else _asym.left_tail
                    g, dg = fn(self.beta, s[mask], self.zeta0 if upper else self.a0)
                    out[mask] = _from_log(g, dg, upper)[want]
            inside = np.flatnonzero(~outside)
        for start in range(0, s.size if not any_out else inside.size, _CHUNK_FAST):
            sl = slice(start, start + _CHUNK_FAST)
            sc = s[sl] if not any_out else s[inside[sl]]
            g, dg, up = self.poly(sc, deriv=want == "pdf")
            with np.errstate(over="ignore", invalid="ignore"):
                if want in ("cdf", "sf"):
                    res = np.where(up == (want == "sf"), np.exp(g), -np.expm1(g))
                elif want in ("logcdf", "logsf"):
                    res = np.where(up == (want == "logsf"), g, np.log1p(-np.exp(g)))
                else:
                    res = np.exp(g) * dg
                    np.negative(res, out=res, where=up)
            if any_out:
                out[inside[sl]] = res
            else:
                out[sl] = res
        return out

    def _side(self, s: np.ndarray, upper: bool):
        """(g, dg/ds) of g = log(1 - F) (upper) or log F at s in [lo, hi]."""
        g, dg, up = self.poly(s, deriv=True)
        other = up != upper  # the piece stores the other side's log
        if other.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.exp(g[other])
                g[other], dg[other] = np.log1p(-v), -v * dg[other] / (1.0 - v)
        return g, dg

    def solve(self, y: np.ndarray, upper: bool) -> np.ndarray:
        """s with log F(s) = y (upper=False) or log(1 - F(s)) = y (upper=True); y finite, < 0.

        Start: cubic Hermite interpolation of the inverse on a grid of spacing h/64 inside
        [lo, hi] (error ~1e-13), the leading term of the expansion outside; then Newton's method
        (log F and log(1 - F) are smooth and monotone), vectorised, until the step is below 2 ulp
        (1 or 2 steps inside [lo, hi]; at most 60).
        """
        grid_y = -self.grid_logS if upper else self.grid_logF  # increasing
        grid_m = -self.grid_dS if upper else self.grid_dF  # its slope
        yy = -y if upper else y
        scale = _SQRT2 if self.beta == 4 else 1.0
        inside = (yy >= grid_y[0]) & (yy <= grid_y[-1])
        s = np.empty(y.shape)
        j = np.clip(np.searchsorted(grid_y, yy[inside]) - 1, 0, grid_y.size - 2)
        y0, y1 = grid_y[j], grid_y[j + 1]
        dy = y1 - y0
        u = (yy[inside] - y0) / dy
        s0, s1 = self.grid[j], self.grid[j + 1]
        m0, m1 = dy / grid_m[j], dy / grid_m[j + 1]  # ds/du at the ends
        u2 = u * u
        s[inside] = (s0 + u2 * (3.0 - 2.0 * u) * (s1 - s0) + u * (1.0 - u) * ((1.0 - u) * m0 - u * m1))
        out = ~inside
        if upper:
            # log(1 - F) ~ -c x^{3/2}, c = 2/3 (beta 1), 4/3 (beta 2; beta 4 in x = sqrt2 s)
            c = 2.0 / 3.0 if self.beta == 1 else 4.0 / 3.0
            s[out] = np.maximum((-y[out] / c) ** (2.0 / 3.0) / scale, self.hi)
        else:
            c = 12.0 if self.beta == 2 else 24.0  # log F ~ -a^3 / c
            s[out] = np.minimum(-np.cbrt(-y[out] * c) / scale, self.lo)
        active = np.arange(y.size)
        for _ in range(60):
            sa = s[active]
            mid = (sa >= self.lo) & (sa <= self.hi)
            if mid.all():
                val, slope = self._side(sa, upper)
            else:
                logF, dF, logS, dS = self.logs(sa)
                val, slope = (logS, dS) if upper else (logF, dF)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = (val - y[active]) / slope
            step = np.where(np.isfinite(step), step, 0.0)
            # damp steps that would leave far into the other tail (poor starting points only)
            step = np.clip(step, -0.5 * np.abs(sa) - 1.0, 0.5 * np.abs(sa) + 1.0)
            s[active] = sa - step
            # quadratic convergence: after a step of 1e-9 the error is ~1e-18 |g''/g'|, |g''/g'| < ~10
            done = np.abs(step) <= 1e-9 * np.maximum(np.abs(sa), 1e-3)
            active = active[~done]
            if active.size == 0:
                break
        return s


@functools.lru_cache(maxsize=1)
def _tables() -> dict:
    with np.load(_DATA) as data:
        return {beta: _Table(beta, data) for beta in (1, 2, 4)}


def _points(s) -> np.ndarray:
    """The evaluation points as a float64 array (theory._validate.real_values: NaN, complex, strings refused)."""
    return real_values("s", s)[0]


_LIMITS = {"cdf": (0.0, 1.0), "sf": (1.0, 0.0), "logcdf": (-np.inf, 0.0), "logsf": (0.0, -np.inf),
           "pdf": (0.0, 0.0)}
_METHODS = ("interpolant", "fredholm")


class TracyWidom:
    r"""Tracy-Widom law of index ``beta`` in {1, 2, 4} as a frozen distribution.

    Methods follow scipy.stats: ``cdf``, ``sf``, ``logcdf``, ``logsf``, ``pdf``, ``ppf``,
    ``isf``, ``mean``, ``var``, ``std``; all broadcast over array input.

    Two evaluation paths (keyword ``method``):

    * ``"interpolant"`` (default): piecewise polynomials (degree 9 on pieces of width 1/8, built
      from the Fredholm determinants by ``theory/build_tw_tables.py``, shipped as
      ``theory/data/tw_tables.npz``) of log F on the lower side of the median and of log(1 - F)
      on the upper side, joined to the asymptotic expansions of both tails
      (``theory._tw_asymptotic``) at s = -7, 16 (beta 1), -7, 10 (beta 2), -5.625, 11 (beta 4).
      About 0.1 microsecond per point. Measured against the Fredholm path on 10^4 random points per
      beta and against 60-digit mpmath in the upper tail: cdf absolute error <= 8e-15, sf relative
      error <= 1.5e-13 (plus |log sf| eps from exp, 1.5e-13 at sf = 1e-300) where sf >= 1e-300; in the
      lower tail near the left seam the relative error of F (not its absolute error, < 1e-18 there)
      is ~1e-9, the accuracy of both the determinants and the expansions there.
    * ``"fredholm"``: one Fredholm determinant per point (Bornemann's method; ~0.2-1 ms per point),
      the reference the interpolant is tested against.

    Tails: log F and log(1 - F) are finite wherever their true value is representable; they are
    -inf only where it overflows the float range (log F for s < ~-1.3e103, log(1 - F) for
    s > ~3e205), and ``ppf``/``isf`` invert every level in (0, 1), down to the smallest subnormal.

    Examples
    --------
    >>> tw = TracyWidom(beta=1)
    >>> round(float(tw.ppf(0.9)), 7)
    0.4501433
    """

    def __init__(self, beta: int) -> None:
        if isinstance(beta, bool) or beta not in (1, 2, 4):
            raise ValueError(f"beta must be 1, 2 or 4, got {beta!r}")
        self.beta = int(beta)

    def __repr__(self) -> str:
        return f"TracyWidom(beta={self.beta})"

    # ------------------------------------------------------------------ core evaluation
    def _evaluate(self, s, want: str, method: str):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        s_arr = _points(s)
        flat = s_arr.ravel()
        out = np.empty(flat.shape)
        fin = np.isfinite(flat)
        if not fin.all():
            lo_val, hi_val = _LIMITS[want]
            out[flat == -np.inf], out[flat == np.inf] = lo_val, hi_val
        if fin.any():
            pts = flat if fin.all() else flat[fin]
            if method == "fredholm":
                vals = _all_quantities(self.beta, pts, want == "pdf")[want]
            else:
                vals = _tables()[self.beta].evaluate(pts, want)
            if fin.all():
                out = vals
            else:
                out[fin] = vals
        return out.reshape(s_arr.shape)[()] if s_arr.ndim == 0 else out.reshape(s_arr.shape)

    # ------------------------------------------------------------------ public API
    def cdf(self, s, *, method: str = "interpolant", dps: int | None = None):
        """F_beta(s); absolute error <= 8e-15 (relative error in the lower tail: see the class).

        ``method="fredholm"`` evaluates the Fredholm determinant at each point. With ``dps`` (an
        int >= 15), an independent mpmath evaluation at that many digits (``theory._tw_mpmath``;
        seconds per point) returning mpf values, for verification.
        """
        if dps is not None:
            return _mp_path("cdf", self.beta, s, dps)
        return self._evaluate(s, "cdf", method)

    def sf(self, s, *, method: str = "interpolant", dps: int | None = None):
        """1 - F_beta(s), without cancellation: relative error <= 1.5e-13 (+ |log sf| eps) down to
        sf = 1e-300 and beyond (the asymptotic expansion); 0 only where it underflows.

        ``method`` and ``dps`` as in :meth:`cdf`; the mpmath path adds digits where the tail is small.
        """
        if dps is not None:
            return _mp_path("sf", self.beta, s, dps)
        return self._evaluate(s, "sf", method)

    def logcdf(self, s, *, method: str = "interpolant"):
        """log F_beta(s); finite for s >= ~-1.3e103 (where -|s|^3/12 still fits in a float), -inf below.

        For s -> -inf, log F_2 = -|s|^3/12 - (1/8) log|s| + (1/24) log 2 + zeta'(-1) + O(|s|^-3)
        (beta 1, 4: ``theory._tw_asymptotic``).
        """
        return self._evaluate(s, "logcdf", method)

    def logsf(self, s, *, method: str = "interpolant"):
        """log(1 - F_beta(s)); finite for s <= ~3e205 (where (2/3) s^{3/2} still fits), -inf above.

        For s -> +inf, 1 - F_2 ~ exp(-(4/3) s^{3/2}) / (16 pi s^{3/2}) and
        1 - F_1 ~ exp(-(2/3) s^{3/2}) / (4 sqrt(pi) s^{3/4}), with their corrections.
        """
        return self._evaluate(s, "logsf", method)

    def pdf(self, s, *, method: str = "interpolant"):
        """Density F_beta'(s): the derivative of the interpolant (relative error <= 1e-9 where the
        density exceeds 1e-4 of its peak; the expansions' derivatives in the tails) or, with
        ``method="fredholm"``, the trace formula on the determinant's eigendecomposition."""
        return self._evaluate(s, "pdf", method)

    def ppf(self, q, *, method: str = "interpolant"):
        """Quantile function: the s with F_beta(s) = q, vectorised, for every q in [0, 1].

        Newton's method on log F (levels <= 1/2) or on log(1 - F) (levels above), so that levels
        from the smallest subnormal up to 1 - 2^-53 are resolved; ppf(0) = -inf, ppf(1) = inf.
        """
        return self._quantile(q, upper_tail=False, method=method)

    def isf(self, q, *, method: str = "interpolant"):
        """Inverse survival function: the s with 1 - F_beta(s) = q; accurate for tiny q (to 5e-324)."""
        return self._quantile(q, upper_tail=True, method=method)

    def _quantile(self, q, upper_tail: bool, method: str):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        q_arr = _levels("q", q)
        if method == "fredholm":
            return _invert(self.beta, q_arr, upper_tail=upper_tail)
        flat = q_arr.ravel()
        out = np.empty(flat.shape)
        # F(s) at the solution decides the side: match log F where F <= 1/2, log(1 - F) otherwise
        F_level = 1.0 - flat if upper_tail else flat
        side_F = F_level <= 0.5
        with np.errstate(divide="ignore"):
            y = np.where(side_F == (not upper_tail), np.log(flat), np.log1p(-flat))
        out[side_F & (y == -np.inf)] = -np.inf
        out[~side_F & (y == -np.inf)] = np.inf
        table = _tables()[self.beta]
        for side in (True, False):
            sel = np.flatnonzero((side_F == side) & np.isfinite(y))
            if sel.size:
                out[sel] = table.solve(y[sel], upper=not side)
        res = out.reshape(q_arr.shape)
        return res[()] if q_arr.ndim == 0 else res

    def mean(self) -> float:
        """Mean, E X = int_0^inf sf - int_-inf^0 cdf (Gauss-Legendre on the Fredholm path)."""
        return _moments(self.beta)[0]

    def var(self) -> float:
        """Variance, from E X^2 = 2 int_0^inf s sf(s) ds - 2 int_-inf^0 s cdf(s) ds."""
        return _moments(self.beta)[1]

    def std(self) -> float:
        """Standard deviation."""
        return math.sqrt(self.var())
