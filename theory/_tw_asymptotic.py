r"""Asymptotic expansions of the Tracy-Widom laws in both tails, with exact rational coefficients.

Left tail (s -> -inf), from the Hastings-McLeod solution q of Painleve II, q'' = x q + 2 q^3,
q(x) ~ Ai(x) at +inf, through (Tracy and Widom 1994, 1996)

.. math:: \log F_2(s) = -\int_s^\infty (x - s) q(x)^2 dx, \qquad
          F_1(s) = F_2(s)^{1/2} e^{-I(s)/2}, \qquad
          F_4(s/\sqrt2) = F_2(s)^{1/2} \cosh(I(s)/2), \qquad I(s) = \int_s^\infty q(x)\, dx.

With a = -s, q(-a) ~ sqrt(a/2) sum_k b_k a^{-3k} (b_0 = 1, b_1 = -1/8, b_2 = -73/128, ...; the
recursion follows from substituting into Painleve II). Integrating twice and once,

.. math:: \log F_2 = -\frac{a^3}{12} - \frac18 \log a + \log c_2 - \frac12 \sum_{k\ge2}
          \frac{c_k a^{3-3k}}{(2-3k)(3-3k)}, \qquad
          I = \frac{\sqrt2}{3} a^{3/2} + \frac12\log 2 + \frac1{\sqrt2}\sum_{k\ge1}\frac{b_k a^{3/2-3k}}{3/2-3k},

where c_k are the coefficients of (sum b_k w^k)^2 and the constants are those of Deift, Its and
Krasovsky (2008) and Baik, Buckingham and DiFranco (2008): log c_2 = (1/24) log 2 + zeta'(-1), and
the (1/2) log 2 in I is what makes log F_1's constant -(11/48) log 2 + zeta'(-1)/2.

Right tail (s -> +inf), from the traces p1 = tr A_s = (1/2) int_s^inf Ai and
p2 = tr A_s^2 = int_s^inf (x - s) Ai(x)^2 dx = (2 s^2 Ai^2 - 2 s Ai'^2 - Ai Ai')/3 of the Airy
Hankel operator (see ``theory.tracy_widom``):

.. math:: 1 - F_1 = p_1 - e_2 + O(e^{-3\zeta}), \quad 1 - F_2 = p_2 + O(e^{-4\zeta}), \quad
          1 - F_4(s/\sqrt2) = -e_2 + O(e^{-4\zeta}), \qquad e_2 = (p_1^2 - p_2)/2,

with zeta = (2/3) s^{3/2}. The Airy expansions (DLMF 9.7.5-6) Ai = e^{-zeta} (2 sqrt(pi))^{-1}
s^{-1/4} A(zeta), Ai' = -e^{-zeta} (2 sqrt(pi))^{-1} s^{1/4} B(zeta), A = sum (-1)^k u_k zeta^{-k},
B = sum (-1)^k v_k zeta^{-k}, give p1 = e^{-zeta} s^{-3/4} H(zeta) / (4 sqrt(pi)) with
H' - H - H/(2 zeta) = -A, and p2 = e^{-2 zeta} Q(zeta) / (12 pi), Q = 3 zeta (A^2 - B^2) + A B.
The leading terms then cancel exactly in rational arithmetic:

* 1 - F_2 ~ e^{-2 zeta} Q / (12 pi), Q = 1/(2 zeta) + ..., i.e. e^{-4/3 s^{3/2}} / (16 pi s^{3/2});
* 1 - F_1 ~ p1 = e^{-zeta} / (4 sqrt(pi) s^{3/4}) (1 + ...);
* 1 - F_4(s/sqrt2) ~ e^{-2 zeta} R / (12 pi), R = Q - H^2 / (2 zeta) = O(zeta^{-2}).

All series are asymptotic (divergent); they are summed to the term of least magnitude at the
seam ``zeta0``, where the relative truncation error is e^{-zeta0} (H, from the integral of Ai) or
e^{-2 zeta0} (A, B); the seams in ``theory.tracy_widom`` keep both below 1e-16.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

ZETA_PRIME_M1 = -0.16542114370045092  # zeta'(-1), checked against mpmath in the tests
LOG_C2 = math.log(2.0) / 24.0 + ZETA_PRIME_M1  # constant of log F2 (Deift, Its, Krasovsky 2008)
LOG2 = math.log(2.0)
SQRT2 = math.sqrt(2.0)


def _mul(x: list, y: list, n: int) -> list:
    return [sum(x[i] * y[k - i] for i in range(k + 1)) for k in range(n)]


@functools.lru_cache(maxsize=None)
def hastings_mcleod(n: int) -> tuple[Fraction, ...]:
    """b_0..b_{n-1} with q(-a) ~ sqrt(a/2) sum b_k a^{-3k}, from q'' = x q + 2 q^3 (x = -a).

    With w = a^{-3}: sum_k b_k (9k^2 - 1/4) w^{k+1} = B^3 - B, B = sum b_k w^k; the coefficient of
    w^n gives 2 b_n = b_{n-1}(9(n-1)^2 - 1/4) - (the part of [B^3]_n without b_n).
    """
    b = [Fraction(1)]
    for k in range(1, n):
        bb = b + [Fraction(0)]
        cube = _mul(_mul(bb, bb, k + 1), bb, k + 1)[k]
        b.append((b[k - 1] * (9 * (k - 1) ** 2 - Fraction(1, 4)) - cube) / 2)
    return tuple(b)


@functools.lru_cache(maxsize=None)
def left_coefficients(n: int = 12) -> dict:
    """Float coefficients of the left-tail series in a^{-3} (see the module docstring)."""
    b = list(hastings_mcleod(n + 1))
    c = _mul(b, b, n + 1)
    # log F2 = -a^3/12 - log(a)/8 + LOG_C2 + sum_{k>=2} f_k a^{3-3k}
    f = [-c[k] / (2 * (2 - 3 * k) * (3 - 3 * k)) for k in range(2, n + 1)]
    # I = sqrt2/3 a^{3/2} + log2/2 + sum_{k>=1} g_k a^{3/2-3k}, g_k = b_k / (sqrt2 (3/2 - 3k))
    g = [b[k] / (Fraction(3, 2) - 3 * k) for k in range(1, n + 1)]  # times 1/sqrt2 at use
    return {"f": np.array([float(x) for x in f]), "g": np.array([float(x) for x in g]) / SQRT2,
            "b": np.array([float(x) for x in b])}


def _horner(coef: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_k coef[k] w^k."""
    out = np.full_like(w, coef[-1])
    for cc in coef[-2::-1]:
        out = out * w + cc
    return out


def _optimal(coef: np.ndarray, w0: float, first_power: int) -> int:
    """Number of terms of sum coef[k] w^(k + first_power) up to the smallest one at w = w0."""
    mag = np.abs(coef) * w0 ** (np.arange(coef.size) + first_power)
    return int(np.argmin(mag)) + 1


def left_tail(beta: int, s: np.ndarray, a0: float) -> tuple[np.ndarray, np.ndarray]:
    """log F_beta(s) and d/ds log F_beta(s) for s -> -inf.

    a = -s (beta 1, 2) or -sqrt2 s (beta 4); the series are truncated at their smallest term at
    a = a0 (the seam), optimal there and better further out. Evaluated without overflow: a^3 is
    formed as a * a * (a/12), so log F is finite wherever it is representable (-inf only where
    |s|^3/12 overflows, |s| > ~1.3e103).
    """
    co = left_coefficients(30)
    w0 = a0 ** -3.0
    nf = _optimal(co["f"], w0, 1)
    ng = _optimal(co["g"], w0, 1)
    f, g, b = co["f"][:nf], co["g"][:ng], co["b"][: ng + 1]
    kf = np.arange(2, nf + 2)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        a = -np.asarray(s, dtype=np.float64) * (SQRT2 if beta == 4 else 1.0)
        w = 1.0 / (a * a * a)  # 0 once a^3 overflows: the corrections vanish
        w = np.where(np.isfinite(w), w, 0.0)
        ra = np.sqrt(a)
        # u = log F2(-a) = -a^3/12 + v, and du/da; the leading term is added last, halved for
        # beta 1 and 4, so that log F overflows only where its true value does
        v = -np.log(a) / 8.0 + LOG_C2 + _horner(f, w) * w
        du = -(a * a) / 4.0 - 1.0 / (8.0 * a) + _horner(f * (3 - 3 * kf), w) * w / a
        if beta == 2:
            logF, dlog = v - (a * a) * (a / 12.0), du
        else:
            # I = sqrt2/3 a^{3/2} + log2/2 + sum_k g_k a^{3/2 - 3k};  dI/da = q(-a)
            ia = a * ra
            # w * ia = a^{-3/2}, formed as sqrt(a) / a^2 so that it is 0 (not 0 * inf) once a^3 overflows
            I = SQRT2 / 3.0 * ia + 0.5 * LOG2 + _horner(g, w) * (ra / (a * a))
            q = ra / SQRT2 * _horner(b, w)
            lead = -(a * a) * (a / 24.0)
            if beta == 1:
                logF, dlog = lead + 0.5 * (v - I), 0.5 * (du - q)
            else:
                # F4 = (E- + E+)/2, E+- = exp(u/2 +- I/2): log F4 = (u + I)/2 - log 2 + log1p(e^{-I})
                r = np.exp(-I)
                logF = lead + (0.5 * (v + I) - LOG2 + np.log1p(r))
                dlog = 0.5 * (du + q) - q * r / (1.0 + r)
        # beyond |s| ~ 1e103 the leading -a^3/12 overflows: log F is -inf there (its true value is below
        # -1.8e308) whatever the lower-order terms (which may themselves overflow to +inf and give inf - inf)
        gone = ~np.isfinite((a * a) * (a / (12.0 if beta == 2 else 24.0)))
        logF = np.where(gone, -np.inf, logF)
        # the derivative (about a^2/4) is then replaced by the largest float, so that F * d log F = 0
        dlog = np.where(gone | ~np.isfinite(dlog), -np.finfo(np.float64).max / 2, dlog)
    scale = SQRT2 if beta == 4 else 1.0
    return logF, -dlog * scale  # d/ds = -(d/da) * scale


@functools.lru_cache(maxsize=None)
def right_coefficients(n: int = 60) -> dict:
    """Exact coefficients (as floats) of H, Q and R in powers of 1/zeta (module docstring)."""
    u = [Fraction(1)]
    for k in range(1, n + 2):
        u.append(u[-1] * Fraction((6 * k - 5) * (6 * k - 3) * (6 * k - 1), (2 * k - 1) * 216 * k))
    v = [Fraction(1)] + [-Fraction(6 * k + 1, 6 * k - 1) * u[k] for k in range(1, n + 2)]
    A = [(-1) ** k * u[k] for k in range(n + 2)]
    B = [(-1) ** k * v[k] for k in range(n + 2)]
    H = [Fraction(1)]
    for k in range(1, n + 2):
        H.append(A[k] - (k - Fraction(1, 2)) * H[k - 1])
    A2, B2, AB, H2 = (_mul(A, A, n + 2), _mul(B, B, n + 2), _mul(A, B, n + 2), _mul(H, H, n + 2))
    # Q = 3 zeta (A^2 - B^2) + A B: coefficient of zeta^{-k} is 3 (A2 - B2)_{k+1} + AB_k
    Q = [3 * (A2[k + 1] - B2[k + 1]) + AB[k] for k in range(n + 1)]
    # R = Q - H^2/(2 zeta)
    R = [Q[k] - (H2[k - 1] / 2 if k >= 1 else 0) for k in range(n + 1)]
    assert Q[0] == 0 and R[0] == 0 and R[1] == 0  # the exact cancellations
    return {"H": np.array([float(x) for x in H[: n + 1]]), "Q": np.array([float(x) for x in Q[1:]]),
            "R": np.array([float(x) for x in R[2:]]), "A": np.array([float(x) for x in A[: n + 1]])}


def _series(coef: np.ndarray, w: np.ndarray, zeta0: float) -> np.ndarray:
    """sum_k coef[k] w^k truncated before the smallest term at w = 1/zeta0 (optimal truncation)."""
    mag = np.abs(coef) * (1.0 / zeta0) ** np.arange(coef.size)
    stop = int(np.argmin(np.where(coef == 0.0, np.inf, mag)))
    return _horner(coef[: stop + 1], w)


def right_tail(beta: int, s: np.ndarray, zeta0: float) -> tuple[np.ndarray, np.ndarray]:
    """log(1 - F_beta(s)) and d/ds log(1 - F_beta(s)) for s -> +inf, valid for zeta >= zeta0.

    zeta = (2/3) x^{3/2} with x = s (beta 1, 2) or sqrt2 s (beta 4). Finite for every finite s
    whose log(1 - F) is representable: -inf only once (2/3) x^{3/2} overflows (x > ~3e205).
    """
    co = right_coefficients()
    x = np.asarray(s, dtype=np.float64) * (SQRT2 if beta == 4 else 1.0)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        rx = np.sqrt(x)
        zeta = (2.0 / 3.0) * x * rx
        w = np.where(np.isfinite(zeta), 1.0 / zeta, 0.0)
        lx = np.log(x)
        if beta == 1:
            H = _series(co["H"], w, zeta0)
            dH = _series(-np.arange(co["H"].size) * co["H"], w, zeta0) * w  # dH/dzeta
            logp1 = -zeta - 0.75 * lx - math.log(4.0 * math.sqrt(math.pi)) + np.log(H)
            Q = _series(co["Q"], w, 2 * zeta0) * w
            # 1 - F1 = p1 (1 + y), y = -p1/2 + p2/(2 p1) (both ~e^{-zeta}: below 1e-16 at the seam)
            p1 = np.exp(logp1)
            ratio = np.exp(-zeta + 0.75 * lx - math.log(3.0 * math.sqrt(math.pi))) * Q / H  # p2/p1
            y = -0.5 * p1 + 0.5 * ratio
            logS = logp1 + np.log1p(y)
            # d/ds log p1 = -sqrt(x) - 3/(4x) + (dH/dzeta)/H sqrt(x) (y's derivative is below rounding)
            dlog = -rx - 0.75 / x + dH / H * rx
        else:
            key = "Q" if beta == 2 else "R"
            shift = 1 if beta == 2 else 2
            c = co[key]
            zc = 2 * zeta0 if beta == 2 else zeta0
            P = _series(c, w, zc)
            dP = _series(-(np.arange(c.size) + shift) * c, w, zc)  # zeta d(P w^shift)/dzeta / w^shift
            logS = -2.0 * zeta - math.log((12.0 if beta == 2 else 24.0) * math.pi) + shift * np.log(w) + np.log(P)
            logS = np.where(np.isfinite(zeta), logS, -np.inf)
            dlog = -2.0 * rx + dP / (zeta * P) * rx
    return logS, dlog * (SQRT2 if beta == 4 else 1.0)
